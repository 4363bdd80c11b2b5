import CByteSearch

/// A JSON value that keeps its keys in the order they were written, so that events read
/// the way carteiro-events(5) shows them and golden files compare byte for byte. Carteiro's
/// one JSON: it renders events, state and status files (pretty, or compact for the small files
/// written at every commit), and reads them back (`JSONValue.parse`).
package indirect enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(Int64)
    case string(String)
    /// A string given as its UTF-8 bytes, which must be well-formed (a message's text).
    case utf8([UInt8])
    case array([JSONValue])
    case object([(String, JSONValue)])
    /// JSON rendered already (a source's cursor), written as it is.
    case raw([UInt8])

    package static func == (lhs: JSONValue, rhs: JSONValue) -> Bool { lhs.rendered() == rhs.rendered() }

    package static func optional(_ text: String?) -> JSONValue { text.map(JSONValue.string) ?? .null }
    package static func optional(utf8 text: [UInt8]?) -> JSONValue { text.map(JSONValue.utf8) ?? .null }
    package static func optional(_ number: Int64?) -> JSONValue { number.map(JSONValue.number) ?? .null }

    /// Pretty-printed with two-space indentation and a final newline.
    package func rendered() -> String {
        String(decoding: renderedBytes(), as: UTF8.self)
    }

    /// The same, as UTF-8 bytes: what is written to disk, without a detour through String.
    package func renderedBytes() -> [UInt8] {
        var out: [UInt8] = []
        // Room for it all at once: an event carries the message's text and HTML (tens of KB),
        // which would otherwise be copied at every doubling.
        out.reserveCapacity(estimatedSize(indent: 0) + 64)
        write(to: &out, indent: 0)
        out.append(10)
        return out
    }

    /// On one line, without spaces: for the small files written at every commit.
    package func renderedCompact() -> [UInt8] {
        var out: [UInt8] = []
        writeCompact(to: &out)
        return out
    }

    func writeCompact(to out: inout [UInt8]) {
        switch self {
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (index, item) in items.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                item.writeCompact(to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            for (index, (key, value)) in members.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                Self.escape(key, into: &out)
                out.append(UInt8(ascii: ":"))
                value.writeCompact(to: &out)
            }
            out.append(UInt8(ascii: "}"))
        default:
            write(to: &out, indent: 0)
        }
    }

    /// About the rendered size: exact but for escapes (a few bytes each).
    func estimatedSize(indent: Int) -> Int {
        switch self {
        case .null, .bool, .number: 20
        case .string(let s): s.utf8.count + 2
        case .utf8(let bytes): bytes.count + 2
        case .array(let items): items.reduce(2 + indent) { $0 + $1.estimatedSize(indent: indent + 2) + indent + 4 }
        case .object(let members): members.reduce(2 + indent) { $0 + $1.0.utf8.count + $1.1.estimatedSize(indent: indent + 2) + indent + 8 }
        case .raw(let bytes): bytes.count
        }
    }

    static func indent(_ out: inout [UInt8], _ count: Int) {
        out.append(contentsOf: repeatElement(32, count: count))
    }

    func write(to out: inout [UInt8], indent: Int) {
        switch self {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .number(let n): out.append(contentsOf: String(n).utf8)
        case .string(let s): Self.escape(s, into: &out)
        case .utf8(let bytes): bytes.withUnsafeBufferPointer { Self.escape($0, into: &out) }
        case .raw(let bytes): out.append(contentsOf: bytes)
        case .array(let items):
            if items.isEmpty { out.append(contentsOf: "[]".utf8); return }
            if items.allSatisfy({ switch $0 { case .string, .utf8: true; default: false } }) && items.count <= 4 {
                out.append(UInt8(ascii: "["))
                for (i, item) in items.enumerated() {
                    if i > 0 { out.append(contentsOf: ", ".utf8) }
                    item.write(to: &out, indent: indent)
                }
                out.append(UInt8(ascii: "]"))
                return
            }
            out.append(contentsOf: "[\n".utf8)
            for (i, item) in items.enumerated() {
                Self.indent(&out, indent + 2)
                item.write(to: &out, indent: indent + 2)
                out.append(contentsOf: (i + 1 < items.count ? ",\n" : "\n").utf8)
            }
            Self.indent(&out, indent)
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            if members.isEmpty { out.append(contentsOf: "{}".utf8); return }
            out.append(contentsOf: "{\n".utf8)
            for (i, (key, value)) in members.enumerated() {
                Self.indent(&out, indent + 2)
                Self.escape(key, into: &out)
                out.append(contentsOf: ": ".utf8)
                value.write(to: &out, indent: indent + 2)
                out.append(contentsOf: (i + 1 < members.count ? ",\n" : "\n").utf8)
            }
            Self.indent(&out, indent)
            out.append(UInt8(ascii: "}"))
        }
    }

    /// The escape of a byte below 0x20, '"', '\\' or DEL, written without an array of its own
    /// (a table of arrays cost a retain and a release at every line end of a body).
    @inline(__always)
    static func appendEscape(of byte: UInt8, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\\"))
        switch byte {
        case 0x22: out.append(0x22)
        case 0x5C: out.append(0x5C)
        case 0x0A: out.append(UInt8(ascii: "n"))
        case 0x0D: out.append(UInt8(ascii: "r"))
        case 0x09: out.append(UInt8(ascii: "t"))
        default:
            out.append(UInt8(ascii: "u"))
            out.append(UInt8(ascii: "0"))
            out.append(UInt8(ascii: "0"))
            out.append(hexDigit(byte >> 4))
            out.append(hexDigit(byte & 0xF))
        }
    }

    @inline(__always)
    static func hexDigit(_ value: UInt8) -> UInt8 { value < 10 ? UInt8(ascii: "0") + value : UInt8(ascii: "a") + value - 10 }

    /// RFC 8259 escaping on the UTF-8 bytes; runs of plain bytes are copied at once.
    /// U+2028 and U+2029 are escaped too, for JavaScript consumers.
    package static func escape(_ text: String, into out: inout [UInt8]) {
        var text = text
        text.withUTF8 { escape($0, into: &out) }
    }

    /// The same on well-formed UTF-8 bytes.
    static func escape(_ bytes: UnsafeBufferPointer<UInt8>, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var runStart = 0
        var i = 0
        let count = bytes.count
        while i < count {
            // Sixteen bytes at a time (in C, SSE2) while none needs a look: none below 0x20,
            // no '"', '\\' or DEL, and no 0xE2 (the lead byte of U+2028 and U+2029); other
            // UTF-8 bytes pass. The byte path below sorts out what it stops at.
            if let base = bytes.baseAddress { i += carteiro_json_plain_prefix(base + i, count - i) }
            guard i < count else { break }
            let byte = bytes[i]
            if byte < 0x80 {
                // The scan stops only at bytes to escape; checked again, so that this loop is right on its own.
                if byte >= 0x20 && byte != 0x22 && byte != 0x5C && byte != 0x7F { i += 1; continue }
                if runStart < i { out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<i])) }
                appendEscape(of: byte, to: &out)
                runStart = i + 1
                i += 1
            } else if byte == 0xE2, i + 2 < count, bytes[i + 1] == 0x80, bytes[i + 2] == 0xA8 || bytes[i + 2] == 0xA9 {
                if runStart < i { out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<i])) }
                out.append(contentsOf: (bytes[i + 2] == 0xA8 ? "\\u2028" : "\\u2029").utf8)
                i += 3
                runStart = i
            } else {
                i += 1
            }
        }
        if runStart < count { out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<count])) }
        out.append(UInt8(ascii: "\""))
    }
}
