#if canImport(Glibc)
import Glibc
#endif
import CarteiroConfig
import CarteiroStore
import Foundation

/// One account's tokens on disk: `<state>/oauth/CLIENT/USER.json`, 0600, replaced durably (written,
/// fsynced, renamed, the directory fsynced), so that a crash at any instant leaves the old
/// refresh token or the new one, both of which still work. An flock on `USER.lock` makes one
/// process at a time refresh an account: the daemon and `carteiro authorize` or `test-mailbox`.
package struct TokenStore: Sendable {
    package let directory: String
    package let path: String
    let lockPath: String
    /// `USER.json`: the temporary files of its saves are `USER.json.PID.tmp`.
    let fileName: String
    /// Called before each step of a save with the step's name: the crash tests stop a save
    /// there, as a kill would (nil in the daemon).
    let faults: (@Sendable (String) throws(DurableFiles.Failure) -> Void)?

    package init(stateDirectory: String, client: String, user: String,
                faults: (@Sendable (String) throws(DurableFiles.Failure) -> Void)? = nil) {
        directory = stateDirectory + "/oauth/" + client
        let name = Self.fileName(user)
        fileName = name + ".json"
        path = directory + "/" + name + ".json"
        lockPath = directory + "/" + name + ".lock"
        self.faults = faults
    }

    /// The user as a file name: letters, digits and `@ . _ + -` stay, the rest is %XX.
    static func fileName(_ user: String) -> String {
        var out = ""
        for byte in user.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "@"), UInt8(ascii: "_"), UInt8(ascii: "+"), UInt8(ascii: "-"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            case UInt8(ascii: ".") where !out.isEmpty:
                out += "."
            default:
                out += "%" + String(byte >> 4, radix: 16, uppercase: true) + String(byte & 0xF, radix: 16, uppercase: true)
            }
        }
        return out.isEmpty ? "%" : out
    }

    package func load() -> TokenRecord? {
        guard case .success(let bytes) = RegularFile.read(path, limit: 1 << 20) else { return nil }
        return TokenRecord.parse(bytes)
    }

    /// Writes the record under `USER.json.PID.tmp`, fsyncs it, renames it over `USER.json`
    /// and fsyncs the folder. A process killed after the temporary file's write leaves it
    /// complete beside the old record: `recover` (under the lock, before anything is read)
    /// makes it the record, so a rotated refresh token is never lost to a kill, nor the old
    /// one presented again (which a provider that revokes on reuse answers by revoking the grant).
    package func save(_ record: TokenRecord) throws(DurableFiles.Failure) {
        try prepareDirectory()
        let temporary = path + ".\(getpid()).tmp"
        unlink(temporary)
        try faults?("write")
        try DurableFiles.writeUnsynced(record.json(), to: temporary, mode: 0o600)
        try faults?("fsync")
        try DurableFiles.syncEach([temporary])
        giveToOwner(temporary)
        try faults?("rename")
        try DurableFiles.rename(temporary, path)
        try faults?("directory sync")
        try DurableFiles.syncDirectory(directory)
    }

    /// What `recover` did, for the caller to report.
    package struct Recovery: Sendable, Equatable {
        /// A complete temporary file took the record's place (a save cut short by a kill).
        package var promoted: String?
        /// Temporary files removed: incomplete, older than the record, or beside a newer one.
        package var removed: [String] = []
        /// The record's mode was looser than 0600 and was set to 0600 (the old mode).
        package var repairedMode: mode_t?
        package var isEmpty: Bool { promoted == nil && removed.isEmpty && repairedMode == nil }
    }

    /// Called under the account's lock before the record is read: a complete temporary file
    /// newer than the record (a save killed between its write and its rename) becomes the
    /// record; every other temporary file of the account is removed; a record readable by
    /// others (found 0644, say) is set to 0600.
    @discardableResult
    package func recover() -> Recovery {
        var recovery = Recovery()
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .filter { $0.hasPrefix(fileName + ".") && $0.hasSuffix(".tmp") }.sorted()
        let current = load()
        var best: (name: String, record: TokenRecord)?
        for name in names {
            guard case .success(let bytes) = RegularFile.read(directory + "/" + name, limit: 1 << 20),
                  let record = TokenRecord.parse(bytes), record.refreshToken != nil || record.accessToken != nil else { continue }
            if Self.stamp(record) >= (current.map(Self.stamp) ?? 0), best.map({ Self.stamp(record) >= Self.stamp($0.record) }) ?? true {
                best = (name, record)
            }
        }
        if let best, best.record != current {
            do throws(DurableFiles.Failure) {
                try DurableFiles.syncEach([directory + "/" + best.name])
                try DurableFiles.rename(directory + "/" + best.name, path)
                try DurableFiles.syncDirectory(directory)
                recovery.promoted = best.name
            } catch {
                // Left where it is: the next recovery tries again.
            }
        }
        for name in names where name != recovery.promoted {
            if unlink(directory + "/" + name) == 0 { recovery.removed.append(name) }
        }
        var info = stat()
        if lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG, info.st_mode & 0o077 != 0, chmod(path, 0o600) == 0 {
            recovery.repairedMode = info.st_mode & 0o777
        }
        return recovery
    }

    /// How recent a record is: its latest time.
    static func stamp(_ record: TokenRecord) -> Int64 {
        [record.lastRefreshAt, record.refreshIssuedAt, record.authorizedAt, record.accessIssuedAt].compactMap { $0 }.max() ?? 0
    }

    func prepareDirectory() throws(DurableFiles.Failure) {
        let parent = DurableFiles.parent(directory)
        for path in [parent, directory] where !DurableFiles.exists(path) {
            try DurableFiles.makeDirectory(path)
            chmod(path, 0o700)
            giveToOwner(path)
        }
    }

    /// Root (`carteiro authorize` from an operator's shell) leaves files the service can use:
    /// owned by the state directory's owner.
    func giveToOwner(_ path: String) {
        guard geteuid() == 0 else { return }
        var info = stat()
        let root = DurableFiles.parent(DurableFiles.parent(directory))
        guard stat(root, &info) == 0, info.st_uid != 0 else { return }
        _ = chown(path, info.st_uid, info.st_gid)
    }

    /// Runs `body` holding the account's lock (across processes), after `recover`; what the
    /// recovery did goes to `recovered` when it did anything.
    package func locked<T>(recovered: (Recovery) -> Void = { _ in }, _ body: () throws -> T) throws -> T {
        try prepareDirectory()
        let descriptor = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw DurableFiles.Failure(description: "cannot open \(lockPath): \(String(cString: strerror(errno)))") }
        giveToOwner(lockPath)
        defer { close(descriptor) }
        while flock(descriptor, LOCK_EX) != 0 {
            guard errno == EINTR else { throw DurableFiles.Failure(description: "cannot lock \(lockPath): \(String(cString: strerror(errno)))") }
        }
        defer { flock(descriptor, LOCK_UN) }
        let recovery = recover()
        if !recovery.isEmpty { recovered(recovery) }
        return try body()
    }
}
