/// Base64 as RFC 4648 §4 defines it, and nothing else: the standard alphabet (`+` and `/`),
/// `=` padding only at the very end, line breaks and spaces between characters allowed (MIME
/// wraps at 76). An attachment must go out as exactly the bytes the desk meant; a lenient
/// decoder turned URL-safe base64 into other bytes (`-` and `_` skipped) and stopped at a `=`
/// in the middle (`YQ==YWJj` became `a`). Anything else is refused, with where and why.
enum StrictBase64 {
    /// Why a text is not standard base64, in words that follow "it".
    struct Refusal: Error, Equatable, CustomStringConvertible {
        var description: String
    }

    static func decode(_ text: String) -> Result<[UInt8], Refusal> {
        var output: [UInt8] = []
        output.reserveCapacity(text.utf8.count / 4 * 3)
        var group: UInt32 = 0
        var inGroup = 0
        var padding = 0
        for (offset, byte) in text.utf8.enumerated() {
            let value: UInt32
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): value = UInt32(byte - UInt8(ascii: "A"))
            case UInt8(ascii: "a")...UInt8(ascii: "z"): value = UInt32(byte - UInt8(ascii: "a")) + 26
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = UInt32(byte - UInt8(ascii: "0")) + 52
            case UInt8(ascii: "+"): value = 62
            case UInt8(ascii: "/"): value = 63
            case UInt8(ascii: "\r"), UInt8(ascii: "\n"), UInt8(ascii: " "), UInt8(ascii: "\t"): continue
            case UInt8(ascii: "="):
                // Padding completes the last group: `==` after two characters, `=` after three.
                guard inGroup + padding >= 2, inGroup + padding < 4 else {
                    return .failure(Refusal(description: "has `=` at offset \(offset), where no padding can be"))
                }
                padding += 1
                continue
            case UInt8(ascii: "-"), UInt8(ascii: "_"):
                return .failure(Refusal(description: "has `\(Character(Unicode.Scalar(byte)))` at offset \(offset): that is URL-safe base64; use the standard alphabet (`+` and `/`)"))
            default:
                let shown = byte >= 0x20 && byte < 0x7F ? "`\(Character(Unicode.Scalar(byte)))`" : "byte \(byte)"
                return .failure(Refusal(description: "has \(shown) at offset \(offset), which is not base64"))
            }
            if padding > 0 { return .failure(Refusal(description: "has data after its `=` padding (offset \(offset)): padding belongs only at the end")) }
            group = group << 6 | value
            inGroup += 1
            if inGroup == 4 {
                output.append(UInt8(truncatingIfNeeded: group >> 16))
                output.append(UInt8(truncatingIfNeeded: group >> 8))
                output.append(UInt8(truncatingIfNeeded: group))
                group = 0
                inGroup = 0
            }
        }
        if padding > 0 && inGroup + padding != 4 {
            return .failure(Refusal(description: "ends with too little padding (`\(String(repeating: "=", count: padding))` after \(inGroup) characters)"))
        }
        switch inGroup {
        case 0:
            break
        case 2:
            output.append(UInt8(truncatingIfNeeded: group >> 4))
        case 3:
            output.append(UInt8(truncatingIfNeeded: group >> 10))
            output.append(UInt8(truncatingIfNeeded: group >> 2))
        default:
            return .failure(Refusal(description: "is cut short: its last group has 1 character of 4"))
        }
        return .success(output)
    }
}
