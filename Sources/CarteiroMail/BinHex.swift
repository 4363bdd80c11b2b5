/// BinHex 4.0 (`application/mac-binhex40`, RFC 1741), as Eudora and old Mac mailers attach
/// files: the text between two colons, six bits a character, then run-length coded, holds the
/// file's name, its data fork and its resource fork. The desk gets the name and the data fork.
///
/// Bounded: the run-length expansion stops at `maximumBytes`, and every length in the header is
/// checked against what is there.
package enum BinHex {
    static let alphabet = Array("!\"#$%&'()*+,-012345689@ABCDEFGHIJKLMNPQRSTUVXYZ[`abcdefhijklmpqr".utf8)
    static let values: [Int8] = {
        var table = [Int8](repeating: -1, count: 256)
        for (index, byte) in alphabet.enumerated() { table[Int(byte)] = Int8(index) }
        return table
    }()

    /// The file in a BinHex 4.0 text; nil when the text is not one (or is cut short).
    package static func decode<Bytes: Collection>(_ text: Bytes, maximumBytes: Int = MessageLimits.maximumDecodedBytes) -> (name: String, data: [UInt8])? where Bytes.Element == UInt8 {
        let bytes = Array(text)
        // The data starts at the first colon that begins a line after the "(This file must be
        // converted with BinHex" line (or at the first colon at a line start without it).
        var start: Int?
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: ":") && (i == 0 || bytes[i - 1] == 10 || bytes[i - 1] == 13) { start = i + 1; break }
            i += 1
        }
        guard let start else { return nil }
        // Six bits a character up to the closing colon; line ends and blanks are skipped.
        var packed: [UInt8] = []
        var accumulator: UInt32 = 0, bits = 0
        var closed = false
        for byte in bytes[start...] {
            if byte == UInt8(ascii: ":") { closed = true; break }
            if byte == 10 || byte == 13 || byte == 32 || byte == 9 { continue }
            let value = values[Int(byte)]
            guard value >= 0 else { return nil }
            accumulator = accumulator << 6 | UInt32(value)
            bits += 6
            if bits >= 8 {
                bits -= 8
                packed.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
                accumulator &= (1 << UInt32(bits)) - 1
            }
        }
        guard closed else { return nil }
        // Run-length: 0x90 n repeats the byte before it n times in all; 0x90 0 is 0x90 itself.
        var plain: [UInt8] = []
        plain.reserveCapacity(min(packed.count * 2, maximumBytes))
        var k = 0
        while k < packed.count {
            let byte = packed[k]
            if byte == 0x90, k + 1 < packed.count {
                let count = Int(packed[k + 1])
                k += 2
                if count == 0 {
                    plain.append(0x90)
                } else if let last = plain.last {
                    guard plain.count + count - 1 <= maximumBytes else { return nil }
                    plain.append(contentsOf: repeatElement(last, count: count - 1))
                }
                continue
            }
            plain.append(byte)
            guard plain.count <= maximumBytes else { return nil }
            k += 1
        }
        // Header: name length, name, a zero, type, creator, flags, data length, resource length, CRC.
        guard let nameLength = plain.first.map(Int.init), plain.count >= 1 + nameLength + 1 + 4 + 4 + 2 + 4 + 4 + 2 else { return nil }
        let name = Charset.decodeLeniently(plain[1..<(1 + nameLength)], charset: "macintosh").text
        var at = 1 + nameLength + 1 + 4 + 4 + 2
        func u32() -> Int { defer { at += 4 }; return plain[at..<(at + 4)].reduce(0) { $0 << 8 | Int($1) } }
        let dataLength = u32()
        _ = u32() // the resource fork, which a desk cannot use
        at += 2 // the header's CRC
        guard dataLength <= plain.count - at else { return nil }
        return (name, Array(plain[at..<(at + dataLength)]))
    }
}
