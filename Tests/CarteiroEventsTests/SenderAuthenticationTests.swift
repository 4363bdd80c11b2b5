import Foundation
import Testing
@testable import CarteiroEvents
@testable import CarteiroMail

/// Authentication-Results read as RFC 8601 writes them, and as a hostile sender might: only the
/// trusted server's fields above its own Received: line count.
struct SenderAuthenticationTests {
    func judge(_ header: String, from: String = "customer.example", trusting: Set<String> = ["mx.acme.example"]) -> SenderAuthentication {
        let (block, _) = HeaderBlock.parse(Array((header + "\r\n\r\n").utf8)[...])
        return SenderAuthentication.judge(block, authorDomain: from, trusting: trusting)
    }

    @Test func theFieldsSyntaxWithCommentsQuotesAndVersions() throws {
        let field = try #require(AuthenticationResults.parse(Array(#"mx.acme.example 1; (a (nested) comment) dkim/1=pass (good "sig") header.d="customer.example" header.b=ab/cd==; spf = fail smtp.mailfrom=a@b.example reason="no \"match\""; none"#.utf8)))
        #expect(field.authservID == "mx.acme.example")
        #expect(field.results.map(\.method) == ["dkim", "spf"])
        #expect(field.results[0].result == "pass" && field.results[0].properties["header.d"] == "customer.example")
        #expect(field.results[1].result == "fail" && field.results[1].properties["smtp.mailfrom"] == "a@b.example")
        #expect(AuthenticationResults.parse(Array("; spf=pass".utf8)) == nil)
        #expect(AuthenticationResults.parse(Array("mx.acme.example; none".utf8))?.results == [])
    }

    @Test func onlyTheTrustedServersFieldsAboveItsReceivedLineCount() {
        // The server's verdict, then its Received:, then one the sender wrote with its id.
        let forged = judge("""
            Authentication-Results: mx.acme.example; dmarc=fail header.from=customer.example
            Received: from x by mx.acme.example; Tue, 24 Nov 2026 10:00:01 -0300
            Authentication-Results: mx.acme.example; dmarc=pass header.from=customer.example
            """.replacingOccurrences(of: "\n", with: "\r\n"))
        #expect(forged.verdict == .fail)
        // Two fields of the trusted server (one per checker) both count.
        let split = judge("Authentication-Results: mx.acme.example; spf=pass smtp.mailfrom=a@customer.example\r\nAuthentication-Results: mx.acme.example; dkim=pass header.d=other.example")
        #expect(split.verdict == .pass && split.spf == "pass" && split.dkim.map(\.domain) == ["other.example"])
        // Another server's say-so is nobody's.
        #expect(judge("Authentication-Results: evil.example; dmarc=pass").verdict == .unknown)
        #expect(judge("Subject: no results").verdict == .unknown)
        #expect(judge("Authentication-Results: MX.ACME.EXAMPLE; dmarc=pass").verdict == .pass)
        // No trusted ids at all: not judged.
        #expect(judge("Authentication-Results: mx.acme.example; dmarc=fail", trusting: []).verdict == .unknown)
    }

    @Test func verdictsAndAlignment() {
        #expect(judge("Authentication-Results: mx.acme.example; dkim=pass header.d=mail.customer.example").verdict == .pass)
        #expect(judge("Authentication-Results: mx.acme.example; dkim=pass header.d=example").verdict == .none, "a bare suffix aligns nothing")
        #expect(judge("Authentication-Results: mx.acme.example; spf=fail smtp.mailfrom=x@customer.example").verdict == .fail)
        #expect(judge("Authentication-Results: mx.acme.example; spf=fail smtp.mailfrom=x@other.example").verdict == .none)
        #expect(judge("Authentication-Results: mx.acme.example; spf=fail smtp.mailfrom=x@customer.example; dmarc=none").verdict == .none,
                "a domain without a DMARC policy does not make a forwarded message's SPF failure a forgery")
        #expect(judge("Authentication-Results: mx.acme.example; dmarc=temperror; dkim=pass header.d=customer.example").verdict == .pass)
    }

    @Test func hostileFieldsAreBounded() {
        // Thousands of results, fields, open comments and quotes, an enormous value: parsed within
        // the limits, in no time worth measuring, and never trapping.
        let many = "mx.acme.example" + String(repeating: "; spf=pass smtp.mailfrom=a@b", count: 10_000)
        #expect((AuthenticationResults.parse(Array(many.utf8))?.results.count ?? 0) <= AuthenticationResults.maximumResults)
        let fields = String(repeating: "Authentication-Results: mx.acme.example; dkim=fail\r\n", count: 5_000)
        #expect(judge(fields).verdict == .none)
        for hostile in ["mx.acme.example; dkim=pass (" + String(repeating: "(", count: 100_000),
                        "mx.acme.example; dkim=\"" + String(repeating: "x", count: 100_000),
                        String(repeating: "\\", count: 50_000), "mx; =; ==; a=; =b; ;;;", "mx.acme.example; dkim=pass header.d=" + String(repeating: "a.", count: 50_000)] {
            _ = AuthenticationResults.parse(Array(hostile.utf8))
            _ = judge("Authentication-Results: " + hostile)
        }
    }
}
