import CarteiroConfig
import CarteiroJSON
import Dispatch
import Foundation
import Synchronization

/// Microsoft Graph's mail API for one mailbox (a user's or a shared one), as an application or
/// a person with a token for `https://graph.microsoft.com`: folders, delta rounds, a message's
/// size, MIME and header, and the changes `after_fetch` makes.
///
/// Every request asks for immutable ids (`Prefer: IdType="ImmutableId"`), so that a message keeps
/// its id when it moves. A 429 or a 503 is retried after the `Retry-After` the service asks for
/// (never sooner) while the deadline allows; every failure carries the service's `request-id`.
/// Each mailbox has a budget of requests per ten minutes, kept below the service's own limit.
package struct GraphAPI: Sendable {
    /// `https://graph.microsoft.com/v1.0` or a lab's.
    package let base: String
    /// The mailbox's address (or its user id).
    package let user: String
    package let token: Secret
    package let client: HTTPClient
    package let deadline: ContinuousClock.Instant
    let budget: GraphBudget

    /// At most this many requests of one mailbox at once (the service allows 4).
    package static let concurrency = 4
    /// A poll waits out a Retry-After up to this long; a longer one ends the poll (the mailbox
    /// is held back until then, and its next poll goes on).
    static let longestWait: Duration = .seconds(30)
    /// The most a JSON answer (a delta page, a folder list) may hold.
    static let jsonLimit = 16 << 20

    package init(base: String, user: String, token: Secret, tls: TLSSettings, timeout: Duration, deadline: ContinuousClock.Instant) {
        self.base = base.hasSuffix("/") ? String(base.dropLast()) : base
        self.user = user
        self.token = token
        client = HTTPClient(tls: tls, timeout: timeout)
        self.deadline = deadline
        budget = GraphBudget.of(mailbox: self.base + "/" + user.lowercased())
    }

    /// `https://HOST:PORT/v1.0` for a mailbox's `server` and `port`.
    package static func base(server: String, port: Int) -> String {
        let host = server.contains(":") && !server.hasPrefix("[") ? "[\(server)]" : server
        return port == 443 ? "https://\(host)/v1.0" : "https://\(host):\(port)/v1.0"
    }

    var mailboxURL: String { base + "/users/" + Self.pathEscaped(user) }

    /// What a failed request means, in words: the status, the service's code and message,
    /// and its request-id.
    package struct Failure: Error, Sendable, CustomStringConvertible {
        package var status: Int?
        package var code: String?
        package var message: String
        package var requestID: String?
        package var kind: MailConnectionError.Kind

        package init(status: Int?, code: String?, message: String, requestID: String?, kind: MailConnectionError.Kind) {
            self.status = status
            self.code = code
            self.message = message
            self.requestID = requestID
            self.kind = kind
        }

        package var description: String {
            var text = message
            if let code { text += " (\(code))" }
            if let requestID { text += " [request-id \(requestID)]" }
            return text
        }

        package var connectionError: MailConnectionError {
            MailConnectionError(kind, endpoint: "graph", message: description, serverReply: nil)
        }
    }

    // MARK: - Requests

    /// One request, retried after a 429 or a 503 as the service says (while the deadline
    /// allows, at most 8 times).
    package func send(_ method: String, _ url: String, body: [UInt8]? = nil, contentType: String? = nil, limit: Int = jsonLimit,
                      extraHeaders: [String] = []) throws(Failure) -> HTTPClient.Response {
        var headers = ["Authorization: Bearer \(token.value)", "Prefer: IdType=\"ImmutableId\"", "Accept: application/json"] + extraHeaders
        if let contentType { headers.append("Content-Type: \(contentType)") }
        for attempt in 1...8 {
            // A Retry-After holds back every request of the mailbox, not only the one refused:
            // a request sent meanwhile would count against the limit again.
            let pause = budget.pause()
            if pause > .zero {
                guard pause <= Self.longestWait, ContinuousClock.now + pause < deadline else {
                    throw Failure(status: 429, code: "ApplicationThrottled", message: "Graph asked this mailbox to wait longer than the poll may", requestID: nil, kind: .tooSlow)
                }
                Thread.sleep(forTimeInterval: Double(pause.components.seconds) + Double(pause.components.attoseconds) / 1e18)
            }
            guard budget.take() else {
                throw Failure(status: nil, code: nil, message: "this mailbox's Graph requests are kept below \(GraphBudget.limit) per 10 minutes, and that many were sent: the next poll goes on", requestID: nil, kind: .tooSlow)
            }
            let response: HTTPClient.Response
            switch client.send(method, url, headers: headers, body: body, limit: limit) {
            case .success(let answer): response = answer
            case .failure(let failure):
                throw Failure(status: nil, code: nil, message: failure.message, requestID: nil, kind: failure.kind)
            }
            if response.status == 429 || response.status == 503, attempt < 8 {
                let wait = Self.retryAfter(response.header("Retry-After"))
                // Held whatever happens: no request of this mailbox goes before then, in this
                // poll or the next.
                budget.hold(for: wait)
                guard wait <= Self.longestWait, ContinuousClock.now + wait < deadline else { throw failure(response, url: url) }
                continue
            }
            guard (200..<300).contains(response.status) else { throw failure(response, url: url) }
            return response
        }
        throw Failure(status: nil, code: nil, message: "\(method) \(HTTPClient.redactedURL(url)) was throttled 8 times in a row", requestID: nil, kind: .tooSlow)
    }

    /// `Retry-After` in seconds (an HTTP date counts from now); absent or unreadable: 1 s.
    /// At most 5 minutes: beyond, the poll ends and the next one tries.
    static func retryAfter(_ value: String?) -> Duration {
        guard let value = value?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return .seconds(1) }
        if let seconds = Int(value) { return .seconds(min(max(seconds, 0), 300)) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        if let date = formatter.date(from: value) { return .seconds(min(max(Int(date.timeIntervalSinceNow.rounded(.up)), 0), 300)) }
        return .seconds(1)
    }

    func failure(_ response: HTTPClient.Response, url: String) -> Failure {
        let error = JSONValue.parse(response.body)?["error"]
        let code = error?["code"]?.string
        let serviceMessage = error?["message"]?.string.map { String($0.prefix(300)) }
        let requestID = response.header("request-id") ?? error?["innerError"]?["request-id"]?.string
        let kind: MailConnectionError.Kind
        var words: String
        switch response.status {
        case 401:
            kind = .loginRejected
            words = "Graph refused the token (401): " + (code == "InvalidAuthenticationToken" ? "it is expired, or for another resource (a token for IMAP or SMTP is not a Graph token: the OAuth client's scope must be https://graph.microsoft.com/.default or Graph's own scopes)" : "it is not valid")
        case 403:
            kind = .commandRefused
            if serviceMessage?.contains("OData is disabled") == true {
                words = "Graph refused access to mailbox \(user) (403): it is outside the application's scope; ask the admin to add it to the application access policy / RBAC for Applications"
            } else {
                words = "Graph refused this request for mailbox \(user) (403): the application lacks the permission (reading needs Mail.Read, after_fetch = seen, move and delete need Mail.ReadWrite, sending needs Mail.Send; grant it and give admin consent)"
            }
        case 404:
            kind = .folderMissing
            words = "Graph has no such item (404) at \(HTTPClient.redactedURL(url))"
        case 410:
            kind = .commandRefused
            words = "Graph no longer knows this sync state (410)"
        case 413:
            kind = .tooLarge
            words = "Graph refused the request as too large (413: at most 4 MB)"
        case 429, 503:
            kind = .tooSlow
            words = "Graph is throttling this mailbox (\(response.status)) longer than the poll may wait"
        default:
            kind = response.status >= 500 ? .other : .commandRefused
            words = "Graph answered \(response.status) to \(HTTPClient.redactedURL(url))"
        }
        if let serviceMessage { words += ": " + serviceMessage }
        return Failure(status: response.status, code: code, message: words, requestID: requestID, kind: kind)
    }

    func json(_ method: String, _ url: String, body: JSONValue? = nil) throws(Failure) -> JSONValue {
        let response = try send(method, url, body: body.map { $0.renderedCompact() }, contentType: body == nil ? nil : "application/json")
        if response.body.isEmpty { return .object([]) }
        guard let value = JSONValue.parse(response.body) else {
            throw Failure(status: response.status, code: nil, message: "Graph's answer to \(method) \(HTTPClient.redactedURL(url)) is not JSON (cut short?)",
                          requestID: response.header("request-id"), kind: .connectionLost)
        }
        return value
    }

    // MARK: - Folders

    /// A folder's id from a well-known name (`inbox`, `archive` …) or a path of display names
    /// (`Inbox/Support`, case ignored), walked from the top of the mailbox.
    package func folderID(_ reference: String) throws(Failure) -> String {
        let parts = reference.split(separator: "/").map(String.init)
        if parts.count <= 1, Self.wellKnownFolders.contains(reference.lowercased()) {
            return try json("GET", mailboxURL + "/mailFolders/" + reference.lowercased() + "?$select=id")["id"]?.string ?? reference.lowercased()
        }
        var parent: String? = nil
        for (depth, name) in parts.enumerated() {
            // A path's first part may itself be a well-known name (Inbox/Support).
            if depth == 0, Self.wellKnownFolders.contains(name.lowercased()) {
                parent = try json("GET", mailboxURL + "/mailFolders/" + name.lowercased() + "?$select=id")["id"]?.string
                continue
            }
            let children = try childFolders(of: parent)
            guard let match = children.first(where: { $0.name.lowercased() == name.lowercased() }) else {
                let names = children.map(\.name)
                throw Failure(status: 404, code: "ErrorFolderNotFound", message: "mailbox \(user) has no folder \"\(reference)\"" + (names.isEmpty ? "" : "; there: " + names.prefix(20).joined(separator: ", ")),
                              requestID: nil, kind: .folderMissing)
            }
            parent = match.id
        }
        guard let parent else { throw Failure(status: 404, code: nil, message: "mailbox \(user) has no folder \"\(reference)\"", requestID: nil, kind: .folderMissing) }
        return parent
    }

    /// The folders under `parent` (nil: the top), every page.
    package func childFolders(of parent: String?) throws(Failure) -> [(id: String, name: String)] {
        var url: String? = parent.map { mailboxURL + "/mailFolders/" + Self.pathEscaped($0) + "/childFolders?includeHiddenFolders=true" }
            ?? mailboxURL + "/mailFolders?includeHiddenFolders=true"
        var folders: [(id: String, name: String)] = []
        var pages = 0
        while let next = url, pages < 100 {
            pages += 1
            let page = try json("GET", next)
            for folder in page["value"]?.array ?? [] {
                if let id = folder["id"]?.string, let name = folder["displayName"]?.string { folders.append((id, name)) }
            }
            url = page["@odata.nextLink"]?.string
        }
        return folders
    }

    package static let wellKnownFolders: Set<String> = ["inbox", "archive", "sentitems", "deleteditems", "drafts", "junkemail", "outbox",
                                                        "msgfolderroot", "clutter", "conversationhistory", "scheduled", "searchfolders"]

    // MARK: - Delta

    /// A message as a delta page names it.
    package struct DeltaItem: Sendable, Equatable {
        package var id: String
        package var isRead: Bool

        package init(id: String, isRead: Bool) {
            self.id = id
            self.isRead = isRead
        }
    }

    /// Where a delta round of `folder` begins when there is no link: created messages only
    /// (updates, such as Carteiro's own isRead, would come back otherwise).
    package func initialDeltaURL(folder: String) -> String {
        mailboxURL + "/mailFolders/" + Self.pathEscaped(folder) + "/messages/delta?$select=id,isRead,receivedDateTime,internetMessageId&changeType=created"
    }

    package enum DeltaOutcome: Sendable {
        case round(items: [DeltaItem], deltaLink: String)
        /// The link is no longer known (410 SyncStateNotFound, or a reset): begin again without it.
        case expired
    }

    /// The most messages one round may name: a folder larger than this, or a service that
    /// never ends a round, is refused rather than held in memory (ids are about 150 bytes).
    package static let largestRound = 500_000

    /// One whole round: every nextLink followed (pages of `pageSize`), up to the deltaLink.
    /// Removals are left out; an id met twice (a replay) is kept once.
    package func deltaRound(from link: String, pageSize: Int) throws(Failure) -> DeltaOutcome {
        var items: [DeltaItem] = []
        var seen: Set<String> = []
        var url = link
        for _ in 0..<100_000 {
            guard items.count <= Self.largestRound else {
                throw Failure(status: nil, code: nil, message: "a delta round of mailbox \(user) names more than \(Self.largestRound) messages: refused rather than held in memory", requestID: nil, kind: .tooLarge)
            }
            let page: JSONValue
            do throws(Failure) {
                let response = try send("GET", url, extraHeaders: ["Prefer: odata.maxpagesize=\(pageSize)"])
                guard let parsed = JSONValue.parse(response.body) else {
                    throw Failure(status: response.status, code: nil, message: "a delta page of mailbox \(user) is not JSON (cut short?)",
                                  requestID: response.header("request-id"), kind: .connectionLost)
                }
                page = parsed
            } catch {
                if error.status == 410 || error.code == "SyncStateNotFound" || error.code == "resyncRequired" { return .expired }
                throw error
            }
            for entry in page["value"]?.array ?? [] {
                guard entry["@removed"] == nil, let id = entry["id"]?.string, !id.isEmpty else { continue }
                if seen.insert(id).inserted { items.append(DeltaItem(id: id, isRead: entry["isRead"]?.bool ?? false)) }
            }
            if let delta = page["@odata.deltaLink"]?.string { return .round(items: items, deltaLink: delta) }
            guard let next = page["@odata.nextLink"]?.string else {
                throw Failure(status: nil, code: nil, message: "a delta page of mailbox \(user) has neither a nextLink nor a deltaLink", requestID: nil, kind: .protocolViolation)
            }
            url = next
        }
        throw Failure(status: nil, code: nil, message: "a delta round of mailbox \(user) did not end after 100,000 pages", requestID: nil, kind: .protocolViolation)
    }

    // MARK: - Messages

    func messageURL(_ id: String) -> String { mailboxURL + "/messages/" + Self.pathEscaped(id) }

    /// The message's size (`PidTagMessageSize`), before its MIME is asked for.
    package func size(of id: String) throws(Failure) -> Int? {
        let url = messageURL(id) + "?$select=id&$expand=singleValueExtendedProperties($filter=id%20eq%20'Integer%200x0E08')"
        let value = try json("GET", url)
        for property in value["singleValueExtendedProperties"]?.array ?? [] {
            if let text = property["value"]?.string, let size = Int(text) { return max(size, 0) }
        }
        return nil
    }

    /// The MIME (Graph makes it anew from the item: not the bytes that arrived).
    package func mime(of id: String, limit: Int) throws(Failure) -> [UInt8] {
        try send("GET", messageURL(id) + "/$value", limit: limit, extraHeaders: ["Accept: */*"]).body
    }

    /// The header alone, as lines, for a message too large to download.
    package func header(of id: String) throws(Failure) -> [UInt8] {
        let value = try json("GET", messageURL(id) + "?$select=internetMessageHeaders")
        var text = ""
        for field in value["internetMessageHeaders"]?.array ?? [] {
            guard let name = field["name"]?.string, let content = field["value"]?.string else { continue }
            text += name + ": " + content.replacingOccurrences(of: "\r", with: " ").replacingOccurrences(of: "\n", with: " ") + "\r\n"
        }
        return Array((text + "\r\n").utf8)
    }

    package func markRead(_ id: String) throws(Failure) {
        _ = try json("PATCH", messageURL(id), body: .object([("isRead", .bool(true))]))
    }

    package func move(_ id: String, to folder: String) throws(Failure) {
        _ = try json("POST", messageURL(id) + "/move", body: .object([("destinationId", .string(folder))]))
    }

    package func delete(_ id: String) throws(Failure) {
        _ = try send("DELETE", messageURL(id))
    }

    /// Ids are case-sensitive base64url: only what a path cannot hold is escaped.
    static func pathEscaped(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-_.~=@+")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }
}

/// Requests of one mailbox within the last ten minutes, kept below the service's limit (10,000)
/// with a margin, across polls. One per mailbox for the life of the process.
final class GraphBudget: Sendable {
    static let limit = 9_000
    static let window: Double = 600
    private let times = Mutex<[Double]>([])
    /// No request before this time (a Retry-After), in seconds since 1970.
    private let notBefore = Mutex<Double>(0)

    /// Holds every request of the mailbox back for `duration` from now (a longer hold stays).
    func hold(for duration: Duration) {
        let until = Date().timeIntervalSince1970 + Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        notBefore.withLock { $0 = max($0, until) }
    }

    /// How long a request must still wait.
    func pause() -> Duration {
        let wait = notBefore.withLock { $0 } - Date().timeIntervalSince1970
        return wait > 0 ? .milliseconds(Int((wait * 1000).rounded(.up))) : .zero
    }
    private static let all = Mutex<[String: GraphBudget]>([:])

    static func of(mailbox: String) -> GraphBudget {
        all.withLock { all in
            if let budget = all[mailbox] { return budget }
            let budget = GraphBudget()
            all[mailbox] = budget
            return budget
        }
    }

    /// Counts one request, or says the budget is spent.
    func take() -> Bool {
        let now = Date().timeIntervalSince1970
        return times.withLock { times in
            if let first = times.first, first <= now - Self.window {
                times.removeAll { $0 <= now - Self.window }
            }
            guard times.count < Self.limit else { return false }
            times.append(now)
            return true
        }
    }
}
