/// The common case of `Submission.decode` without Foundation: a strict JSON reader (RFC 8259)
/// and a direct mapping onto `Submission`. Foundation's two passes (JSONSerialization for the
/// checks, JSONDecoder for the fields) were a quarter of the daemon's time when the outbox is
/// full. Anything this path is not sure of (a syntax error, a type that is wrong, an unknown key,
/// a number that is not a plain integer, a duplicate key) returns nil, and the Foundation path
/// decides, with its words for what is wrong: the two agree on every submission the fast path
/// accepts (`SubmissionFastPathTests` compares them).
enum SubmissionFastPath {
    indirect enum Value: Equatable {
        case string(String)
        case integer(Int)
        case bool(Bool)
        case null
        case array([Value])
        case object([(String, Value)])

        static func == (lhs: Value, rhs: Value) -> Bool {
            switch (lhs, rhs) {
            case (.string(let a), .string(let b)): a == b
            case (.integer(let a), .integer(let b)): a == b
            case (.bool(let a), .bool(let b)): a == b
            case (.null, .null): true
            case (.array(let a), .array(let b)): a == b
            case (.object(let a), .object(let b)): a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
            default: false
            }
        }
    }

    static func decode(_ bytes: [UInt8]) -> Submission? {
        var reader = Reader(bytes: bytes)
        guard let value = reader.document(), case .object(let members) = value else { return nil }
        var submission = Submission()
        for (key, value) in members {
            // An unknown key, even with null: the Foundation path names it.
            guard knownKeys.contains(key) else { return nil }
            if case .null = value { continue }
            switch key {
            case "workflow": guard let v = string(value) else { return nil }; submission.workflow = v
            case "step": guard let v = string(value) else { return nil }; submission.step = v
            case "mailbox": guard let v = string(value) else { return nil }; submission.mailbox = v
            case "contract": guard let v = string(value) else { return nil }; submission.contract = v
            case "request": guard let v = string(value) else { return nil }; submission.request = v
            case "subject": guard let v = string(value) else { return nil }; submission.subject = v
            case "text": guard let v = string(value) else { return nil }; submission.text = v
            case "html": guard let v = string(value) else { return nil }; submission.html = v
            case "in_reply_to": guard let v = string(value) else { return nil }; submission.inReplyTo = v
            case "to": guard let v = strings(value) else { return nil }; submission.to = v
            case "cc": guard let v = strings(value) else { return nil }; submission.cc = v
            case "bcc": guard let v = strings(value) else { return nil }; submission.bcc = v
            case "references": guard let v = strings(value) else { return nil }; submission.references = v
            case "reply_to":
                if let single = string(value) { submission.replyTo = [single] } else if let list = strings(value) { submission.replyTo = list } else { return nil }
            case "one_message":
                guard case .bool(let flag) = value else { return nil }
                submission.oneMessage = flag
            case "vars":
                guard case .object(let nested) = value else { return nil }
                var flat: [String: String] = [:]
                guard flatten(nested, prefix: "", depth: 1, into: &flat) else { return nil }
                submission.vars = flat
            case "attachments":
                guard case .array(let items) = value else { return nil }
                var attachments: [SubmissionAttachment] = []
                for item in items {
                    guard let attachment = self.attachment(item) else { return nil }
                    attachments.append(attachment)
                }
                submission.attachments = attachments
            default:
                return nil // an unknown key: the Foundation path names it
            }
        }
        return submission
    }

    static let knownKeys = Set(Submission.knownKeys)

    static func string(_ value: Value) -> String? {
        if case .string(let text) = value { return text }
        return nil
    }

    static func strings(_ value: Value) -> [String]? {
        guard case .array(let items) = value else { return nil }
        var out: [String] = []
        out.reserveCapacity(items.count)
        for item in items {
            guard case .string(let text) = item else { return nil }
            out.append(text)
        }
        return out
    }

