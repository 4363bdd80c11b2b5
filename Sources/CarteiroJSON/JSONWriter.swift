/// JSON written as it goes, in exactly the layout of `JSONValue.renderedBytes()` (two-space
/// indentation, "key": value, up to four strings on one line, `[]` and `{}` when empty), for a
/// document written often enough that building a `JSONValue` tree first showed in profiles:
/// the event of every message. `RequestEvent.renderedBytes()` is held to `json()` by tests
/// and by the fuzzer.
package struct JSONWriter {
    package private(set) var out: [UInt8] = []
    /// For each open object or array: whether nothing has been written in it yet.
    private var empty: [Bool] = []

    package init(capacity: Int) {
        out.reserveCapacity(capacity)
    }

    /// The document, with its final newline.
    package mutating func finish() -> [UInt8] {
        out.append(10)
        return out
    }

    package mutating func beginObject() {
        out.append(UInt8(ascii: "{"))
        empty.append(true)
    }

    package mutating func endObject() { close(UInt8(ascii: "}")) }

    /// An array laid out one item a line (anything but up to four strings; see `strings`).
    package mutating func beginArray() {
        out.append(UInt8(ascii: "["))
        empty.append(true)
    }

    package mutating func endArray() { close(UInt8(ascii: "]")) }

    /// Before an object's member: its name.
    package mutating func key(_ name: String) {
        newItem()
        JSONValue.escape(name, into: &out)
        out.append(UInt8(ascii: ":"))
        out.append(32)
    }

    /// Before an item of an array laid out one a line.
    package mutating func item() { newItem() }

    package mutating func string(_ text: String) { JSONValue.escape(text, into: &out) }

    package mutating func utf8(_ bytes: [UInt8]) { bytes.withUnsafeBufferPointer { JSONValue.escape($0, into: &out) } }

    package mutating func optional(_ text: String?) {
        if let text { string(text) } else { null() }
    }

    package mutating func optional(utf8 bytes: [UInt8]?) {
        if let bytes { utf8(bytes) } else { null() }
    }

    package mutating func null() { out.append(contentsOf: "null".utf8) }

    package mutating func bool(_ value: Bool) { out.append(contentsOf: (value ? "true" : "false").utf8) }

    package mutating func number(_ value: Int64) { out.append(contentsOf: String(value).utf8) }

    /// An array of strings: on one line when there are four at most, as `JSONValue` does.
    package mutating func strings(_ items: [String]) {
        if items.isEmpty {
            out.append(contentsOf: "[]".utf8)
        } else if items.count <= 4 {
            out.append(UInt8(ascii: "["))
            for (index, item) in items.enumerated() {
                if index > 0 { out.append(contentsOf: ", ".utf8) }
                string(item)
            }
            out.append(UInt8(ascii: "]"))
        } else {
            beginArray()
            for text in items {
                item()
                string(text)
            }
            endArray()
        }
    }

    private mutating func newItem() {
        if empty[empty.count - 1] {
            out.append(10)
            empty[empty.count - 1] = false
        } else {
            out.append(contentsOf: ",\n".utf8)
        }
        indent(empty.count * 2)
    }

    private mutating func close(_ bracket: UInt8) {
        let wasEmpty = empty.removeLast()
        if !wasEmpty {
            out.append(10)
            indent(empty.count * 2)
        }
        out.append(bracket)
    }

    private mutating func indent(_ count: Int) {
        out.append(contentsOf: repeatElement(32, count: count))
    }
}
