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
