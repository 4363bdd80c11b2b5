#if canImport(Glibc)
import Glibc
#endif
import CarteiroConfig
import CarteiroJSON
import Foundation

/// How `carteiro queue retry|delete` reaches the queue's owner. While a daemon runs, each lane
/// owns its queue directory and keeps its entries in memory: a command written to the files
/// behind its back would be overwritten by the lane's own copy. So the command is a request
/// file in `<state>/control/`, which the daemon applies through the lane that owns the entry,
/// and whose answer it writes beside it. With no daemon, the command takes the state
/// directory's lock and applies itself (`QueueCommand.apply`).
package enum QueueCommand: String, Sendable {
    case retry, delete
    /// `carteiro poll [MAILBOX]`: the daemon polls now (`id`: a mailbox, or `*` for all).
    case poll
    /// `carteiro quarantine release|delete NAME`: a held event into the spool, or away.
    case release = "quarantine-release"
    case discard = "quarantine-delete"

    /// Applies a quarantine command (`release`, `discard`) for whoever may change the quarantine
    /// (the daemon, or with no daemon the state directory's owner).
    package func apply(name: String, quarantine: Quarantine) -> Answer {
        guard Quarantine.isValidName(name) else { return Answer(done: false, message: "\"\(name)\" is not a held event's name") }
        let outcome = self == .release ? quarantine.release(name) : quarantine.delete(name)
        switch outcome {
        case .done: return Answer(done: true, message: self == .release ? "\(name) released into the spool" : "\(name) deleted from the quarantine")
        case .missing: return Answer(done: false, message: "no held event \(name)")
        case .failed(let reason): return Answer(done: false, message: reason)
        }
    }

    /// A queue id is a file name Carteiro made: letters, digits, `-`, `_`, `.`, not first.
    /// Anything else (`../../x`, `a/b`) names nothing in the queue and is refused unread.
    package static func isValidID(_ id: String) -> Bool {
        guard let first = id.utf8.first, first != UInt8(ascii: "."), id.utf8.count <= 200 else { return false }
        return id.utf8.allSatisfy { byte in
            (byte >= 48 && byte <= 57) || (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122)
                || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".")
        }
    }

    package struct Answer: Sendable, Equatable {
        package var done: Bool
        package var message: String
        package init(done: Bool, message: String) {
            self.done = done
            self.message = message
        }
    }

    /// Applies the command to the files: only for whoever owns the queue (the lock's holder
    /// with no daemon, or the daemon's lane for its own entries).
    package func apply(id: String, queue: any OutboundQueueStore) -> Answer {
        guard Self.isValidID(id) else { return Answer(done: false, message: "\"\(id)\" is not a queue id") }
        switch self {
        case .retry:
            do {
                return try queue.retry(id: id) ? Answer(done: true, message: "\(id) is due now") : Answer(done: false, message: "no queued or failed message \(id)")
            } catch {
                return Answer(done: false, message: "cannot retry \(id): \(error.description)")
            }
        case .delete:
            return queue.delete(id: id) ? Answer(done: true, message: "\(id) deleted") : Answer(done: false, message: "no queued or failed message \(id)")
        case .poll:
            return Answer(done: false, message: "only a running daemon polls on request")
        case .release, .discard:
            return Answer(done: false, message: "a quarantine command names a held event, not a queue entry")
        }
    }
}

