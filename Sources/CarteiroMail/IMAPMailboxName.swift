/// IMAP mailbox names on the wire: modified UTF-7 (RFC 3501 §5.1.3), so that a folder called
/// "Processados/Março" reaches the server as "Processados/Mar&AOc-o".
package enum IMAPMailboxName {
    /// Encodes a folder name as modified UTF-7.
    package static func encode(_ name: String) -> String {
        var out = ""
        var pending: [UInt16] = []
        func flush() {
            guard !pending.isEmpty else { return }
            var bytes: [UInt8] = []
            for unit in pending { bytes.append(UInt8(unit >> 8)); bytes.append(UInt8(unit & 0xFF)) }
            out += "&" + modifiedBase64(bytes) + "-"
            pending.removeAll()
        }
        for scalar in name.unicodeScalars {
            if scalar.value >= 0x20 && scalar.value <= 0x7E {
                flush()
                out += scalar == "&" ? "&-" : String(scalar)
            } else {
                pending.append(contentsOf: String(scalar).utf16)
            }
        }
        flush()
        return out
    }

    /// Decodes modified UTF-7; nil if the text is not valid modified UTF-7.
    package static func decode(_ text: String) -> String? {
        var out = ""
        var scalars = Array(text.unicodeScalars)[...]
        while let c = scalars.first {
            scalars = scalars.dropFirst()
            guard c == "&" else {
                guard c.value >= 0x20 && c.value <= 0x7E else { return nil }
                out.unicodeScalars.append(c)
                continue
            }
            guard let end = scalars.firstIndex(of: "-") else { return nil }
            let encoded = String(String.UnicodeScalarView(scalars[..<end]))
            scalars = scalars[(end + 1)...]
            if encoded.isEmpty { out += "&"; continue }
            guard let bytes = modifiedBase64Decode(encoded), bytes.count % 2 == 0 else { return nil }
            var units: [UInt16] = []
            for i in stride(from: 0, to: bytes.count, by: 2) { units.append(UInt16(bytes[i]) << 8 | UInt16(bytes[i + 1])) }
            guard let decoded = String(validating: units, as: UTF16.self) else { return nil }
            out += decoded
        }
        return out
    }

    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,".utf8)

    static func modifiedBase64(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            let b0 = bytes[i], b1 = i + 1 < bytes.count ? bytes[i + 1] : 0, b2 = i + 2 < bytes.count ? bytes[i + 2] : 0
            out.append(alphabet[Int(b0 >> 2)])
            out.append(alphabet[Int((b0 & 0x03) << 4 | b1 >> 4)])
            if i + 1 < bytes.count { out.append(alphabet[Int((b1 & 0x0F) << 2 | b2 >> 6)]) }
            if i + 2 < bytes.count { out.append(alphabet[Int(b2 & 0x3F)]) }
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func modifiedBase64Decode(_ text: String) -> [UInt8]? {
        var bits: UInt32 = 0, count = 0
        var out: [UInt8] = []
        for byte in text.utf8 {
            guard let value = alphabet.firstIndex(of: byte) else { return nil }
            bits = bits << 6 | UInt32(value)
            count += 6
            if count >= 8 {
                count -= 8
                out.append(UInt8((bits >> UInt32(count)) & 0xFF))
            }
        }
        return out
    }
}

/// IMAP string arguments (RFC 3501 §4.3): a quoted string when that is possible.
package enum IMAPString {
    /// `"INBOX"`, with `\` and `"` escaped. nil when the text needs a literal (CR, LF, NUL, 8-bit).
    package static func quoted(_ text: String) -> String? {
        var out = "\""
        for scalar in text.unicodeScalars {
            guard scalar.value >= 0x01 && scalar.value <= 0x7F, scalar != "\r", scalar != "\n" else { return nil }
            if scalar == "\"" || scalar == "\\" { out += "\\" }
            out.unicodeScalars.append(scalar)
        }
        return out + "\""
    }
}
