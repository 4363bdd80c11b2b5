#if canImport(Glibc)
import Glibc
#endif

/// Content-Transfer-Encoding decoders (RFC 2045 §6). Both are lenient: real mail has stray
/// characters, missing padding and long lines, and the content is still wanted.
package enum TransferEncoding {
    static let base64Values: [Int8] = {
        var table = [Int8](repeating: -1, count: 256)
        for (index, byte) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8.enumerated() {
            table[Int(byte)] = Int8(index)
        }
        return table
    }()

    /// Decodes base64, skipping anything outside the alphabet (line breaks, spaces, junk).
    package static func base64<Bytes: Collection>(_ input: Bytes) -> [UInt8] where Bytes.Element == UInt8 {
        if let decoded = input.withContiguousStorageIfAvailable({ base64(buffer: $0) }) { return decoded }
        return Array(input).withUnsafeBufferPointer { base64(buffer: $0) }
    }

    /// The decoder proper, on a buffer into a buffer of the largest size it can produce.
    static func base64(buffer input: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        base64Values.withUnsafeBufferPointer { table in
            [UInt8](unsafeUninitializedCapacity: input.count * 3 / 4 + 3) { output, produced in
                var accumulator: UInt32 = 0
                var bits: UInt32 = 0
                var count = 0
                var i = 0
                let end = input.count
                while i < end {
                    // Between quanta, four alphabet characters make three bytes at once (a
                    // line of 76 is 19 of them); anything else takes the byte-by-byte way.
                    if bits == 0 && i + 4 <= end {
                        let a = table[Int(input[i])], b = table[Int(input[i + 1])], c = table[Int(input[i + 2])], d = table[Int(input[i + 3])]
                        if (a | b | c | d) >= 0 {
                            let quantum = UInt32(a) << 18 | UInt32(b) << 12 | UInt32(c) << 6 | UInt32(d)
                            output[count] = UInt8(truncatingIfNeeded: quantum >> 16)
                            output[count + 1] = UInt8(truncatingIfNeeded: quantum >> 8)
                            output[count + 2] = UInt8(truncatingIfNeeded: quantum)
                            count += 3
                            i += 4
                            continue
                        }
                    }
                    let byte = input[i]
                    i += 1
                    if byte == UInt8(ascii: "=") { break }
                    let value = table[Int(byte)]
                    if value < 0 { continue }
                    accumulator = accumulator << 6 | UInt32(value)
                    bits += 6
                    if bits >= 8 {
                        bits -= 8
                        output[count] = UInt8(truncatingIfNeeded: accumulator >> bits)
                        count += 1
                    }
                }
                produced = count
            }
        }
    }

    /// A word with 0x80 in the lowest byte of `word` equal to `byte` (the first, read little-endian),
    /// and possibly in later ones: the classic "has a zero byte" test on `word` XOR `byte`s.
    @inline(__always)
    static func bytesEqual(_ word: UInt64, _ byte: UInt8) -> UInt64 {
        let x = word ^ (0x0101_0101_0101_0101 &* UInt64(byte))
        return (x &- 0x0101_0101_0101_0101) & ~x & 0x8080_8080_8080_8080
    }

    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        default: nil
        }
    }

    /// Decodes quoted-printable; `=` not followed by two hex digits is kept as it is.
    /// `header` selects RFC 2047's Q variant, where `_` is a space.
    package static func quotedPrintable<Bytes: Collection>(_ input: Bytes, header: Bool = false) -> [UInt8] where Bytes.Element == UInt8 {
        if let decoded = input.withContiguousStorageIfAvailable({ quotedPrintable(buffer: $0, header: header) }) { return decoded }
        return Array(input).withUnsafeBufferPointer { quotedPrintable(buffer: $0, header: header) }
    }

    /// The decoder proper, on a buffer into a buffer (never longer than the input). Text in
    /// languages with accents has an "=XX" every few bytes: one pass, eight bytes at a time up
    /// to the next byte that needs a look ("=", and "_" in a header), then byte by byte.
    static func quotedPrintable(buffer input: UnsafeBufferPointer<UInt8>, header: Bool) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: input.count) { output, produced in
            let end = input.count
            var count = 0
            var i = 0
            while i < end {
                // Eight bytes at once while none of them is special. The output never runs ahead
                // of the input (count <= i), so eight bytes stored at `count` stay in the buffer.
                if let source = input.baseAddress, let target = output.baseAddress {
                    while i &+ 8 <= end {
                        let raw = UnsafeRawPointer(source + i).loadUnaligned(as: UInt64.self)
                        let word = UInt64(littleEndian: raw)
                        let special = Self.bytesEqual(word, UInt8(ascii: "=")) | (header ? Self.bytesEqual(word, UInt8(ascii: "_")) : 0)
                        UnsafeMutableRawPointer(target + count).storeBytes(of: raw, as: UInt64.self)
                        if special == 0 { i &+= 8; count &+= 8; continue }
                        // The lowest flagged byte is exact (the first match); those after it may not be.
                        let plain = special.trailingZeroBitCount >> 3
                        i &+= plain
                        count &+= plain
                        break
                    }
                    if i >= end { break }
                }
                let byte = input[i]
                if byte == UInt8(ascii: "=") {
                    // Soft line break: "=" then optional blanks then CRLF or LF.
                    var j = i + 1
                    while j < end, input[j] == 32 || input[j] == 9 { j += 1 }
                    if j < end, input[j] == 13 || input[j] == 10 {
                        if input[j] == 13, j + 1 < end, input[j + 1] == 10 { j += 1 }
                        i = j + 1
                        continue
                    }
                    // A body's "=" with only blanks after it ends the text.
                    if j >= end && !header { break }
                    if i + 2 < end, let high = hexValue(input[i + 1]), let low = hexValue(input[i + 2]) {
                        output[count] = high << 4 | low
                        count += 1
                        i += 3
                        continue
                    }
                    output[count] = byte
                } else if header && byte == UInt8(ascii: "_") {
                    output[count] = 32
                } else {
                    output[count] = byte
                }
                count += 1
                i += 1
            }
            produced = count
        }
    }
}
