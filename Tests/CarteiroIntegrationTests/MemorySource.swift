import Foundation
import CarteiroConfig
import CarteiroCurl
import CarteiroEvents
import CarteiroStore
@testable import CarteiroDaemon

/// A mail server in memory, for the tests of the seam between sources and the pipeline: its
/// messages are numbered from 1 in arrival order, `after_fetch` removes them, and a test makes
/// any step fail (`failing`).
final class MemoryServer: @unchecked Sendable {
    private let lock = NSLock()
    private var messages: [(number: Int, bytes: [UInt8])] = []
    private var removed: Set<Int> = []
    private var steps: [String] = []
    /// Which steps fail, by name (`connect`, `list`, `fetch 3`, `after_fetch`), and whether the
    /// failure breaks the connection; nil: the step goes through.
    private var failing: @Sendable (String) -> (broken: Bool, reason: String)? = { _ in nil }

    /// Adds messages `from...to`, each a small message of its own.
    func deliver(_ numbers: ClosedRange<Int>) {
        lock.withLock {
            for number in numbers {
                messages.append((number, Array("Message-ID: <m\(number)@memory.example>\r\nFrom: c\(number)@customer.example\r\nSubject: message \(number)\r\n\r\nbody \(number)\r\n".utf8)))
            }
        }
    }

    func fail(_ rule: @escaping @Sendable (String) -> (broken: Bool, reason: String)?) { lock.withLock { failing = rule } }

    var present: [Int] { lock.withLock { messages.map(\.number).filter { !removed.contains($0) } } }
    var removedNumbers: Set<Int> { lock.withLock { removed } }
    var stepsTaken: [String] { lock.withLock { steps } }

    /// Records the step, and throws when the test says it fails.
    func step(_ name: String, endpoint: String) throws(MailConnectionError) {
        let failure = lock.withLock { () -> (broken: Bool, reason: String)? in
            steps.append(name)
            return failing(name)
        }
        guard let failure else { return }
        throw MailConnectionError(failure.broken ? .connectionLost : .commandRefused, endpoint: endpoint, message: "\(name): \(failure.reason)")
    }

    func listing() -> [(number: Int, size: Int)] {
        lock.withLock { messages.filter { !removed.contains($0.number) }.map { ($0.number, $0.bytes.count) } }
    }

    func body(_ number: Int) -> [UInt8]? {
        lock.withLock { removed.contains(number) ? nil : messages.first { $0.number == number }?.bytes }
    }

    func remove(_ numbers: [Int]) { lock.withLock { removed.formUnion(numbers) } }
}

/// The in-memory server as a mail source: everything a source does, nothing the pipeline does.
struct MemorySource: MailSource {
    /// The highest message number handed on.
    struct Cursor: Codable, Equatable, Sendable {
        var last: Int
    }

    static let kind = "memory"
    let mailbox: InboundMailbox
    let server: MemoryServer

    func withConnection(credentials: MailSession.Credentials, login: MailboxLogin, fresh: Bool, deadline: ContinuousClock.Instant,
                        _ round: (MemoryConnection) throws -> PollRound) throws(PollFailure) -> PollRound {
        try PollFailure.sorting(mailbox, password: credentials.password) {
            try server.step("connect", endpoint: "memory")
            return try round(MemoryConnection(mailbox: mailbox, server: server))
        }
    }
}

final class MemoryConnection: SourceConnection {
    typealias Cursor = MemorySource.Cursor
    let mailbox: InboundMailbox
    let server: MemoryServer
    private(set) var isBroken = false

    init(mailbox: InboundMailbox, server: MemoryServer) {
        self.mailbox = mailbox
        self.server = server
    }

    func step(_ name: String) throws {
        do throws(MailConnectionError) {
            try server.step(name, endpoint: "memory")
        } catch {
            if error.kind == .connectionLost { isBroken = true }
            throw error
        }
    }

    func item(_ number: Int, size: Int) -> SourceItem { SourceItem(key: String(number), size: size, origin: MessageOrigin([String(number)])) }

    func list(since cursor: Cursor?, strikes: [String: MailboxState.Strike], skipping: Set<String>) throws -> SourceListing<Cursor> {
        try step("list")
        let listed = server.listing()
        let last = cursor?.last ?? 0
        // Messages with strikes below the position are listed again, as IMAP lists its holes.
        let retried = Set(strikes.filter { $0.value.count < MailboxState.Strike.limit }.keys.compactMap { Int($0) })
        let present = Set(listed.map { String($0.number) })
        let highest = listed.map(\.number).max() ?? 0
        return SourceListing(
            items: listed.filter { $0.number > last || retried.contains($0.number) }.map { item($0.number, size: $0.size) },
            // Handed on, still there, not given up: their after_fetch never ran.
            leftovers: cursor == nil ? [] : listed.filter { $0.number <= last && strikes[String($0.number)] == nil }.map { item($0.number, size: $0.size) },
            restart: cursor == nil ? Cursor(last: 0) : nil,
            isStale: { !present.contains($0) },
            advance: { from, handed, isLast in
                Cursor(last: max(from?.last ?? 0, handed.compactMap { Int($0.key) }.max() ?? 0, isLast ? highest : 0))
            },
            messageCount: nil)
    }

    func request(_ batch: [SourceItem]) throws -> [SourceItem] { batch }

    func collect(_ batch: [SourceItem]) throws -> [InboundIngest.Fetched] {
        try batch.compactMap { item in
            guard let number = Int(item.key) else { return nil }
            try step("fetch \(number)")
            guard let bytes = server.body(number) else { return nil }
            return InboundIngest.Fetched(key: item.key, origin: item.origin, bytes: bytes, size: bytes.count, oversize: false)
        }
    }

    func afterFetch(_ items: [SourceItem]) throws -> String? {
        guard mailbox.afterFetch == .delete, !items.isEmpty else { return nil }
        do {
            try step("after_fetch")
        } catch {
            if isBroken { throw error }
            return "\(error)"
        }
        server.remove(items.compactMap { Int($0.key) })
        return nil
    }

    func everyHeader() throws -> [[UInt8]]? { nil }
    func finish() -> String? { nil }
}
