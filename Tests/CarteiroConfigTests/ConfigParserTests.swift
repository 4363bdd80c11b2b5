import Testing
@testable import CarteiroConfig

/// The language itself: what each construct parses to, and where errors point.
struct ConfigParserTests {
    func values(_ text: String) -> [String: ConfigValue.Kind] {
        let result = ConfigParser.parse(text, file: "t.conf")
        #expect(result.diagnostics.items.isEmpty, "unexpected: \(result.diagnostics.items)")
        var out: [String: ConfigValue.Kind] = [:]
        for statement in result.statements {
            if case .assignment(let key, _, let value) = statement { out[key.joined(separator: ".")] = value.kind }
        }
        return out
    }

    func errors(_ text: String) -> [String] {
        ConfigParser.parse(text, file: "t.conf").diagnostics.items.map(\.description)
    }

    @Test func scalars() {
        let v = values("""
        a = "text"   # comment
        b = 'C:\\path\\no escapes'
        c = 42
        d = -7
        e = 1_000_000
        f = true
        g = false
        h = +3
        """)
        #expect(v["a"] == .string("text"))
        #expect(v["b"] == .string("C:\\path\\no escapes"))
        #expect(v["c"] == .integer(42))
        #expect(v["d"] == .integer(-7))
        #expect(v["e"] == .integer(1_000_000))
        #expect(v["f"] == .boolean(true))
        #expect(v["g"] == .boolean(false))
        #expect(v["h"] == .integer(3))
    }

    @Test func escapes() {
        let v = values(#"s = "tab\there \"quoted\" back\\slash \u00e9 \U0001F600 nl\n""#)
        #expect(v["s"] == .string("tab\there \"quoted\" back\\slash é 😀 nl\n"))
    }

    @Test func multilineStrings() {
        let v = values("""
        body = \"\"\"
        Olá {{recipient.name}},
          indented "quotes" ""two""
        \"\"\"
        joined = \"\"\"one \\
                 two\"\"\"
        raw = '''
        C:\\no\\escapes 'here'
        '''
        edge = \"\"\"ends with quote\"\"\"\"
        """)
        #expect(v["body"] == .string("Olá {{recipient.name}},\n  indented \"quotes\" \"\"two\"\"\n"))
        #expect(v["joined"] == .string("one two"))
        #expect(v["raw"] == .string("C:\\no\\escapes 'here'\n"))
        #expect(v["edge"] == .string("ends with quote\""))
    }

    @Test func arraysSpanLinesWithCommentsAndTrailingComma() {
        let v = values("""
        list = [
          "a",   # first
          "b",
          # a comment line
          "c",
        ]
        nested = [[1, 2], [3]]
        empty = []
        """)
        let location = SourceLocation(file: "t.conf", line: 1, column: 1)
        func strings(_ kind: ConfigValue.Kind?) -> [String] {
            guard case .array(let items)? = kind else { return [] }
            return items.compactMap { if case .string(let s) = $0.kind { s } else { nil } }
        }
        #expect(strings(v["list"]) == ["a", "b", "c"])
        if case .array(let outer)? = v["nested"] { #expect(outer.count == 2) } else { Issue.record("nested is not an array") }
        #expect(v["empty"] == .array([]))
        _ = location
    }

    @Test func headersAndDottedKeys() {
        let result = ConfigParser.parse("""
        [mailbox.acme-in]
        [ workflow . "request approval" . step.notify ]
        tls.verify = false
        "quoted key" = 1
        """, file: "t.conf")
        #expect(result.diagnostics.items.isEmpty)
        #expect(result.statements.count == 4)
        if case .header(let path, let location) = result.statements[1] {
            #expect(path == ["workflow", "request approval", "step", "notify"])
            #expect(location.line == 2 && location.column == 1)
        } else { Issue.record("expected a header") }
        if case .assignment(let key, _, _) = result.statements[2] { #expect(key == ["tls", "verify"]) }
        if case .assignment(let key, _, _) = result.statements[3] { #expect(key == ["quoted key"]) }
    }

    @Test func lineEndingsAndByteOrderMark() {
        let v = values("\u{FEFF}a = 1\r\nb = \"x\"\rc = true\n")
        #expect(v["a"] == .integer(1))
        #expect(v["b"] == .string("x"))
        #expect(v["c"] == .boolean(true))
    }

    @Test func errorsNameLineAndColumn() {
        #expect(errors("a = \"open") == ["t.conf:1:5: this string is never closed with `\"` on its line (use \"\"\" for a multi-line string)"])
        #expect(errors("\n\nport = 30s") == ["t.conf:3:8: `30s` is not a number; durations and sizes are strings: \"30s\""])
        #expect(errors("x = yes") == ["t.conf:1:5: expected a value, found `yes`; booleans are written `true` or `false`"])
        #expect(errors("server = mail.acme.example") == ["t.conf:1:10: expected a value, found `mail.acme.example`; strings must be quoted: \"mail.acme.example\""])
        #expect(errors("a = 1 2") == ["t.conf:1:7: expected the end of the line, found `2`"])
        #expect(errors("[mailbox") == ["t.conf:1:9: expected `]` to close the table header, found the end of the file"])
        #expect(errors("[[mailbox]]") == ["t.conf:1:1: arrays of tables (`[[…]]`) are not supported; give each table a name of its own"])
        #expect(errors("a = { b = 1 }") == ["t.conf:1:5: inline tables (`{ … }`) are not supported; use a `[table]` header"])
        #expect(errors("a: 1") == ["t.conf:1:2: expected `=` after the key `a`, found `:` (this is not YAML)"])
        #expect(errors("a = \"bad \\q escape\"") == ["t.conf:1:10: unknown escape `\\q`; use `\\\\` for a backslash, or a literal string in single quotes"])
        #expect(errors("a = 1.5") == ["t.conf:1:5: `1.5` is not an integer; fractions are not supported (a duration is a string like \"1500ms\")"])
        #expect(errors("a = 0123") == ["t.conf:1:5: `0123`: integers cannot have leading zeros"])
        #expect(errors("a = 99999999999999999999") == ["t.conf:1:5: `99999999999999999999` is too large for an integer"])
        #expect(errors("a = [1, 2") == ["t.conf:1:5: this array is never closed with `]`"])
        #expect(errors("a = \"\"\"never closed\nmore") == ["t.conf:1:5: this multi-line string is never closed with `\"\"\"`"])
        #expect(errors("a = \"tab\u{07}bell\"") == ["t.conf:1:9: control character U+0007 is not allowed in a string; write it as an escape"])
    }

    @Test func everyErrorOfAFileIsReportedAndRecoveryAvoidsCascades() {
        let found = errors("""
        a = "ok"
        b = nope
        c = [
          "x" "y",
          "z",
        ]
        d = 1
        e = 1.5
        """)
        #expect(found == [
            "t.conf:2:5: expected a value, found `nope`; strings must be quoted: \"nope\"",
            "t.conf:4:7: expected `,` or `]` in the array, found `\"`",
            "t.conf:8:5: `1.5` is not an integer; fractions are not supported (a duration is a string like \"1500ms\")",
        ])
    }

    @Test func deepArraysAreRefused() {
        let text = "a = " + String(repeating: "[", count: 50) + String(repeating: "]", count: 50)
        #expect(errors(text) == ["t.conf:1:13: arrays are nested deeper than 8 levels"])
    }
}
