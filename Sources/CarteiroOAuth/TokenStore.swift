#if canImport(Glibc)
import Glibc
#endif
import CarteiroConfig
import CarteiroStore

/// One account's tokens on disk: `<state>/oauth/CLIENT/USER.json`, 0600, replaced durably (written,
/// fsynced, renamed, the directory fsynced), so that a crash at any instant leaves the old
/// refresh token or the new one, both of which still work. An flock on `USER.lock` makes one
/// process at a time refresh an account: the daemon and `carteiro authorize` or `test-mailbox`.
public struct TokenStore: Sendable {
    public let directory: String
    public let path: String
    let lockPath: String

    public init(stateDirectory: String, client: String, user: String) {
        directory = stateDirectory + "/oauth/" + client
        let name = Self.fileName(user)
        path = directory + "/" + name + ".json"
        lockPath = directory + "/" + name + ".lock"
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

    public func load() -> TokenRecord? {
        guard case .success(let bytes) = RegularFile.read(path, limit: 1 << 20) else { return nil }
        return TokenRecord.parse(bytes)
    }

    public func save(_ record: TokenRecord) throws(DurableFiles.Failure) {
        try prepareDirectory()
        let temporary = path + ".\(getpid()).tmp"
        try DurableFiles.writeSynced(record.json(), to: temporary, mode: 0o600)
        giveToOwner(temporary)
        try DurableFiles.rename(temporary, path)
        try DurableFiles.syncDirectory(directory)
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

    /// Runs `body` holding the account's lock (across processes).
    public func locked<T>(_ body: () throws -> T) throws -> T {
        try prepareDirectory()
        let descriptor = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw DurableFiles.Failure(description: "cannot open \(lockPath): \(String(cString: strerror(errno)))") }
        giveToOwner(lockPath)
        defer { close(descriptor) }
        while flock(descriptor, LOCK_EX) != 0 {
            guard errno == EINTR else { throw DurableFiles.Failure(description: "cannot lock \(lockPath): \(String(cString: strerror(errno)))") }
        }
        defer { flock(descriptor, LOCK_UN) }
        return try body()
    }
}
