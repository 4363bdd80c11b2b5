import CarteiroMail

/// Who really sent a message, as the receiving server judged it: the SPF, DKIM and DMARC results
/// of the `Authentication-Results` fields that a server the mailbox trusts added, and whether
/// they vouch for the author's domain (the `From:` address's).
///
/// Which fields count: only those whose authserv-id the mailbox names, and of those only the
/// ones above the first `Received:` field below the topmost of them. The receiving server puts
/// its verdict at the top; one a sender wrote into the message (with the same id, hoping it is
/// believed) sits below the server's own `Received:` line, and is ignored.
package struct SenderAuthentication: Sendable, Equatable {
    package enum Verdict: String, Sendable {
        /// DMARC passed, or an SPF or DKIM pass for the author's domain.
        case pass
        /// DMARC failed, or (without DMARC) SPF failed for the author's own domain and no DKIM
        /// signature of it passed: the author is likely forged.
        case fail
        /// Checked, but nothing vouches for the author's domain (no DMARC policy, a mailing
        /// list's or a forwarder's signature): neither proven nor disproven.
        case none
        /// No trusted server said anything: the mailbox's server adds no results, or none that
        /// the mailbox trusts.
        case unknown
    }

    package struct Signature: Sendable, Equatable {
        package var result: String
        package var domain: String?
    }

    package var verdict: Verdict
    /// The trusted server whose results these are.
    package var authservID: String?
    package var spf: String?
    /// The envelope sender's domain SPF checked.
    package var spfDomain: String?
    package var dkim: [Signature]
    package var dmarc: String?
    /// Whether a passing SPF or DKIM result is for the author's domain (relaxed alignment).
    package var aligned: Bool

    static let maximumFields = 50

    /// The verdict for `header` (whose `From:` domain is `authorDomain`), trusting `authservIDs`.
    package static func judge(_ header: HeaderBlock, authorDomain: String?, trusting authservIDs: Set<String>) -> SenderAuthentication {
        var unknown = SenderAuthentication(verdict: .unknown, authservID: nil, spf: nil, spfDomain: nil, dkim: [], dmarc: nil, aligned: false)
        guard !authservIDs.isEmpty else { return unknown }
        var trusted: [AuthenticationResults] = []
        var examined = 0
        for field in header.fields {
            if field.lowercasedName == "received" && !trusted.isEmpty { break }
            guard field.lowercasedName == "authentication-results" else { continue }
            examined += 1
            if examined > maximumFields { break }
            if let results = AuthenticationResults.parse(field.value), authservIDs.contains(results.authservID) { trusted.append(results) }
        }
        guard let first = trusted.first else { return unknown }
        let all = trusted.flatMap(\.results)
        guard all.contains(where: { ["spf", "dkim", "dmarc"].contains($0.method) }) else { return unknown }
        unknown.authservID = first.authservID
        var judged = unknown
        let author = authorDomain?.lowercased()
        if let spf = all.first(where: { $0.method == "spf" }) {
            judged.spf = spf.result
            judged.spfDomain = (spf.properties["smtp.mailfrom"] ?? spf.properties["smtp.helo"]).map(domain(of:))
        }
        judged.dkim = all.filter { $0.method == "dkim" }.prefix(10).map { result in
            Signature(result: result.result, domain: (result.properties["header.d"] ?? result.properties["header.i"].map(domain(of:)))?.lowercased())
        }
        judged.dmarc = all.first(where: { $0.method == "dmarc" })?.result
        let spfAligned = judged.spf == "pass" && aligned(judged.spfDomain, author)
        let dkimAligned = judged.dkim.contains { $0.result == "pass" && aligned($0.domain, author) }
        judged.aligned = spfAligned || dkimAligned
        switch judged.dmarc {
        case "pass": judged.verdict = .pass
        case "fail": judged.verdict = .fail
        default:
            if judged.aligned {
                judged.verdict = .pass
            } else if judged.dmarc == nil, ["fail", "softfail"].contains(judged.spf ?? ""), aligned(judged.spfDomain, author) {
                judged.verdict = .fail
            } else {
                judged.verdict = .none
            }
        }
        return judged
    }

    /// The domain of `user@domain`, or the value itself when it has no `@`.
    static func domain(of value: String) -> String {
        let trimmed = value.trimmingCharacters(in: "<").trimmingCharacters(in: ">")
        return (trimmed.split(separator: "@").last.map(String.init) ?? trimmed).lowercased()
    }

    /// Relaxed alignment, without the public suffix list: the same domain, or one under the
    /// other (`mail.acme.example` and `acme.example`). Where it matters the receiving server's
    /// own `dmarc=` result, which knows the list, decides first.
    static func aligned(_ domain: String?, _ author: String?) -> Bool {
        guard let domain, let author, !domain.isEmpty, !author.isEmpty else { return false }
        return domain == author || domain.hasSuffix("." + author) || author.hasSuffix("." + domain) && domain.contains(".")
    }
}