    static func attachment(_ value: Value) -> SubmissionAttachment? {
        guard case .object(let members) = value else { return nil }
        var name: String?
        var attachment = SubmissionAttachment(name: "")
        for (key, value) in members {
            guard SubmissionAttachment.knownKeys.contains(key) else { return nil }
            if case .null = value, key != "name" { continue }
            guard let text = string(value) else { return nil }
            switch key {
            case "name": name = text
            case "type": attachment.type = text
            case "path": attachment.path = text
            case "content_base64": attachment.contentBase64 = text
            default: return nil
            }
        }
        guard let name else { return nil }
        attachment.name = name
        return attachment
    }

    /// As `Submission.flatten`, for the values it accepts without a question; false otherwise.
    static func flatten(_ members: [(String, Value)], prefix: String, depth: Int, into flat: inout [String: String]) -> Bool {
        guard depth <= Submission.maximumVarsDepth else { return false }
        // In key order, as Foundation's path does: where two keys flatten to one name, the same one wins.
        for (key, value) in members.sorted(by: { $0.0 < $1.0 }) {
            let path = prefix.isEmpty ? key : prefix + "." + key
            guard !key.isEmpty, !key.contains("."), !key.hasPrefix("{") else {
                if key.contains("."), prefix.isEmpty, case .string(let text) = value { flat[path] = text; continue }
                return false
            }
            switch value {
            case .string(let text): flat[path] = text
            case .integer(let number): flat[path] = String(number)
            case .bool(let flag): flat[path] = flag ? "true" : "false"
            case .null: flat[path] = ""
            case .object(let nested): guard flatten(nested, prefix: path, depth: depth + 1, into: &flat) else { return false }
            case .array: return false
            }
        }
        return true
    }

    /// A strict reader: nil at the first thing it does not accept.
    struct Reader {
        let bytes: [UInt8]
        var index = 0
        var depth = 0
        static let maximumDepth = 64

        init(bytes: [UInt8]) { self.bytes = bytes }

        mutating func document() -> Value? {
            // A UTF-8 byte order mark: Foundation's readers take it; let them.
            guard let value = value() else { return nil }
            skipSpace()
            return index == bytes.count ? value : nil
        }

        mutating func skipSpace() {
            while index < bytes.count, bytes[index] == 0x20 || bytes[index] == 0x0A || bytes[index] == 0x0D || bytes[index] == 0x09 { index += 1 }
        }

        mutating func value() -> Value? {
            skipSpace()
            guard index < bytes.count else { return nil }
            switch bytes[index] {
            case UInt8(ascii: "\""): return string().map(Value.string)
            case UInt8(ascii: "{"): return object()
            case UInt8(ascii: "["): return array()
            case UInt8(ascii: "t"): return literal("true", .bool(true))
            case UInt8(ascii: "f"): return literal("false", .bool(false))
            case UInt8(ascii: "n"): return literal("null", .null)
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return integer()
            default: return nil
            }
        }

        mutating func literal(_ word: String, _ value: Value) -> Value? {
            let expected = Array(word.utf8)
            guard index + expected.count <= bytes.count, bytes[index..<index + expected.count].elementsEqual(expected) else { return nil }
            index += expected.count
            return value
        }

