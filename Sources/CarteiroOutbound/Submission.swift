import CarteiroConfig
import Foundation

/// What the desk asks to send: a JSON file in the outbox, or `carteiro send`.
package struct Submission: Sendable, Codable, Equatable {
    package var workflow: String?
    package var step: String?
    /// An explicit outbound mailbox: wins over the step's choice.
    package var mailbox: String?
    package var contract: String?
    package var request: String?
    package var to: [String]?
    package var cc: [String]?
    package var bcc: [String]?
    package var subject: String?
    package var text: String?
    package var html: String?
    /// Template variables; dotted keys nest: "request.subject".
    package var vars: [String: String]?
    /// One message to every recipient instead of one each.
    package var oneMessage: Bool?
    /// Message-IDs this notification answers (threading in the recipient's client).
    package var inReplyTo: String?
    package var references: [String]?
    /// Where replies go (Reply-To), instead of the mailbox's sender.
    package var replyTo: [String]?
    /// Files to send with the message.
    package var attachments: [SubmissionAttachment]?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case workflow, step, mailbox, contract, request, to, cc, bcc, subject, text, html, vars
        case oneMessage = "one_message"
        case inReplyTo = "in_reply_to"
        case references
        case replyTo = "reply_to"
        case attachments
    }

    /// The keys a submission may have.
    package static var knownKeys: [String] { CodingKeys.allCases.map(\.rawValue) }
    /// Nested `vars` deeper than this are refused.
    static let maximumVarsDepth = 16

    package init(workflow: String? = nil, step: String? = nil, mailbox: String? = nil, contract: String? = nil, request: String? = nil,
                to: [String]? = nil, cc: [String]? = nil, bcc: [String]? = nil, subject: String? = nil, text: String? = nil,
                html: String? = nil, vars: [String: String]? = nil, oneMessage: Bool? = nil, inReplyTo: String? = nil, references: [String]? = nil,
                replyTo: [String]? = nil, attachments: [SubmissionAttachment]? = nil) {
        self.workflow = workflow
        self.step = step
        self.mailbox = mailbox
        self.contract = contract
        self.request = request
        self.to = to
        self.cc = cc
        self.bcc = bcc
        self.subject = subject
        self.text = text
        self.html = html
        self.vars = vars
        self.oneMessage = oneMessage
        self.inReplyTo = inReplyTo
        self.references = references
        self.replyTo = replyTo
        self.attachments = attachments
    }

    /// Reads a submission file; the error says what is wrong with it.
    package static func decode(_ data: Data) -> Result<Submission, SubmissionRejection> {
        if let submission = SubmissionFastPath.decode([UInt8](data)) { return .success(submission) }
        return decodeWithFoundation(data)
    }

    /// The reference decoder, and the one that explains: everything the fast path leaves.
    static func decodeWithFoundation(_ data: Data) -> Result<Submission, SubmissionRejection> {
        // Strict: a key Carteiro does not know is a mistake (a misspelt `one_mesage`, a feature
        // that is not there), never silently dropped. `vars` may nest; it is flattened to dotted
        // keys (`{"request": {"subject": …}}` is `request.subject`).
        var flattened: [String: String]?
        var normalized = data
        if let object = try? JSONSerialization.jsonObject(with: data) {
            guard var dictionary = object as? [String: Any] else {
                return .failure(SubmissionRejection("the submission must be a JSON object ({…})"))
            }
            for key in dictionary.keys.sorted() where !knownKeys.contains(key) {
                return .failure(SubmissionRejection("unknown key `\(key)`" + NearestName.hint(key, among: knownKeys) + " (the keys: \(knownKeys.joined(separator: ", ")))"))
            }
            if let vars = dictionary["vars"], !(vars is NSNull) {
                guard let nested = vars as? [String: Any] else {
                    return .failure(SubmissionRejection("`vars` must be an object of template variables"))
                }
                var flat: [String: String] = [:]
                if let problem = flatten(nested, prefix: "", depth: 1, into: &flat) { return .failure(SubmissionRejection(problem)) }
                flattened = flat
                dictionary.removeValue(forKey: "vars")
                normalized = (try? JSONSerialization.data(withJSONObject: dictionary)) ?? data
            }
            if let list = dictionary["attachments"] as? [Any] {
                for (index, item) in list.enumerated() {
                    guard let attachment = item as? [String: Any] else {
                        return .failure(SubmissionRejection("`attachments[\(index)]` must be an object with name, type, and path or content_base64"))
                    }
                    for key in attachment.keys.sorted() where !SubmissionAttachment.knownKeys.contains(key) {
                        return .failure(SubmissionRejection("`attachments[\(index)]`: unknown key `\(key)`" + NearestName.hint(key, among: SubmissionAttachment.knownKeys)))
                    }
                }
            }
            if let replyTo = dictionary["reply_to"] as? String {
                dictionary["reply_to"] = [replyTo]
                normalized = (try? JSONSerialization.data(withJSONObject: dictionary)) ?? data
            }
        }
        do {
            var submission = try JSONDecoder().decode(Submission.self, from: normalized)
            if let flattened { submission.vars = flattened }
            return .success(submission)
        } catch DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context) {
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return .failure(SubmissionRejection("the field `\(path)` has the wrong type: \(context.debugDescription)"))
        } catch DecodingError.dataCorrupted(let context) {
            return .failure(SubmissionRejection("the submission is not valid JSON: " + jsonProblem(data, context)))
        } catch DecodingError.keyNotFound(let key, _) {
            return .failure(SubmissionRejection("the submission lacks `\(key.stringValue)`"))
        } catch {
            return .failure(SubmissionRejection("the submission is not valid JSON: \(error)"))
        }
    }

    /// `{"request": {"subject": "x"}, "n": 3}` → `request.subject = x`, `n = 3`. Strings, numbers
    /// and booleans are values; an array is not (templates take text).
    static func flatten(_ object: [String: Any], prefix: String, depth: Int, into flat: inout [String: String]) -> String? {
        guard depth <= maximumVarsDepth else { return "`vars` nests deeper than \(maximumVarsDepth) levels" }
        for key in object.keys.sorted() {
            let path = prefix.isEmpty ? key : prefix + "." + key
            guard !key.isEmpty, !key.contains("."), !key.hasPrefix("{") else {
                if key.contains("."), prefix.isEmpty, let value = object[key] as? String { flat[path] = value; continue }
                return "`vars`: \"\(path)\" is not a variable name"
            }
            switch object[key] {
            case let text as String: flat[path] = text
            case let number as NSNumber:
                // JSON's true and false arrive as NSNumber too, of type "c".
                flat[path] = String(cString: number.objCType) == "c" ? (number.boolValue ? "true" : "false") : number.stringValue
            case let nested as [String: Any]:
                if let problem = flatten(nested, prefix: path, depth: depth + 1, into: &flat) { return problem }
            case is NSNull: flat[path] = ""
            default: return "`vars.\(path)` is a list; template variables are text, numbers or objects"
            }
        }
        return nil
    }

    /// What is wrong and where (line and column): Foundation's decoder says only "not valid
    /// JSON", so the bytes are read again by JSONSerialization, whose message names the offset.
    static func jsonProblem(_ data: Data, _ context: DecodingError.Context) -> String {
        let bytes = [UInt8](data)
        if bytes.allSatisfy({ $0 == 32 || $0 == 9 || $0 == 10 || $0 == 13 }) { return "the file is empty" }
        func position(_ index: Int) -> String {
            let before = bytes[..<min(max(index, 0), bytes.count)]
            let line = before.filter { $0 == 10 }.count + 1
            let column = before.count - (before.lastIndex(of: 10).map { $0 + 1 } ?? 0) + 1
            return "line \(line), column \(column)"
        }
        do {
            _ = try JSONSerialization.jsonObject(with: data)
        } catch {
            let detail = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? ""
            if detail.hasPrefix("Unexpected end of file") { return "it ends in the middle of a value (\(position(bytes.count)))" }
            if let range = detail.range(of: "character "), let index = Int(detail[range.upperBound...].prefix { $0.isNumber }) {
                return "unexpected text at \(position(index))"
            }
            if !detail.isEmpty { return detail }
        }
        return context.debugDescription
    }

    package func encoded() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        return (try? encoder.encode(self)) ?? Data()
    }
}

/// A file sent with a notification: its content inline (base64), or a file by its path inside
/// the submission's folder (the outbox), which the daemon reads.
package struct SubmissionAttachment: Sendable, Codable, Equatable {
    package var name: String
    package var type: String?
    package var path: String?
    package var contentBase64: String?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, type, path
        case contentBase64 = "content_base64"
    }

    static var knownKeys: [String] { CodingKeys.allCases.map(\.rawValue) }

    package init(name: String, type: String? = nil, path: String? = nil, contentBase64: String? = nil) {
        self.name = name
        self.type = type
        self.path = path
        self.contentBase64 = contentBase64
    }
}

/// Why a submission cannot be sent: moved aside with this reason next to it.
package struct SubmissionRejection: Error, Sendable, CustomStringConvertible, Equatable {
    package var description: String
    package init(_ description: String) { self.description = description }
}
