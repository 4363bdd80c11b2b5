/// One `Authentication-Results` field (RFC 8601): who checked (`authserv-id`), and each
/// method's result with its properties (`spf=pass smtp.mailfrom=a@b.example`,
/// `dkim=pass header.d=b.example`, `dmarc=fail header.from=b.example`).
///
/// Read leniently and within bounds: comments (nested), quoted strings and folding are taken
/// as RFC 8601 has them; a field longer than `maximumBytes` is read up to there, and at most
/// `maximumResults` results a field.
package struct AuthenticationResults: Sendable, Equatable {
    package struct Result: Sendable, Equatable {
        /// Lower case: `spf`, `dkim`, `dmarc`, `arc` …
        package var method: String
        /// Lower case: `pass`, `fail`, `softfail`, `neutral`, `none`, `temperror`, `permerror` …
        package var result: String
        /// `ptype.property` (lower case) to its value: `smtp.mailfrom`, `header.d`, `header.from`.
        package var properties: [String: String]
    }

    package var authservID: String
    package var results: [Result]

    static let maximumBytes = 16 * 1024
    static let maximumResults = 64

    /// nil when the field has no authserv-id.
    package static func parse(_ raw: [UInt8]) -> AuthenticationResults? {
        var scanner = Tokens(Array(raw.prefix(maximumBytes)))
        guard case .word(let id)? = scanner.next() else { return nil }
        var field = AuthenticationResults(authservID: id.lowercased(), results: [])
        // An optional version after the id, then `; none` or the results.
        while let token = scanner.next() {
            guard token == .semicolon else { continue }
            guard field.results.count < maximumResults else { break }
            guard case .word(let method)? = scanner.next() else { continue }
            let name = method.lowercased().split(separator: "/").first.map(String.init) ?? ""
            if name == "none" { continue }
            guard scanner.next() == .equals, case .word(let value)? = scanner.next() else {
                scanner.skipToSemicolon()
                continue
            }
            var result = Result(method: name, result: value.lowercased(), properties: [:])
            // Properties up to the next `;`: `ptype.property=value` (and `reason=…`).
            while let next = scanner.peek(), next != .semicolon {
                _ = scanner.next()
                guard case .word(let key) = next, scanner.peek() == .equals else { continue }
                _ = scanner.next()
                guard case .word(let propertyValue)? = scanner.next() else { continue }
                let lowered = key.lowercased()
                if result.properties[lowered] == nil { result.properties[lowered] = propertyValue }
            }
            field.results.append(result)
        }
        return field
    }

    /// Words, `;` and `=`, with comments dropped and quoted strings as words.
    struct Tokens {
        enum Token: Equatable {
            case word(String)
            case semicolon
            case equals
        }

        let bytes: [UInt8]
        var index = 0
        var peeked: Token??

        init(_ bytes: [UInt8]) { self.bytes = bytes }

        mutating func peek() -> Token? {
            if let peeked { return peeked }
            let token = read()
            peeked = .some(token)
            return token
        }

        mutating func next() -> Token? {
            if let peeked {
                self.peeked = nil
                return peeked
            }
            return read()
        }

        mutating func skipToSemicolon() {
            while let token = peek(), token != .semicolon { _ = next() }
        }

        private mutating func read() -> Token? {
            while index < bytes.count {
                let byte = bytes[index]
                switch byte {
                case 32, 9, 13, 10:
                    index += 1
                case UInt8(ascii: "("):
                    // A comment, nested, with quoted pairs; one left open ends the field.
                    var depth = 0
                    while index < bytes.count {
                        let c = bytes[index]
                        if c == UInt8(ascii: "\\") { index += 2; continue }
                        if c == UInt8(ascii: "(") { depth += 1 }
                        if c == UInt8(ascii: ")") { depth -= 1 }
                        index += 1
                        if depth == 0 { break }
                    }
                case UInt8(ascii: ";"):
                    index += 1
                    return .semicolon
                case UInt8(ascii: "="):
                    index += 1
                    return .equals
                case UInt8(ascii: "\""):
                    index += 1
                    var value: [UInt8] = []
                    while index < bytes.count, bytes[index] != UInt8(ascii: "\"") {
                        if bytes[index] == UInt8(ascii: "\\"), index + 1 < bytes.count { index += 1 }
                        value.append(bytes[index])
                        index += 1
                    }
                    index += 1
                    return .word(Charset.decodeLeniently(value, charset: nil).text)
                default:
                    let start = index
                    while index < bytes.count, !Self.isDelimiter(bytes[index]) { index += 1 }
                    return .word(Charset.decodeLeniently(bytes[start..<index], charset: nil).text)
                }
            }
            return nil
        }

        static func isDelimiter(_ byte: UInt8) -> Bool {
            byte == 32 || byte == 9 || byte == 13 || byte == 10 || byte == UInt8(ascii: ";") || byte == UInt8(ascii: "=")
                || byte == UInt8(ascii: "(") || byte == UInt8(ascii: "\"")
        }
    }
}
