import CarteiroJSON
#if canImport(Glibc)
import Glibc
#endif

/// Events held back from the desk (`sender_verification = "quarantine"`: a sender that failed
/// authentication) in `.quarantine` beside the spool, until a person releases one into the
/// spool (a rename: the desk then takes it as any other) or deletes it. Its raw message and
/// attachments stay until retention removes them, as for an event the desk took.
package struct Quarantine: Sendable {
    package let directory: StateDirectory

    package init(_ directory: StateDirectory) {
        self.directory = directory
    }

    /// A held event, as `carteiro quarantine list` shows it.
    package struct Entry: Sendable, Equatable {
        /// The event file's name without `.json` (`acme-in+1700000000+42`): what release and delete take.
        package var name: String
        package var eventID: String
        package var mailbox: String
        package var from: String?
        package var subject: String?
        package var receivedAt: String?
        package var verdict: String?
        /// Modification time, seconds.
        package var heldSince: Int64
    }

    /// An entry name is an event file's name, as Carteiro makes them: letters, digits and
    /// `+ - _ . %`, not starting with a dot. Anything else names nothing and is refused unread.
    package static func isValidName(_ name: String) -> Bool {
        guard let first = name.utf8.first, first != UInt8(ascii: "."), name.utf8.count <= 300 else { return false }
        return name.utf8.allSatisfy { byte in
            (byte >= 48 && byte <= 57) || (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122)
                || [UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "%")].contains(byte)
        }
    }

    /// The held events, oldest first.
    package func list() -> [Entry] {
        guard let folder = try? SharedFolder(directory.quarantine) else { return [] }
        var entries: [Entry] = []
        for file in folder.names() where file.hasSuffix(".json") && !file.hasPrefix(".") {
            guard let info = folder.status(file), info.st_mode & S_IFMT == S_IFREG,
                  case .success(let bytes) = folder.read(file, limit: 64 << 20), let event = JSONValue.parse(bytes) else { continue }
            let message = event["message"]
            entries.append(Entry(name: String(file.dropLast(5)), eventID: event["id"]?.string ?? "", mailbox: event["mailbox"]?.string ?? "",
                                 from: message?["from"]?["address"]?.string, subject: message?["subject"]?.string,
                                 receivedAt: event["received_at"]?.string, verdict: event["authentication"]?["verdict"]?.string,
                                 heldSince: Int64(info.st_mtim.tv_sec)))
        }
        return entries.sorted { ($0.heldSince, $0.name) < ($1.heldSince, $1.name) }
    }

    package var count: Int {
        guard let folder = try? SharedFolder(directory.quarantine) else { return 0 }
        return folder.names().filter { $0.hasSuffix(".json") && !$0.hasPrefix(".") }.count
    }

    package enum Outcome: Equatable {
        case done
        case missing
        case failed(String)
    }

    /// Hands a held event to the desk: renamed into the spool, made durable.
    package func release(_ name: String) -> Outcome {
        guard Self.isValidName(name) else { return .missing }
        do {
            let held = try SharedFolder(directory.quarantine)
            let spool = try SharedFolder(directory.spool)
            guard let info = held.status(name + ".json"), info.st_mode & S_IFMT == S_IFREG else { return .missing }
            guard held.move(name + ".json", to: spool, as: name + ".json") else {
                return .failed("cannot move \(held.path(name + ".json")) into \(directory.spool): \(String(cString: strerror(errno)))")
            }
            try spool.sync()
            try held.sync()
            return .done
        } catch {
            return .failed(error.description)
        }
    }

    /// Removes a held event (its raw message goes with retention).
    package func delete(_ name: String) -> Outcome {
        guard Self.isValidName(name) else { return .missing }
        do {
            let held = try SharedFolder(directory.quarantine)
            guard let info = held.status(name + ".json"), info.st_mode & S_IFMT == S_IFREG else { return .missing }
            guard held.remove(name + ".json") else { return .failed("cannot remove \(held.path(name + ".json")): \(String(cString: strerror(errno)))") }
            try held.sync()
            return .done
        } catch {
            return .failed(error.description)
        }
    }
}
