/// Whether bytes are well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing
/// past U+10FFFF), eight ASCII bytes at a time between the multi-byte characters. A body that
/// passes goes into the event as it is; Swift's own check, run when a String is made from
/// bytes, goes a scalar at a time and showed in profiles.
public enum UTF8Validation {
    public static func isValid(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBufferPointer(isValid)
    }

    public static func isValid(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let base = bytes.baseAddress else { return true }
        let count = bytes.count
        var i = 0
        while i < count {
            while i + 8 <= count, UnsafeRawPointer(base + i).loadUnaligned(as: UInt64.self) & 0x8080_8080_8080_8080 == 0 { i += 8 }
            guard i < count else { return true }
            let lead = base[i]
            if lead < 0x80 {
                i += 1
                continue
            }
            @inline(__always) func continuation(_ k: Int) -> Bool { base[k] & 0xC0 == 0x80 }
            switch lead {
            case 0xC2...0xDF:
                guard i + 1 < count, continuation(i + 1) else { return false }
                i += 2
            case 0xE0...0xEF:
                guard i + 2 < count, continuation(i + 1), continuation(i + 2) else { return false }
                let second = base[i + 1]
                // E0 below A0 is an overlong form; ED from A0 on, a surrogate.
                if lead == 0xE0 && second < 0xA0 || lead == 0xED && second >= 0xA0 { return false }
                i += 3
            case 0xF0...0xF4:
                guard i + 3 < count, continuation(i + 1), continuation(i + 2), continuation(i + 3) else { return false }
                let second = base[i + 1]
                // F0 below 90 is overlong; F4 from 90 on is past U+10FFFF.
                if lead == 0xF0 && second < 0x90 || lead == 0xF4 && second >= 0x90 { return false }
                i += 4
            default:
                return false
            }
        }
        return true
    }
}
