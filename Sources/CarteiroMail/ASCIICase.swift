extension String {
    /// `lowercased()` for the names and tokens of mail (field names, MIME types, parameter
    /// names, charsets), which are ASCII: a string with no capital is itself (no copy), an ASCII
    /// one is lowered byte by byte, and anything else takes the Unicode-aware way. Profiles
    /// showed `lowercased()` on these, several times a message.
    var lowercasedMailToken: String {
        var hasCapital = false
        for byte in utf8 {
            if byte >= 0x80 { return lowercased() }
            if byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") { hasCapital = true }
        }
        guard hasCapital else { return self }
        return String(unsafeUninitializedCapacity: utf8.count) { out in
            var count = 0
            for byte in utf8 {
                out[count] = byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
                count += 1
            }
            return count
        }
    }
}

/// Searches in bytes for ASCII text whatever its case (HTML tags).
enum ASCIICase {
    static func matches(_ needle: [UInt8], in bytes: ArraySlice<UInt8>, at index: Int) -> Bool {
        guard bytes.endIndex - index >= needle.count else { return false }
        for (offset, expected) in needle.enumerated() {
            let byte = bytes[index + offset]
            let lowered = byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
            if lowered != expected { return false }
        }
        return true
    }

    /// Where `needle` (lower case) first starts in `bytes`.
    static func firstIndex(of needle: String, in bytes: ArraySlice<UInt8>) -> Int? {
        let needle = Array(needle.utf8)
        guard let head = needle.first else { return nil }
        var i = bytes.startIndex
        while let found = bytes[i...].firstIndex(where: { $0 | 0x20 == head }) {
            if matches(needle, in: bytes, at: found) { return found }
            i = found + 1
        }
        return nil
    }

    /// Where `needle` (lower case) last starts in `bytes`.
    static func lastIndex(of needle: String, in bytes: ArraySlice<UInt8>) -> Int? {
        let needle = Array(needle.utf8)
        guard let head = needle.first else { return nil }
        var end = bytes.endIndex
        while let found = bytes[bytes.startIndex..<end].lastIndex(where: { $0 | 0x20 == head }) {
            if matches(needle, in: bytes, at: found) { return found }
            end = found
        }
        return nil
    }
}
