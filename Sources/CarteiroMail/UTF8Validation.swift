#if canImport(Glibc)
import Glibc
#endif
import CByteSearch

/// Whether bytes are well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing
/// past U+10FFFF). A body that passes goes into the event as it is. Swift's own check, run
/// when a String is made from bytes, goes a scalar at a time and showed in profiles; this one
/// takes sixteen bytes at a time where the CPU allows (in C, beside the byte searches).
package enum UTF8Validation {
    package static func isValid(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBufferPointer(isValid)
    }

    package static func isValid(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let base = bytes.baseAddress else { return true }
        return carteiro_utf8_valid(base, bytes.count) != 0
    }

    /// The byte-by-byte way, which the fast one must agree with.
    static func isValidPlain(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return true }
            return carteiro_utf8_valid_plain(base, buffer.count) != 0
        }
    }

    /// U+0000 as U+FFFD: mail text never means a NUL, and a desk that keeps events in
    /// PostgreSQL (`jsonb`) cannot store one. Nothing is copied when there is none.
    package static func withoutNUL(_ text: String) -> String {
        guard text.utf8.contains(0) else { return text }
        return String(decoding: withoutNUL(Array(text.utf8)), as: UTF8.self)
    }

    /// The same on UTF-8 bytes.
    package static func withoutNUL(_ bytes: [UInt8]) -> [UInt8] {
        let hasNUL = bytes.withUnsafeBufferPointer { buffer in buffer.baseAddress.map { memchr($0, 0, buffer.count) != nil } ?? false }
        guard hasNUL else { return bytes }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + 16)
        for byte in bytes {
            if byte == 0 { out += [0xEF, 0xBF, 0xBD] } else { out.append(byte) }
        }
        return out
    }
}
