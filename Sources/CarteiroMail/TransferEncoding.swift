#if canImport(Glibc)
import Glibc
#endif

/// Content-Transfer-Encoding decoders (RFC 2045 §6). Both are lenient: real mail has stray
/// characters, missing padding and long lines, and the content is still wanted.
public enum TransferEncoding {
    static let base64Values: [Int8] = {
        var table = [Int8](repeating: -1, count: 256)
        for (index, byte) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8.enumerated() {
            table[Int(byte)] = Int8(index)
        }
        return table
    }()

    /// Decodes base64, skipping anything outside the alphabet (line breaks, spaces, junk).
    public static func base64<Bytes: Collection>(_ input: Bytes) -> [UInt8] where Bytes.Element == UInt8 {
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
                for byte in input {
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
    public static func quotedPrintable<Bytes: Collection>(_ input: Bytes, header: Bool = false) -> [UInt8] where Bytes.Element == UInt8, Bytes.Index == Int {
        var output: [UInt8] = []
        output.reserveCapacity(input.count)
        var i = input.startIndex
        let end = input.endIndex
        while i < end {
            if !header {
                // Copy the run up to the next "=" at once: most of a body is plain text.
                let copied: Int? = input.withContiguousStorageIfAvailable { buffer -> Int in
                    let offset = i - input.startIndex
                    guard let base = buffer.baseAddress else { return 0 }
                    let stop = memchr(base + offset, Int32(UInt8(ascii: "=")), buffer.count - offset)
                        .map { UnsafeRawPointer($0).assumingMemoryBound(to: UInt8.self) - base } ?? buffer.count
                    output.append(contentsOf: UnsafeBufferPointer(rebasing: buffer[offset..<stop]))
                    return stop - offset
                }
                if let copied {
                    i += copied
                    if i >= end { break }
                }
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
                if j >= end && !header { i = end; continue }
                if i + 2 < end, let high = hexValue(input[i + 1]), let low = hexValue(input[i + 2]) {
                    output.append(high << 4 | low)
                    i += 3
                    continue
                }
                output.append(byte)
                i += 1
            } else if header && byte == UInt8(ascii: "_") {
                output.append(32)
                i += 1
            } else {
                output.append(byte)
                i += 1
            }
        }
        return output
    }
}
