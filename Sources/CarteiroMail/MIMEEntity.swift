#if canImport(Glibc)
import Glibc
#endif
import CByteSearch

/// One MIME entity: a message or a part, with its children when it is a multipart, or the
/// message it carries when it is `message/rfc822`. Bodies stay undecoded slices of the input.
package struct MIMEEntity: Sendable {
    package var header: HeaderBlock
    package var contentType: MIMEHeaderValue
    package var disposition: MIMEHeaderValue?
    /// The body as transmitted (before Content-Transfer-Encoding decoding).
    package var rawBody: ArraySlice<UInt8>
    /// The whole entity, header included (for message/rfc822 attachments and the raw store).
    package var rawEntity: ArraySlice<UInt8>
    package var children: [MIMEEntity]
    package var embeddedMessage: [MIMEEntity]
    /// Structural problems found while parsing this entity (missing boundary …).
    package var problems: [String]

    package var isMultipart: Bool { contentType.value.hasPrefix("multipart/") }

    /// The body with its transfer encoding removed.
    package var decodedBody: [UInt8] {
        let encoding = header.raw("content-transfer-encoding").map { String(decoding: HeaderBlock.trim($0), as: UTF8.self).lowercasedMailToken } ?? "7bit"
        switch encoding {
        case "base64": return TransferEncoding.base64(rawBody)
        case "quoted-printable": return TransferEncoding.quotedPrintable(rawBody)
        case "x-uuencode", "uuencode", "x-uue", "uue": return UUEncode.decodeBody(rawBody).data
        default: return Array(rawBody)
        }
    }

    /// Whether the body is uuencoded (`x-uuencode` and its other names).
    package var isUUEncoded: Bool {
        let encoding = header.raw("content-transfer-encoding").map { String(decoding: HeaderBlock.trim($0), as: UTF8.self).lowercasedMailToken } ?? ""
        return ["x-uuencode", "uuencode", "x-uue", "uue"].contains(encoding)
    }

    /// The filename, from Content-Disposition or (older clients) Content-Type's `name`.
    package var filename: String? {
        let name = disposition?.parameters["filename"] ?? contentType.parameters["name"]
        return name.flatMap { $0.isEmpty ? nil : $0 }
    }

    package var contentID: String? {
        header.raw("content-id").map { String(decoding: $0, as: UTF8.self).trimmingCharacters(" ") }
    }

    package var isAttachment: Bool { disposition?.value == "attachment" }
}

