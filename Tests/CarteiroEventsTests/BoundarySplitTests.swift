import CByteSearch
import Testing
@testable import CarteiroMail

/// A multipart body split at its boundary lines by searching for "\n--boundary" (memmem), against
/// a plain reading of RFC 2046 §5.1.1 line by line: boundary lines at the start or after a line
/// feed, trailing blanks allowed, the closing "--", the CRLF before a boundary belonging to it,
/// look-alike lines (a longer boundary, text after it, the boundary in mid-line) ignored.
struct BoundarySplitTests {
    static func reference(_ body: ArraySlice<UInt8>, boundary: [UInt8]) -> (parts: [ArraySlice<UInt8>], closed: Bool) {
        var parts: [ArraySlice<UInt8>] = []
        var partStart: Int?
        var lineStart = body.startIndex
        let end = body.endIndex
        while lineStart < end {
            let lineEnd = body[lineStart...].firstIndex(of: 10) ?? end
            let next = lineEnd < end ? lineEnd + 1 : end
            if lineEnd - lineStart >= boundary.count, body[lineStart..<(lineStart + boundary.count)].elementsEqual(boundary) {
                let after = lineStart + boundary.count
                let isClose = after + 1 < end && body[after] == UInt8(ascii: "-") && body[after + 1] == UInt8(ascii: "-")
                var k = isClose ? after + 2 : after
                while k < lineEnd, body[k] == 32 || body[k] == 9 || body[k] == 13 { k += 1 }
                if k == lineEnd {
                    if let start = partStart {
                        var partEnd = lineStart
                        if partEnd > start, body[partEnd - 1] == 10 { partEnd -= 1 }
                        if partEnd > start, body[partEnd - 1] == 13 { partEnd -= 1 }
                        parts.append(body[start..<partEnd])
                    }
                    if isClose { return (parts, true) }
                    partStart = next
                }
            }
            lineStart = next
        }
        if let start = partStart, start < end { parts.append(body[start..<end]) }
        return (parts, false)
    }

    @Test func agreesWithALineByLineReading() {
        let boundary = Array("--b1".utf8)
        let pieces = ["--b1", "--b1--", "--b12", "x--b1", "--b1 \t", "--b1--  ", "--b1x", "text", "", "\r", "-", "--"].map { Array($0.utf8) }
        var state: UInt64 = 2046
        func next(_ bound: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int((state >> 33) % UInt64(bound))
        }
        for _ in 0..<20_000 {
            var body: [UInt8] = []
            for _ in 0..<next(10) {
                body += pieces[next(pieces.count)]
                body += next(3) == 0 ? [13, 10] : next(2) == 0 ? [10] : []
            }
            // A slice that does not start at 0, as a part of a larger message is.
            let padded = Array("junk".utf8) + body
            let slice = padded[4...]
            let got = MIMEParser.split(slice, boundary: boundary), want = Self.reference(slice, boundary: boundary)
            #expect(got.closed == want.closed && got.parts.map(Array.init) == want.parts.map(Array.init)
                    && got.parts.map(\.startIndex) == want.parts.map(\.startIndex), "\(String(decoding: body, as: UTF8.self).debugDescription)")
            if got.closed != want.closed || got.parts.map(Array.init) != want.parts.map(Array.init) { break }
        }
    }

    /// The search itself (sixteen positions at a time on x86-64) finds the first occurrence, as
    /// a plain one does: needles of every length from 1, at every offset, near the end, cut
    /// short by the end, and among look-alikes that share their first two bytes.
    @Test func searchFindsTheFirstOccurrenceAsAPlainOneDoes() {
        func plain(_ hay: [UInt8], _ needle: [UInt8]) -> Int? {
            guard needle.count <= hay.count else { return nil }
            return (0...(hay.count - needle.count)).first { hay[$0..<($0 + needle.count)].elementsEqual(needle) }
        }
        func found(_ hay: [UInt8], _ needle: [UInt8]) -> Int? {
            hay.withUnsafeBytes { h in
                needle.withUnsafeBytes { n in
                    carteiro_memmem(h.baseAddress, h.count, n.baseAddress, n.count).map { UnsafeRawPointer($0) - h.baseAddress! }
                }
            }
        }
        var state: UInt64 = 4242
        func next() -> UInt64 { state = state &* 6364136223846793005 &+ 1442695040888963407; return state >> 33 }
        let alphabet: [UInt8] = Array("\n-ab".utf8)
        for _ in 0..<20_000 {
            let hay = (0..<Int(next() % 70)).map { _ in alphabet[Int(next() % UInt64(alphabet.count))] }
            let needle = Array("\n--ab".utf8).prefix(Int(next() % 6) + 1) + (next() % 3 == 0 ? [UInt8(ascii: "a")] : [])
            #expect(found(hay, Array(needle)) == plain(hay, Array(needle)), "\(hay) \(Array(needle))")
        }
        let long = Array(repeating: UInt8(ascii: "x"), count: 100)
        for at in 0..<100 {
            var hay = long
            hay.replaceSubrange(at..<min(at + 4, 100), with: Array("\n--b".utf8).prefix(min(4, 100 - at)))
            #expect(found(hay, Array("\n--b".utf8)) == plain(hay, Array("\n--b".utf8)), "at \(at)")
        }
    }
}
