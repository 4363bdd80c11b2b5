#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization

/// Which contract each request belongs to, as far as Carteiro knows: every notification it
/// queues for request R of contract C records the pair (`<state>/request-contracts`, one
/// `R C` line each, appended). The inbound side asks it before attaching a reply to a request
/// by its subject tag: anyone can type `[REQ#R]`, and a tag must not attach one customer's mail
/// to another customer's request.
package final class RequestContracts: Sendable {
    package let path: String
    /// What the file said when last read, and its size then.
    private let known = Mutex<(contracts: [String: String], loadedSize: Int64)>(([:], -1))

    package init(stateDirectory: String) {
        path = stateDirectory + "/request-contracts"
    }

    /// The contract of `request`, when a notification about it was ever queued with one.
    package func contract(of request: String) -> String? {
        known.withLock { known in
            refresh(&known)
            return known.contracts[request]
        }
    }

    /// Records that `request` belongs to `contract` (once per pair).
    package func record(request: String, contract: String) throws(DurableFiles.Failure) {
        try known.withLock { known throws(DurableFiles.Failure) in
            refresh(&known)
            guard known.contracts[request] != contract, Self.isSafe(request), Self.isSafe(contract) else { return }
            // One write with O_APPEND: lines from `carteiro send` and the daemon never interleave.
            let descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
            guard descriptor >= 0 else { throw DurableFiles.failure("cannot open", path) }
            defer { close(descriptor) }
            let line = Array("\(request) \(contract)\n".utf8)
            guard line.withUnsafeBytes({ write(descriptor, $0.baseAddress, $0.count) }) == line.count, fsync(descriptor) == 0 else {
                throw DurableFiles.failure("cannot append to", path)
            }
            known.contracts[request] = contract
        }
    }

    static func isSafe(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 200 && name.utf8.allSatisfy { $0 > 32 && $0 < 127 }
    }

    /// Reads the file again when it grew (another process appended to it).
    private func refresh(_ known: inout (contracts: [String: String], loadedSize: Int64)) {
        var info = stat()
        guard stat(path, &info) == 0, Int64(info.st_size) != known.loadedSize else { return }
        guard let data = DurableFiles.read(path) else { return }
        known.loadedSize = Int64(info.st_size)
        for line in data.split(separator: 10) {
            let words = line.split(separator: 32)
            guard words.count == 2 else { continue }
            known.contracts[String(decoding: words[0], as: UTF8.self)] = String(decoding: words[1], as: UTF8.self)
        }
    }
}
