#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import CarteiroConfig
import CarteiroTesting

/// A path opened beneath a folder: by openat2 where the kernel has it, and by the walk of
/// O_NOFOLLOW opens that replaces it elsewhere. Both refuse a link anywhere on the way, and a
/// way out; both open what is really there.
struct OpenBeneathTests {
    @Test(arguments: [false, true])
    func linksAndWaysOutAreRefusedEitherWay(walk: Bool) throws {
        let root = try TemporaryDirectory()
        let base = root.path + "/base"
        try FileManager.default.createDirectory(atPath: base + "/a/b", withIntermediateDirectories: true)
        try Data("inside".utf8).write(to: URL(fileURLWithPath: base + "/a/b/file"))
        try Data("secret".utf8).write(to: URL(fileURLWithPath: root.path + "/secret"))
        try FileManager.default.createSymbolicLink(atPath: base + "/a/link", withDestinationPath: root.path + "/secret")
        try FileManager.default.createSymbolicLink(atPath: base + "/dir", withDestinationPath: base + "/a")
        let fd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        #expect(fd >= 0)
        defer { close(fd) }
        func opened(_ path: String) -> Result<String, RegularFile.Problem> {
            RegularFile.openBeneath(fd, path: path, walk: walk).map { descriptor in
                defer { close(descriptor) }
                var buffer = [UInt8](repeating: 0, count: 64)
                let count = read(descriptor, &buffer, buffer.count)
                return String(decoding: buffer.prefix(max(count, 0)), as: UTF8.self)
            }
        }
        #expect(try opened("a/b/file").get() == "inside")
        #expect(opened("a/link") == .failure(.symbolicLink), "a link at the end")
        #expect(opened("dir/b/file") == .failure(.symbolicLink), "a link on the way")
        #expect(opened("../secret") == .failure(.outside))
        #expect(opened("/etc/passwd") == .failure(.outside))
        #expect(opened("a//b/file") == .failure(.outside))
        #expect(opened("a/none") == .failure(.missing))
    }
}