        /// A plain integer (`-12`, `0`); fractions, exponents, leading zeros and anything
        /// beyond Int are left to Foundation, whose text for them the fast path cannot promise.
        mutating func integer() -> Value? {
            let start = index
            if bytes[index] == UInt8(ascii: "-") { index += 1 }
            let digitsStart = index
            while index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39 { index += 1 }
            let digits = index - digitsStart
            guard digits > 0, digits <= 18, !(digits > 1 && bytes[digitsStart] == 0x30) else { return nil }
            if index < bytes.count, [UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E")].contains(bytes[index]) { return nil }
            guard let number = Int(String(decoding: bytes[start..<index], as: UTF8.self)) else { return nil }
            if number == 0 && bytes[start] == UInt8(ascii: "-") { return nil } // -0
            return .integer(number)
        }

        mutating func string() -> String? {
            index += 1 // the opening quote
            var out: [UInt8] = []
            var runStart = index
            while index < bytes.count {
                let byte = bytes[index]
                if byte == UInt8(ascii: "\"") {
                    out.append(contentsOf: bytes[runStart..<index])
                    index += 1
                    // Invalid UTF-8 is Foundation's to judge.
                    return String(validating: out, as: UTF8.self)
                }
                if byte < 0x20 { return nil }
                if byte == UInt8(ascii: "\\") {
                    out.append(contentsOf: bytes[runStart..<index])
                    index += 1
                    guard index < bytes.count else { return nil }
                    let escape = bytes[index]
                    index += 1
                    switch escape {
                    case UInt8(ascii: "\""): out.append(0x22)
                    case UInt8(ascii: "\\"): out.append(0x5C)
                    case UInt8(ascii: "/"): out.append(0x2F)
                    case UInt8(ascii: "b"): out.append(0x08)
                    case UInt8(ascii: "f"): out.append(0x0C)
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "r"): out.append(0x0D)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "u"):
                        guard let unit = hex4() else { return nil }
                        var scalarValue = UInt32(unit)
                        if (0xD800...0xDBFF).contains(unit) {
                            guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else { return nil }
                            index += 2
                            guard let low = hex4(), (0xDC00...0xDFFF).contains(low) else { return nil }
                            scalarValue = 0x10000 + ((UInt32(unit) - 0xD800) << 10) + (UInt32(low) - 0xDC00)
                        } else if (0xDC00...0xDFFF).contains(unit) {
                            return nil
                        }
                        // U+0000 is Foundation's to judge.
                        guard scalarValue != 0, let scalar = Unicode.Scalar(scalarValue) else { return nil }
                        out.append(contentsOf: String(Character(scalar)).utf8)
                    default: return nil
                    }
                    runStart = index
                    continue
                }
                index += 1
            }
            return nil
        }

        mutating func hex4() -> UInt16? {
            guard index + 4 <= bytes.count else { return nil }
            var value: UInt16 = 0
            for _ in 0..<4 {
                let byte = bytes[index]
                let digit: UInt8
                switch byte {
                case 0x30...0x39: digit = byte - 0x30
                case 0x41...0x46: digit = byte - 0x41 + 10
                case 0x61...0x66: digit = byte - 0x61 + 10
                default: return nil
                }
                value = value << 4 | UInt16(digit)
                index += 1
            }
            return value
        }

        mutating func object() -> Value? {
            depth += 1
            defer { depth -= 1 }
            guard depth <= Self.maximumDepth else { return nil }
            index += 1
            var members: [(String, Value)] = []
            var seen: Set<String> = []
            skipSpace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "}") { index += 1; return .object(members) }
            while true {
                skipSpace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: "\""), let key = string() else { return nil }
                // A key given twice: which one wins is Foundation's to say.
                guard seen.insert(key).inserted else { return nil }
                skipSpace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { return nil }
                index += 1
                guard let value = value() else { return nil }
                members.append((key, value))
                skipSpace()
                guard index < bytes.count else { return nil }
                if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                if bytes[index] == UInt8(ascii: "}") { index += 1; return .object(members) }
                return nil
            }
        }

        mutating func array() -> Value? {
            depth += 1
            defer { depth -= 1 }
            guard depth <= Self.maximumDepth else { return nil }
            index += 1
            var items: [Value] = []
            skipSpace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "]") { index += 1; return .array(items) }
            while true {
                guard let value = value() else { return nil }
                items.append(value)
                skipSpace()
                guard index < bytes.count else { return nil }
                if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                if bytes[index] == UInt8(ascii: "]") { index += 1; return .array(items) }
                return nil
            }
        }
    }
}