/// The request files of `<state>/control/`: written by the command, taken and answered by the daemon.
package struct QueueControl: Sendable {
    package let directory: String

    package init(stateDirectory: String) {
        directory = stateDirectory + "/control"
    }

    package struct Request: Sendable {
        package var name: String
        package var command: QueueCommand
        package var id: String
    }

    /// Writes a request (temporary name, then rename); returns its name.
    package func send(_ command: QueueCommand, id: String) throws(DurableFiles.Failure) -> String {
        try DurableFiles.makeDirectory(directory)
        let folder = try SharedFolder(directory)
        let name = "\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let body = JSONValue.object([("command", .string(command.rawValue)), ("id", .string(id))]).renderedCompact()
        try folder.replace(name + ".request", with: body)
        return name
    }

    /// Waits for the daemon's answer; nil if none came within `timeout` (the request stays,
    /// and is applied when the daemon gets to it).
    package func answer(to name: String, timeout: Duration) -> QueueCommand.Answer? {
        let deadline = ContinuousClock.now + timeout
        guard let folder = try? SharedFolder(directory) else { return nil }
        while ContinuousClock.now < deadline {
            if case .success(let data) = folder.read(name + ".answer", limit: Self.maximumSize),
               let object = JSONValue.parse(data) {
                folder.remove(name + ".answer")
                return QueueCommand.Answer(done: object["done"]?.bool ?? false, message: object["message"]?.string ?? "")
            }
            usleep(50_000)
        }
        return nil
    }

    /// A request or an answer is a few hundred bytes.
    static let maximumSize = 4096

    /// The waiting requests, oldest name first; unreadable ones are answered as such. Entries
    /// that are not plain files with one name (a link, a FIFO, a device) are removed unread
    /// and returned in `refused`, for the caller to report.
    package func pending() -> (requests: [Request], refused: [RefusedEntry]) {
        guard let folder = try? SharedFolder(directory) else { return ([], []) }
        var refused: [RefusedEntry] = []
        let names = folder.names().filter { $0.hasSuffix(".request") && !$0.hasPrefix(".") }.sorted()
        let requests: [Request] = names.compactMap { file in
            let name = String(file.dropLast(".request".count))
            let read = folder.read(file, limit: Self.maximumSize)
            switch read {
            // Gone since the listing: answered meanwhile (a poll the daemon was running for it
            // finished). Answering it as unreadable would overwrite that answer.
            case .failure(.missing): return nil
            case .failure(let problem) where Self.isPlanted(problem):
                folder.remove(file)
                refused.append(RefusedEntry(path: folder.path(file), reason: problem.description, action: "removed unread"))
                return nil
            default: break
            }
            guard case .success(let bytes) = read,
                  let object = JSONValue.parse(bytes),
                  let command = object["command"]?.string.flatMap(QueueCommand.init(rawValue:)), let id = object["id"]?.string else {
                respond(to: name, QueueCommand.Answer(done: false, message: "the request could not be read"), in: folder)
                return nil
            }
            return Request(name: name, command: command, id: id)
        }
        return (requests, refused)
    }

    /// What no request of the desk's is: a link, a hard link, a FIFO, a device, a socket.
    package static func isPlanted(_ problem: RegularFile.Problem) -> Bool {
        switch problem {
        case .symbolicLink, .hardLink, .notRegular: true
        default: false
        }
    }

    /// Writes the answer and removes the request. The answer is written under a fresh name
    /// (`O_EXCL`) and renamed over `NAME.answer`: a link planted at either name is replaced,
    /// never written through.
    package func respond(to name: String, _ answer: QueueCommand.Answer) {
        guard let folder = try? SharedFolder(directory) else { return }
        respond(to: name, answer, in: folder)
    }

    func respond(to name: String, _ answer: QueueCommand.Answer, in folder: SharedFolder) {
        let body = JSONValue.object([("done", .bool(answer.done)), ("message", .string(answer.message))]).renderedCompact()
        try? folder.replace(name + ".answer", with: body)
        folder.remove(name + ".request")
    }

    /// How long an answer waits for its command to collect it (the command waits 30 s).
    package static let answerLifetime: Int64 = 600

    /// Removes answers nobody collected and temporary files nobody finished, older than
    /// `answerLifetime`; returns how many.
    @discardableResult
    package func sweep(now: Int64 = Int64(time(nil))) -> Int {
        guard let folder = try? SharedFolder(directory) else { return 0 }
        var removed = 0
        for name in folder.names() where name.hasSuffix(".answer") || (name.hasPrefix(".") && name.hasSuffix(".tmp")) {
            guard let info = folder.status(name), Int64(info.st_mtim.tv_sec) < now - Self.answerLifetime else { continue }
            if folder.remove(name) { removed += 1 }
        }
        return removed
    }
}

/// What a folder's `stat` says of its entries: any entry added, removed or renamed changes its
/// modification time. A timer that looks into a folder often asks this first, and lists the
/// folder only when it changed (see `FolderWatch`).
package struct DirectoryStamp: Equatable, Sendable {
    let device: UInt64
    let inode: UInt64
    let seconds: Int
    let nanoseconds: Int
    let changeSeconds: Int
    let changeNanoseconds: Int

    package init?(_ path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
        seconds = info.st_mtim.tv_sec
        nanoseconds = info.st_mtim.tv_nsec
        changeSeconds = info.st_ctim.tv_sec
        changeNanoseconds = info.st_ctim.tv_nsec
    }

    /// Whether the folder's entries last changed more than a second ago. File systems stamp
    /// times from a coarse clock (a few milliseconds): a file added in the same tick as the
    /// change before it leaves the stamp as it was, so a stamp that recent cannot vouch for
    /// what came after it.
    package var settled: Bool {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return seconds < now.tv_sec - 1
    }
}

/// Whether a folder needs listing at a tick: yes when it changed since a listing that left
/// nothing in it to come back for, and at least every `forcedEvery` ticks whatever its stamp.
package struct FolderWatch: Sendable {
    private var quietStamp: DirectoryStamp?
    private var ticksSinceListing = 0
    package static let forcedEvery = 25

    package init() {}

    package mutating func shouldList(_ stamp: DirectoryStamp?) -> Bool {
        ticksSinceListing += 1
        if let stamp, stamp == quietStamp, ticksSinceListing < Self.forcedEvery { return false }
        ticksSinceListing = 0
        return true
    }

    /// After a listing that began at `stamp`: `quiet` when it took everything it found. A
    /// stamp of a change less than a second old is not trusted (see `DirectoryStamp.settled`):
    /// the folder is listed again until its stamp has settled.
    package mutating func listed(_ stamp: DirectoryStamp?, quiet: Bool) {
        quietStamp = quiet && stamp?.settled == true ? stamp : nil
    }
}