/// Parses a message into its MIME tree (RFC 2045, RFC 2046), with the limits of `MessageLimits`.
package struct MIMEParser {
    private var partCount = 0

    package init() {}

    package mutating func parse(_ bytes: ArraySlice<UInt8>, depth: Int = 0, defaultType: String = "text/plain") -> MIMEEntity {
        partCount += 1
        let (header, bodyStart) = HeaderBlock.parse(bytes)
        var contentType = header.raw("content-type").map(MIMEHeaderValue.parse) ?? MIMEHeaderValue(value: defaultType, parameters: ["charset": "us-ascii"])
        if !contentType.value.contains("/") { contentType = MIMEHeaderValue(value: defaultType, parameters: contentType.parameters) }
        var entity = MIMEEntity(header: header, contentType: contentType,
                                disposition: header.raw("content-disposition").map(MIMEHeaderValue.parse),
                                rawBody: bytes[bodyStart...], rawEntity: bytes, children: [], embeddedMessage: [], problems: [])
        if header.isDamaged { entity.problems.append("damaged header") }
        guard depth < MessageLimits.maximumMIMEDepth, partCount < MessageLimits.maximumParts else {
            if entity.isMultipart || contentType.value == "message/rfc822" { entity.problems.append("nested too deeply") }
            return entity
        }
        if entity.isMultipart {
            guard let boundary = contentType.parameters["boundary"], !boundary.isEmpty else {
                entity.problems.append("multipart without boundary")
                entity.contentType = MIMEHeaderValue(value: "text/plain", parameters: [:])
                return entity
            }
            let pieces = Self.split(entity.rawBody, boundary: Array(("--" + boundary).utf8))
            if pieces.parts.isEmpty {
                entity.problems.append("boundary never found")
                entity.contentType = MIMEHeaderValue(value: "text/plain", parameters: contentType.parameters)
                return entity
            }
            if !pieces.closed { entity.problems.append("closing boundary missing") }
            let childDefault = contentType.value == "multipart/digest" ? "message/rfc822" : "text/plain"
            for piece in pieces.parts {
                entity.children.append(parse(piece, depth: depth + 1, defaultType: childDefault))
            }
        } else if contentType.value == "message/rfc822" || contentType.value == "message/global" {
            let inner = entity.decodedBody
            entity.embeddedMessage = [parse(ArraySlice(inner), depth: depth + 1)]
        }
        return entity
    }

    /// The parts between `--boundary` lines; `closed` when `--boundary--` was seen.
    static func split(_ body: ArraySlice<UInt8>, boundary: [UInt8]) -> (parts: [ArraySlice<UInt8>], closed: Bool) {
        guard !boundary.isEmpty else { return ([], false) }
        // A boundary line starts the body or follows a line feed: memmem finds "\n--boundary"
        // and jumps over the text between (a line by line scan showed in profiles).
        let needle = [10] + boundary
        return body.withUnsafeBufferPointer { buffer -> (parts: [ArraySlice<UInt8>], closed: Bool) in
            guard let base = buffer.baseAddress else { return ([], false) }
            let count = buffer.count, origin = body.startIndex
            var parts: [ArraySlice<UInt8>] = []
            var partStart: Int?
            // Whether the line at `lineStart` (known to begin with the boundary) is a boundary
            // line; `nil` if not, else whether it closes.
            func boundaryLine(at lineStart: Int) -> (lineEnd: Int, closes: Bool)? {
                let lineEnd = memchr(base + lineStart, 10, count - lineStart).map { UnsafeRawPointer($0) - UnsafeRawPointer(base) } ?? count
                let after = lineStart + boundary.count
                let closes = after + 1 < count && base[after] == UInt8(ascii: "-") && base[after + 1] == UInt8(ascii: "-")
                // The boundary line may carry trailing blanks; anything else means it is not one.
                var k = closes ? after + 2 : after
                while k < lineEnd, base[k] == 32 || base[k] == 9 || base[k] == 13 { k += 1 }
                return k == lineEnd ? (lineEnd, closes) : nil
            }
            var candidate: Int? = count >= boundary.count && memcmp(base, boundary, boundary.count) == 0 ? 0 : nil
            var searchFrom = 0
            while true {
                if candidate == nil {
                    guard count - searchFrom >= needle.count,
                          let found = carteiro_memmem(base + searchFrom, count - searchFrom, needle, needle.count) else { break }
                    candidate = UnsafeRawPointer(found) - UnsafeRawPointer(base) + 1
                }
                guard let lineStart = candidate else { break }
                candidate = nil
                // The next search starts at this line's own line feed at the earliest.
                searchFrom = lineStart
                guard let (lineEnd, closes) = boundaryLine(at: lineStart) else { continue }
                if let start = partStart {
                    // The CRLF before the boundary belongs to the boundary.
                    var partEnd = lineStart
                    if partEnd > start, base[partEnd - 1] == 10 { partEnd -= 1 }
                    if partEnd > start, base[partEnd - 1] == 13 { partEnd -= 1 }
                    parts.append(body[(origin + start)..<(origin + partEnd)])
                }
                if closes { return (parts, true) }
                partStart = lineEnd < count ? lineEnd + 1 : count
                searchFrom = lineEnd
            }
            if let start = partStart, start < count { parts.append(body[(origin + start)..<(origin + count)]) }
            return (parts, false)
        }
    }
}

extension String {
    func trimmingCharacters(_ character: Character) -> String {
        var s = Substring(self)
        while s.first == character || s.first == "\t" { s = s.dropFirst() }
        while s.last == character || s.last == "\t" || s.last == "\r" { s = s.dropLast() }
        return String(s)
    }
}
