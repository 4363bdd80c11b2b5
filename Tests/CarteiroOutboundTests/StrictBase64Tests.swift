import Foundation
import Testing
@testable import CarteiroOutbound

/// Attachments' base64 is decoded strictly: what is not standard base64 is refused with its
/// reason, never turned into other bytes.
struct StrictBase64Tests {
    @Test func standardBase64DecodesAsFoundationDoes() throws {
        var generator = SystemRandomNumberGenerator()
        for length in 0..<200 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let encoded = Data(bytes).base64EncodedString()
            #expect(try StrictBase64.decode(encoded).get() == bytes)
            // Wrapped as MIME wraps it, and unpadded: the same bytes.
            let wrapped = Data(bytes).base64EncodedString(options: [.lineLength76Characters, .endLineWithCarriageReturn, .endLineWithLineFeed])
            #expect(try StrictBase64.decode(wrapped).get() == bytes)
            #expect(try StrictBase64.decode(String(encoded.prefix { $0 != "=" })).get() == bytes)
        }
    }

    /// The two cases found: URL-safe base64 went out as 992 different bytes of 1,024, and
    /// `YQ==YWJj` went out as `a`.
    @Test(arguments: [
        ("YQ==YWJj", "has data after its `=` padding (offset 4): padding belongs only at the end"),
        ("ab-_", "has `-` at offset 2: that is URL-safe base64; use the standard alphabet (`+` and `/`)"),
        ("YW=J", "has data after its `=` padding (offset 3): padding belongs only at the end"),
        ("Y===", "has `=` at offset 1, where no padding can be"),
        ("YWJ==", "has `=` at offset 4, where no padding can be"),
        ("YW=", "ends with too little padding (`=` after 2 characters)"),
        ("YWJjZ", "is cut short: its last group has 1 character of 4"),
        ("YW%J", "has `%` at offset 2, which is not base64"),
        ("YW\u{0}J", "has byte 0 at offset 2, which is not base64"),
    ])
    func nonStandardBase64IsRefusedWithItsReason(input: String, reason: String) {
        switch StrictBase64.decode(input) {
        case .success(let bytes): Issue.record("\(input) decoded to \(bytes)")
        case .failure(let refusal): #expect(refusal.description == reason)
        }
    }

    @Test func urlSafeBase64OfRandomBytesIsRefusedNotChanged() {
        let bytes = (0..<1024).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
        let urlSafe = Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        #expect(urlSafe.contains("-") || urlSafe.contains("_"))
        if case .success = StrictBase64.decode(urlSafe) { Issue.record("URL-safe base64 was accepted") }
    }
}
