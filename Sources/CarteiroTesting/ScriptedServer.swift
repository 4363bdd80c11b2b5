#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization

/// A TCP server on 127.0.0.1 that plays a script: a greeting, then for each line it receives,
/// the reply `respond` gives (nil: stay silent). For servers that lie, stall or lack a feature
/// that the real lab servers have: "accepts and never answers", "IMAP without STARTTLS".
package final class ScriptedServer: Sendable {
    package let port: Int
    private let listener: Int32
    private let greeting: String?
    private let respond: @Sendable (String, Writer) -> Void
    /// The connected clients, and whether the server was stopped.
    private let connections = Mutex<(clients: [Int32], stopped: Bool)>(([], false))

    /// The client's side of the connection, for servers that flood or trickle: each write
    /// says whether the client is still there.
    package struct Writer: Sendable {
        let client: Int32
        /// Tells one client's connection from another's (for servers that keep state per connection).
        package var connection: Int32 { client }
        @discardableResult
        package func write(_ text: String) -> Bool { write(Array(text.utf8)) }
        /// Drops the connection, as a server that crashes on a request does.
        package func hangUp() { shutdown(client, Int32(SHUT_RDWR)) }
        @discardableResult
        package func write(_ bytes: [UInt8]) -> Bool {
            var offset = 0
            while offset < bytes.count {
                let sent = bytes[offset...].withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if sent <= 0 { return false }
                offset += sent
            }
            return true
        }
    }

    /// Binds an ephemeral port on 127.0.0.1 and starts accepting.
    package convenience init(greeting: String?, respond: @escaping @Sendable (String) -> String? = { _ in nil }) throws {
        try self.init(greeting: greeting, stream: { line, writer in
            if let reply = respond(line) { writer.write(reply) }
        })
    }

    /// A server whose answer to a line is written as it goes (floods, trickles, endless
    /// replies): `stream` returns when the answer is complete or the client has gone.
    package init(greeting: String?, stream: @escaping @Sendable (String, Writer) -> Void) throws {
        self.greeting = greeting
        self.respond = stream
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard listener >= 0 else { throw POSIXError(.EMFILE) }
        self.listener = listener
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(listener, 16) == 0 else { close(listener); throw POSIXError(.EADDRINUSE) }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        self.port = Int(UInt16(bigEndian: address.sin_port))
        let thread = Thread { [self] in acceptLoop() }
        thread.start()
    }

    deinit { stop() }

    /// Stops accepting and hangs up on every client. File descriptors are closed only by the
    /// threads that use them, so a number reused by another socket is never touched here.
    package func stop() {
        connections.withLock { connections in
            guard !connections.stopped else { return }
            connections.stopped = true
            shutdown(listener, Int32(SHUT_RDWR))
            for client in connections.clients { shutdown(client, Int32(SHUT_RDWR)) }
        }
    }

    private func acceptLoop() {
        while true {
            let client = accept(listener, nil, nil)
            let failure = errno
            let stopped = connections.withLock { connections in
                if client >= 0 && !connections.stopped { connections.clients.append(client) }
                return connections.stopped
            }
            if client < 0 || stopped {
                if client >= 0 { close(client) }
                if stopped || (failure != EINTR && failure != ECONNABORTED) {
                    close(listener)
                    return
                }
                continue
            }
            let thread = Thread { [self] in
                serve(client)
                connections.withLock { connections in
                    connections.clients.removeAll { $0 == client }
                    close(client)
                }
            }
            thread.start()
        }
    }

    private func serve(_ client: Int32) {
        if let greeting { write(client, greeting) }
        var pending = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = recv(client, &chunk, chunk.count, 0)
            if count <= 0 { return }
            pending.append(contentsOf: chunk[0..<count])
            while let newline = pending.firstIndex(of: 10) {
                var line = Array(pending[..<newline])
                if line.last == 13 { line.removeLast() }
                pending.removeFirst(newline + 1)
                respond(String(decoding: line, as: UTF8.self), Writer(client: client))
            }
        }
    }

    private func write(_ client: Int32, _ text: String) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }
}
