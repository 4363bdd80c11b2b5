/// The configuration language's parser: text in, statements and diagnostics out, no I/O.
///
/// The language is a subset of TOML: comments, `[table]` and `[dotted.table]` headers,
/// `key = value` with bare, quoted or dotted keys, basic strings with escapes, literal
/// strings, multi-line strings of both kinds, integers, booleans and arrays (multi-line,
/// trailing comma allowed). Durations and sizes are strings that the schema reads.
///
/// Every error carries `file:line:column`; after an error the parser skips to the next line
/// that can start a statement, so that one mistake is reported once and the rest of the file
/// is still checked.
package struct ConfigParser {
    package struct Result: Sendable {
        package var statements: [ConfigStatement]
        package var diagnostics: DiagnosticList
    }

    struct SyntaxError: Error {
        var location: SourceLocation
        var message: String
    }

    let file: String
    let text: [Unicode.Scalar]
    var index = 0
    var line = 1
    var lineStart = 0
    var diagnostics = DiagnosticList()
    var statements: [ConfigStatement] = []

    /// Parses `source`, naming `file` in every location.
    package static func parse(_ source: String, file: String) -> Result {
        var parser = ConfigParser(file: file, text: Array(source.unicodeScalars))
        parser.run()
        return Result(statements: parser.statements, diagnostics: parser.diagnostics)
    }

    init(file: String, text: [Unicode.Scalar]) {
        self.file = file
        self.text = text
    }

    // MARK: - Driver

    mutating func run() {
        if text.first == "\u{FEFF}" { index = 1; lineStart = 1 }
        var recovering = false
        while !atEnd {
            skipInlineWhitespace()
            guard let c = peek else { break }
            if c == "\n" || c == "\r" {
                consumeNewline()
                continue
            }
            if c == "#" {
                skipComment()
                continue
            }
            if recovering && !looksLikeStatementStart() {
                skipRestOfLine()
                continue
            }
            recovering = false
            do {
                let statement = c == "[" ? try parseHeader() : try parseAssignment()
                statements.append(statement)
                try expectEndOfLine()
            } catch let error as SyntaxError {
                diagnostics.error(error.location, error.message)
                skipRestOfLine()
                recovering = true
            } catch {
                skipRestOfLine()
            }
        }
    }

    // MARK: - Statements

    mutating func parseHeader() throws -> ConfigStatement {
        let location = here
        advance() // [
        if peek == "[" {
            throw SyntaxError(location: location, message: "arrays of tables (`[[…]]`) are not supported; give each table a name of its own")
        }
        skipInlineWhitespace()
        let path = try parseKeyPath()
        skipInlineWhitespace()
        guard peek == "]" else {
            throw SyntaxError(location: here, message: "expected `]` to close the table header, found \(describeNext())")
        }
        advance()
        return .header(path: path, location: location)
    }

    mutating func parseAssignment() throws -> ConfigStatement {
        let keyLocation = here
        let key = try parseKeyPath()
        skipInlineWhitespace()
        guard peek == "=" else {
            if peek == ":" {
                throw SyntaxError(location: here, message: "expected `=` after the key `\(key.joined(separator: "."))`, found `:` (this is not YAML)")
            }
            throw SyntaxError(location: here, message: "expected `=` after the key `\(key.joined(separator: "."))`, found \(describeNext())")
        }
        advance()
        skipInlineWhitespace()
        let valueLocation = here
        do {
            let value = try parseValue(depth: 0)
            return .assignment(key: key, keyLocation: keyLocation, value: value)
        } catch {
            // The key is there even though its value is broken: later checks must not say it is missing.
            statements.append(.assignment(key: key, keyLocation: keyLocation, value: ConfigValue(.invalid, at: valueLocation)))
            throw error
        }
    }

    mutating func expectEndOfLine() throws {
        skipInlineWhitespace()
        guard let c = peek else { return }
        if c == "#" { skipComment(); return }
        if c == "\n" || c == "\r" { consumeNewline(); return }
        throw SyntaxError(location: here, message: "expected the end of the line, found \(describeNext())")
    }

    // MARK: - Keys

    mutating func parseKeyPath() throws -> [String] {
        var parts = [try parseSimpleKey()]
        while true {
            let save = (index, line, lineStart)
            skipInlineWhitespace()
            if peek == "." {
                advance()
                skipInlineWhitespace()
                parts.append(try parseSimpleKey())
            } else {
                (index, line, lineStart) = save
                return parts
            }
        }
    }

    mutating func parseSimpleKey() throws -> String {
        let location = here
        guard let c = peek else {
            throw SyntaxError(location: location, message: "expected a key, found the end of the file")
        }
        let key: String
        if c == "\"" || c == "'" {
            if startsWith(c == "\"" ? "\"\"\"" : "'''") {
                throw SyntaxError(location: location, message: "a key cannot be a multi-line string")
            }
            key = c == "\"" ? try parseBasicString(location: location) : try parseLiteralString(location: location)
            if key.isEmpty {
                throw SyntaxError(location: location, message: "a key cannot be empty")
            }
        } else {
            var scalars = String.UnicodeScalarView()
            while let k = peek, Self.isBareKeyScalar(k) {
                scalars.append(k)
                advance()
            }
            if scalars.isEmpty {
                throw SyntaxError(location: location, message: "expected a key (letters, digits, `-` or `_`), found \(describeNext())")
            }
            key = String(scalars)
        }
        if key.unicodeScalars.count > ConfigLimits.maximumKeyLength {
            throw SyntaxError(location: location, message: "key is longer than \(ConfigLimits.maximumKeyLength) characters")
        }
        return key
    }

    static func isBareKeyScalar(_ c: Unicode.Scalar) -> Bool {
        switch c {
        case "a"..."z", "A"..."Z", "0"..."9", "-", "_": true
        default: false
        }
    }

    /// After an error, a line is worth parsing again if it starts like a header or `key =`.
    func looksLikeStatementStart() -> Bool {
        guard let c = peek else { return false }
        if c == "[" { return true }
        var i = index
        if c == "\"" || c == "'" { return false }
        while i < text.count, Self.isBareKeyScalar(text[i]) || text[i] == "." || text[i] == " " || text[i] == "\t" { i += 1 }
        return i > index && i < text.count && text[i] == "="
    }

    // MARK: - Values

    mutating func parseValue(depth: Int) throws -> ConfigValue {
        let location = here
        guard let c = peek else {
            throw SyntaxError(location: location, message: "expected a value, found the end of the file")
        }
        switch c {
        case "\"":
            if startsWith("\"\"\"") {
                return ConfigValue(.string(try parseMultilineBasicString(location: location)), at: location)
            }
            return ConfigValue(.string(try parseBasicString(location: location)), at: location)
        case "'":
            if startsWith("'''") {
                return ConfigValue(.string(try parseMultilineLiteralString(location: location)), at: location)
            }
            return ConfigValue(.string(try parseLiteralString(location: location)), at: location)
        case "[":
            return try parseArray(location: location, depth: depth + 1)
        case "{":
            throw SyntaxError(location: location, message: "inline tables (`{ … }`) are not supported; use a `[table]` header")
        case "t", "f":
            if startsWith("true") && !isBareContinuation(at: index + 4) {
                advance(4)
                return ConfigValue(.boolean(true), at: location)
            }
            if startsWith("false") && !isBareContinuation(at: index + 5) {
                advance(5)
                return ConfigValue(.boolean(false), at: location)
            }
        case "+", "-", "0"..."9":
            return try parseNumber(location: location)
        case "\n", "\r", "#":
            throw SyntaxError(location: location, message: "expected a value after `=`")
        default:
            break
        }
        var word = ""
        var i = index
        while i < text.count, Self.isBareKeyScalar(text[i]) || text[i] == "." || text[i] == ":" || text[i] == "/" || text[i] == "@" {
            word.unicodeScalars.append(text[i]); i += 1
            if word.unicodeScalars.count > 40 { break }
        }
        if word == "True" || word == "False" || word == "yes" || word == "no" || word == "on" || word == "off" {
            throw SyntaxError(location: location, message: "expected a value, found `\(word)`; booleans are written `true` or `false`")
        }
        if !word.isEmpty {
            throw SyntaxError(location: location, message: "expected a value, found `\(word)`; strings must be quoted: \"\(word)\"")
        }
        throw SyntaxError(location: location, message: "expected a value (a quoted string, a number, true/false or an array), found \(describeNext())")
    }

    func isBareContinuation(at i: Int) -> Bool {
        i < text.count && Self.isBareKeyScalar(text[i])
    }

    mutating func parseNumber(location: SourceLocation) throws -> ConfigValue {
        var literal = ""
        while let c = peek, Self.isBareKeyScalar(c) || c == "+" || c == "." || c == ":" {
            literal.unicodeScalars.append(c)
            advance()
        }
        var digits = Substring(literal)
        var negative = false
        if let sign = digits.first, sign == "+" || sign == "-" {
            negative = sign == "-"
            digits = digits.dropFirst()
        }
        if literal.contains(".") || literal.contains("e") || literal.contains("E") {
            if literal.contains(":") || literal.filter({ $0 == "-" }).count >= 2 {
                throw SyntaxError(location: location, message: "dates and times are not supported; write them as a quoted string")
            }
            throw SyntaxError(location: location, message: "`\(literal)` is not an integer; fractions are not supported (a duration is a string like \"1500ms\")")
        }
        if digits.first.map({ $0.isLetter }) ?? false || digits.contains(where: { $0.isLetter }) {
            throw SyntaxError(location: location, message: "`\(literal)` is not a number; durations and sizes are strings: \"\(literal)\"")
        }
        guard !digits.isEmpty,
              digits.first != "_", digits.last != "_", !digits.contains("__"),
              digits.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == "_") }) else {
            throw SyntaxError(location: location, message: "`\(literal)` is not a valid integer")
        }
        let clean = digits.filter { $0 != "_" }
        if clean.count > 1 && clean.first == "0" {
            throw SyntaxError(location: location, message: "`\(literal)`: integers cannot have leading zeros")
        }
        guard let magnitude = Int(negative ? "-" + clean : clean) else {
            throw SyntaxError(location: location, message: "`\(literal)` is too large for an integer")
        }
        return ConfigValue(.integer(magnitude), at: location)
    }

    mutating func parseArray(location: SourceLocation, depth: Int) throws -> ConfigValue {
        if depth > ConfigLimits.maximumArrayDepth {
            throw SyntaxError(location: location, message: "arrays are nested deeper than \(ConfigLimits.maximumArrayDepth) levels")
        }
        advance() // [
        var elements: [ConfigValue] = []
        while true {
            try skipArrayFiller(open: location)
            if peek == "]" { advance(); break }
            elements.append(try parseValue(depth: depth))
            try skipArrayFiller(open: location)
            if peek == "," { advance(); continue }
            if peek == "]" { advance(); break }
            throw SyntaxError(location: here, message: "expected `,` or `]` in the array, found \(describeNext())")
        }
        return ConfigValue(.array(elements), at: location)
    }

    /// Whitespace, newlines and comments are allowed between array elements.
    mutating func skipArrayFiller(open: SourceLocation) throws {
        while let c = peek {
            if c == " " || c == "\t" { advance() }
            else if c == "\n" || c == "\r" { consumeNewline() }
            else if c == "#" { skipComment() }
            else { return }
        }
        throw SyntaxError(location: open, message: "this array is never closed with `]`")
    }

    // MARK: - Strings

    mutating func parseBasicString(location: SourceLocation) throws -> String {
        try parseSingleLineString(location: location, quote: "\"", escapes: true)
    }

    mutating func parseLiteralString(location: SourceLocation) throws -> String {
        try parseSingleLineString(location: location, quote: "'", escapes: false)
    }

    mutating func parseMultilineBasicString(location: SourceLocation) throws -> String {
        try parseMultilineString(location: location, quote: "\"", escapes: true)
    }

    mutating func parseMultilineLiteralString(location: SourceLocation) throws -> String {
        try parseMultilineString(location: location, quote: "'", escapes: false)
    }

    /// "basic" (escapes) or 'literal' (none), closed on the same line.
    mutating func parseSingleLineString(location: SourceLocation, quote: Unicode.Scalar, escapes: Bool) throws -> String {
        advance() // the opening quote
        var result = String.UnicodeScalarView()
        let unclosed = "this string is never closed with `\(quote)` on its line (use \(quote)\(quote)\(quote) for a multi-line string)"
        while true {
            guard let c = peek, c != "\n", c != "\r" else {
                throw SyntaxError(location: location, message: unclosed)
            }
            if c == quote {
                advance()
                return String(result)
            }
            if escapes && c == "\\" {
                result.append(contentsOf: try parseEscape())
                continue
            }
            try checkControl(c)
            result.append(c)
            advance()
        }
    }

    /// """basic""" or '''literal''' over several lines; a line break right after the
    /// opening delimiter is dropped; in basic strings a backslash at the end of a line joins it
    /// with the next non-blank text.
    mutating func parseMultilineString(location: SourceLocation, quote: Unicode.Scalar, escapes: Bool) throws -> String {
        let delimiter = String(repeating: String(quote), count: 3)
        advance(3)
        trimFirstNewline()
        var result = String.UnicodeScalarView()
        while true {
            guard let c = peek else {
                throw SyntaxError(location: location, message: "this multi-line string is never closed with `\(delimiter)`")
            }
            if startsWith(delimiter) {
                // Up to two quotes may sit right before the closing delimiter.
                var extra = 0
                while extra < 2 && index + 3 + extra < text.count && text[index + 3 + extra] == quote { extra += 1 }
                for _ in 0..<extra { result.append(quote) }
                advance(3 + extra)
                return String(result)
            }
            if escapes && c == "\\" {
                var i = index + 1
                while i < text.count && (text[i] == " " || text[i] == "\t") { i += 1 }
                if i < text.count && (text[i] == "\n" || text[i] == "\r") {
                    advance(i - index)
                    while let w = peek, w == " " || w == "\t" || w == "\n" || w == "\r" {
                        if w == "\n" || w == "\r" { consumeNewline() } else { advance() }
                    }
                    continue
                }
                result.append(contentsOf: try parseEscape())
                continue
            }
            if c == "\n" || c == "\r" {
                consumeNewline()
                result.append("\n")
                continue
            }
            try checkControl(c)
            result.append(c)
            advance()
        }
    }

    mutating func trimFirstNewline() {
        if peek == "\n" || peek == "\r" { consumeNewline() }
    }

    func checkControl(_ c: Unicode.Scalar) throws {
        if (c.value < 0x20 && c != "\t") || c.value == 0x7F {
            throw SyntaxError(location: here, message: "control character U+\(String(c.value, radix: 16, uppercase: true).leftPadded(to: 4)) is not allowed in a string; write it as an escape")
        }
    }

    mutating func parseEscape() throws -> [Unicode.Scalar] {
        let location = here
        advance() // backslash
        guard let c = peek else {
            throw SyntaxError(location: location, message: "a string ends in the middle of an escape")
        }
        advance()
        switch c {
        case "b": return ["\u{08}"]
        case "t": return ["\t"]
        case "n": return ["\n"]
        case "f": return ["\u{0C}"]
        case "r": return ["\r"]
        case "e": return ["\u{1B}"]
        case "\"": return ["\""]
        case "\\": return ["\\"]
        case "u", "U":
            let count = c == "u" ? 4 : 8
            var hex = ""
            for _ in 0..<count {
                guard let h = peek, h.properties.isASCIIHexDigit else {
                    throw SyntaxError(location: location, message: "`\\\(c)` must be followed by \(count) hexadecimal digits")
                }
                hex.unicodeScalars.append(h)
                advance()
            }
            guard let value = UInt32(hex, radix: 16), let scalar = Unicode.Scalar(value) else {
                throw SyntaxError(location: location, message: "`\\\(c)\(hex)` is not a Unicode scalar value")
            }
            return [scalar]
        default:
            throw SyntaxError(location: location, message: "unknown escape `\\\(c)`; use `\\\\` for a backslash, or a literal string in single quotes")
        }
    }

    // MARK: - Low level

    var atEnd: Bool { index >= text.count }
    var peek: Unicode.Scalar? { index < text.count ? text[index] : nil }
    var here: SourceLocation { SourceLocation(file: file, line: line, column: index - lineStart + 1) }

    mutating func advance(_ n: Int = 1) { index = min(index + n, text.count) }

    func startsWith(_ s: String) -> Bool {
        var i = index
        for scalar in s.unicodeScalars {
            guard i < text.count, text[i] == scalar else { return false }
            i += 1
        }
        return true
    }

    mutating func skipInlineWhitespace() {
        while let c = peek, c == " " || c == "\t" { advance() }
    }

    mutating func skipComment() {
        while let c = peek, c != "\n", c != "\r" { advance() }
    }

    mutating func skipRestOfLine() {
        skipComment()
        if !atEnd { consumeNewline() }
    }

    /// Accepts LF, CRLF and a lone CR as one line break.
    mutating func consumeNewline() {
        if peek == "\r" {
            advance()
            if peek == "\n" { advance() }
        } else {
            advance()
        }
        line += 1
        lineStart = index
    }

    func describeNext() -> String {
        guard let c = peek else { return "the end of the file" }
        switch c {
        case "\n", "\r": return "the end of the line"
        case " ": return "a space"
        case "\t": return "a tab"
        default:
            if c.value < 0x20 || c.value == 0x7F {
                return "control character U+\(String(c.value, radix: 16, uppercase: true).leftPadded(to: 4))"
            }
            return "`\(Character(c))`"
        }
    }
}

extension String {
    func leftPadded(to width: Int, with pad: Character = "0") -> String {
        count >= width ? self : String(repeating: pad, count: width - count) + self
    }
}
