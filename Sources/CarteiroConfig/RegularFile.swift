#if canImport(Glibc)
import Glibc
#endif

/// Reads a file that must be a plain file of bounded size: the configuration, its includes, a
/// password file, a submission. A FIFO, a device or a directory there would block the reader
/// forever or feed it without end, so those are refused by what they are, before any read;
/// and every refusal says why in the words of the error the system gave (EACCES is "permission
/// denied", not "does not exist").
public enum RegularFile {
    public enum Problem: Error, Equatable, CustomStringConvertible {
        case missing
        case notPermitted
        case directory
        case notRegular(String)
        case tooLarge(Int)
        case other(String)

        public var description: String {
            switch self {
            case .missing: "does not exist"
            case .notPermitted: "cannot be read (permission denied)"
            case .directory: "is a directory"
            case .notRegular(let kind): "is \(kind), not a regular file"
            case .tooLarge(let limit): "is larger than \(limit) bytes"
            case .other(let text): "cannot be read: \(text)"
            }
        }
    }

    /// The file's bytes, at most `limit` of them (more is `.tooLarge`). Symbolic links are
    /// followed (operators link configuration files), but what they lead to must be a file.
    public static func read(_ path: String, limit: Int) -> Result<[UInt8], Problem> {
        // O_NONBLOCK: opening a FIFO for reading must not wait for a writer.
        let descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        guard descriptor >= 0 else { return .failure(problem(errno)) }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { return .failure(problem(errno)) }
        switch info.st_mode & S_IFMT {
        case S_IFREG: break
        case S_IFDIR: return .failure(.directory)
        case S_IFIFO: return .failure(.notRegular("a FIFO"))
        case S_IFCHR, S_IFBLK: return .failure(.notRegular("a device"))
        case S_IFSOCK: return .failure(.notRegular("a socket"))
        default: return .failure(.notRegular("not a file"))
        }
        if info.st_size > limit { return .failure(.tooLarge(limit)) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                return .failure(problem(errno))
            }
            if count == 0 { return .success(bytes) }
            // The file may grow while it is read: the limit holds all the same.
            if bytes.count + count > limit { return .failure(.tooLarge(limit)) }
            bytes.append(contentsOf: chunk[0..<count])
        }
    }

    static func problem(_ code: Int32) -> Problem {
        switch code {
        case ENOENT, ENOTDIR: .missing
        case EACCES, EPERM: .notPermitted
        case EISDIR: .directory
        default: .other(String(cString: strerror(code)))
        }
    }
}
