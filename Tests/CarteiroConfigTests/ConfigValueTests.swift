import Testing
@testable import CarteiroConfig
import CarteiroMail

struct ConfigValueTests {
    @Test(arguments: [("30s", 30_000), ("5m", 300_000), ("1h30m", 5_400_000), ("2d", 172_800_000), ("500ms", 500), ("1w", 604_800_000), ("0", 0), ("90S", 90_000)])
    func durations(_ text: String, _ milliseconds: Int64) {
        #expect(ConfigDuration.parse(text) == .milliseconds(milliseconds))
    }

    @Test(arguments: ["", "5", "5 m", "m", "-5s", "1.5h", "5minutes", "99999999999999999999s", "200y"])
    func notDurations(_ text: String) {
        #expect(ConfigDuration.parse(text) == nil)
    }

    @Test func durationsFormatBack() {
        #expect(ConfigDuration.format(.seconds(90)) == "1m30s")
        #expect(ConfigDuration.format(.seconds(5 * 86_400)) == "5d")
        #expect(ConfigDuration.format(.milliseconds(1500)) == "1s500ms")
        #expect(ConfigDuration.format(.zero) == "0s")
    }

    @Test func sizes() {
        #expect(ConfigSize.parse("25MB") == 25 << 20)
        #expect(ConfigSize.parse("512kb") == 512 << 10)
        #expect(ConfigSize.parse("1 GiB") == 1 << 30)
        #expect(ConfigSize.parse("100") == 100)
        #expect(ConfigSize.parse("25XB") == nil)
        #expect(ConfigSize.parse("MB") == nil)
        #expect(ConfigSize.parse("99999999999999999GB") == nil)
        #expect(ConfigSize.format(25 << 20) == "25MB")
    }

    @Test func addresses() {
        #expect(MailAddress(parsing: "ACME Service Desk <support@acme.example>") == MailAddress(name: "ACME Service Desk", address: "support@acme.example"))
        #expect(MailAddress(parsing: "\"Souza, Ana\" <ana@x.example>") == MailAddress(name: "Souza, Ana", address: "ana@x.example"))
        #expect(MailAddress(parsing: "  joao@acme.example ") == MailAddress(address: "joao@acme.example"))
        #expect(MailAddress(parsing: "<joao@acme.example>") == MailAddress(address: "joao@acme.example"))
        #expect(MailAddress(parsing: "João Araújo <joão@açúcar.example>")?.name == "João Araújo")
        for bad in ["no-at-sign", "two@@example.com", "a@b@c", "x@", "@x.com", "a b@c.com", "a@b..com", "a@-b.com",
                    "Name <a@b.com", "evil@x.com\r\nBcc: all@x.com", "Name\n <a@b.com>", "a@b.com>"] {
            #expect(MailAddress(parsing: bad) == nil, "\(bad) should be refused")
        }
    }

    @Test func nearestNames() {
        #expect(NearestName.suggest("sever", among: ["server", "sender", "port"]) == "server")
        #expect(NearestName.suggest("pasword", among: ["password", "port"]) == "password")
        #expect(NearestName.suggest("hostname", among: ["server", "port"]) == "server")
        #expect(NearestName.suggest("prot", among: ["port", "provider"]) == "port")
        #expect(NearestName.suggest("completely-different", among: ["server", "port"]) == nil)
        #expect(NearestName.editDistance("ab", "ba") == 1)
    }

    @Test func modifiedUTF7() {
        #expect(IMAPMailboxName.encode("INBOX") == "INBOX")
        #expect(IMAPMailboxName.encode("Processados/Março") == "Processados/Mar&AOc-o")
        #expect(IMAPMailboxName.encode("R&D") == "R&-D")
        #expect(IMAPMailboxName.encode("日本語") == "&ZeVnLIqe-")
        #expect(IMAPMailboxName.encode("~peter/mail/台北/日本語") == "~peter/mail/&U,BTFw-/&ZeVnLIqe-")
        for name in ["Março", "R&D", "日本語", "Ação & Reação 😀", "plain"] {
            #expect(IMAPMailboxName.decode(IMAPMailboxName.encode(name)) == name)
        }
        #expect(IMAPMailboxName.decode("&Jjo!") == nil)
        #expect(IMAPString.quoted("a \"b\" \\c") == "\"a \\\"b\\\" \\\\c\"")
        #expect(IMAPString.quoted("line\r\nbreak") == nil)
    }

    @Test func imapResponseReaders() {
        #expect(IMAPResponseText.count("* 12 EXISTS", keyword: "EXISTS") == 12)
        #expect(IMAPResponseText.responseCode("* OK [UIDVALIDITY 1700000000] UIDs valid")! == ("UIDVALIDITY", "1700000000"))
        #expect(IMAPResponseText.searchResults("* SEARCH 3 5 9") == .uids([3, 5, 9]))
        #expect(IMAPResponseText.searchResults("* SEARCH 3 4294967296") == .invalid("4294967296"))
        #expect(IMAPResponseText.searchResults("* SEARCH -1") == .invalid("-1"))
        #expect(IMAPResponseText.searchResults("* SEARCH 0") == .invalid("0"))
        #expect(IMAPResponseText.listedMailbox("* LIST (\\HasNoChildren) \".\" \"Processed\"") == "Processed")
        #expect(IMAPResponseText.listedMailbox("* LIST (\\HasNoChildren) NIL INBOX") == "INBOX")
    }
}

struct LineBreakInValueTests {
    /// "\r\n" is one Character in Swift: the check must look at scalars, or CRLF slips through.
    @Test func anEscapedCRLFInASingleLineValueIsRefused() {
        let outcome = ConfigurationFile.load(text: "[daemon]\nsystem_outbound = \"o\"\n[mailbox.o]\ntype = \"outbound\"\nserver = \"h\"\nsender = \"Desk\\r\\nBcc: x@y.z <a@b.c>\"\n", file: "i.conf")
        #expect(outcome.errors.map(\.description).contains { $0.hasPrefix("i.conf:6:10: `sender`: this value cannot span lines") })
    }
}
