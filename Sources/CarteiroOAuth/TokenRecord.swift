import CarteiroConfig
import CarteiroJSON
import Foundation

/// What Carteiro holds for one OAuth account (a client and a mailbox user): the tokens, when
/// they were issued and used, and whether a person must authorize again. Stored as JSON, 0600.
package struct TokenRecord: Sendable, Equatable {
    package var refreshToken: Secret?
    package var accessToken: Secret?
    /// Epoch seconds; 0 when there is no access token.
    package var accessExpiresAt: Int64 = 0
    package var accessIssuedAt: Int64 = 0
    /// When the refresh token in hand was issued (by `carteiro authorize` or a rotation).
    package var refreshIssuedAt: Int64?
    /// The last time a refresh succeeded (a refresh token's inactivity clock restarts there).
    package var lastRefreshAt: Int64?
    package var authorizedAt: Int64?
    /// Set when the authorization server refused the grant for good (invalid_grant): nothing is
    /// asked of it again until `carteiro authorize` stores a new refresh token.
    package var needsAuthorization: String?
    /// The warning before a refresh token runs out has been raised for this refresh token.
    package var expiryWarned: Bool = false

    package init() {}

    /// 2100-01-01: no time Carteiro stores or computes goes past it.
    package static let latestTime: Int64 = 4_102_444_800

    /// `time + seconds`, kept within 1970…2100 (the operands come from servers and files).
    package static func later(_ time: Int64, by seconds: Int64) -> Int64 {
        let (sum, overflow) = time.addingReportingOverflow(seconds)
        return overflow ? (seconds > 0 ? latestTime : 0) : min(max(sum, 0), latestTime)
    }

    package func accessValid(at now: Int64, margin: Int64 = 0) -> Bool {
        accessToken != nil && accessExpiresAt - margin > now
    }

    /// Refresh ahead of time: when less than a quarter of the token's life (at most 5 minutes,
    /// at least 10 seconds) is left.
    package var refreshMargin: Int64 {
        let lifetime = max(accessExpiresAt - accessIssuedAt, 0)
        return min(max(lifetime / 4, 10), 300)
    }

    /// The record as its file holds it: keys sorted, one a line.
    func json() -> [UInt8] {
        var members: [(String, JSONValue)] = [("access_expires_at", .number(accessExpiresAt))]
        members.append(("access_issued_at", .number(accessIssuedAt)))
        if let accessToken { members.append(("access_token", .string(accessToken.value))) }
        if let authorizedAt { members.append(("authorized_at", .number(authorizedAt))) }
        members.append(("expiry_warned", .bool(expiryWarned)))
        if let lastRefreshAt { members.append(("last_refresh_at", .number(lastRefreshAt))) }
        if let needsAuthorization { members.append(("needs_authorization", .string(needsAuthorization))) }
        if let refreshIssuedAt { members.append(("refresh_issued_at", .number(refreshIssuedAt))) }
        if let refreshToken { members.append(("refresh_token", .string(refreshToken.value))) }
        return JSONValue.object(members).renderedBytes()
    }

    static func parse(_ bytes: [UInt8]) -> TokenRecord? {
        guard let object = JSONValue.parse(bytes), object.members != nil else { return nil }
        func int(_ key: String) -> Int64? { object[key]?.int64 }
        func text(_ key: String) -> String? { object[key]?.string }
        var record = TokenRecord()
        // Times are clamped to 1970…2100: a damaged or edited file cannot make arithmetic trap.
        func time(_ key: String) -> Int64? { int(key).map { min(max($0, 0), TokenRecord.latestTime) } }
        record.refreshToken = text("refresh_token").map(Secret.init)
        record.accessToken = text("access_token").map(Secret.init)
        record.accessExpiresAt = time("access_expires_at") ?? 0
        record.accessIssuedAt = time("access_issued_at") ?? 0
        record.refreshIssuedAt = time("refresh_issued_at")
        record.lastRefreshAt = time("last_refresh_at")
        record.authorizedAt = time("authorized_at")
        record.needsAuthorization = text("needs_authorization")
        record.expiryWarned = object["expiry_warned"]?.bool ?? false
        return record
    }
}
