#if canImport(Glibc)
import Glibc
#endif
import CarteiroConfig
import CarteiroCurl
import CarteiroEvents
import CarteiroJSON
import Foundation

/// With `[events] webhook` set, each event is POSTed to the desk; a 2xx answer takes it.
package struct WebhookSink: EventSink {
    /// The webhook's settings, its secrets resolved.
    package struct Settings: Sendable {
        package var secret: Secret?
        package var token: Secret?
        package var tls: TLSSettings
        package var timeout: Duration
        package var inlineAttachments: Int
        /// Where attachment paths point from (the state directory).
        package var stateDirectory: String
        package init(secret: Secret? = nil, token: Secret? = nil, tls: TLSSettings = TLSSettings(), timeout: Duration = .seconds(30),
                    inlineAttachments: Int = 0, stateDirectory: String = "") {
            self.secret = secret
            self.token = token
            self.tls = tls
            self.timeout = timeout
            self.inlineAttachments = inlineAttachments
            self.stateDirectory = stateDirectory
        }
    }

    let url: String
    let settings: Settings

    package init(url: String, settings: Settings) {
        self.url = url
        self.settings = settings
    }

    var kind: String { "webhook" }
    var healthFields: [String: String] { ["url": url] }

    /// The spool's consumer that POSTs its events here.
    package static func consumer(spool: String, url: String, log: DaemonLog, settings: Settings) -> SpoolConsumer {
        SpoolConsumer(spool: spool, sink: WebhookSink(url: url, settings: settings), log: log, stateDirectory: settings.stateDirectory)
    }

    func deliver(_ event: [UInt8], named name: String) -> String? {
        let payload = payload(event)
        var headers: [String] = []
        if let secret = settings.secret {
            headers.append("Carteiro-Signature: " + Self.signature(body: payload, secret: secret, time: Int64(Date().timeIntervalSince1970)))
        }
        if let token = settings.token { headers.append("Authorization: Bearer \(token.value)") }
        switch HTTPPost.send(payload, to: url, timeout: settings.timeout, tls: settings.tls, headers: headers) {
        case .status(let code) where (200..<300).contains(code): return nil
        case .status(let code): return "HTTP \(code)"
        case .failed(let text): return text
        }
    }

    /// `Carteiro-Signature: t=TIME,v1=HEX`: HMAC-SHA-256 of "TIME." + body with the secret.
    /// The desk recomputes it, compares in constant time, and refuses old timestamps (replays).
    package static func signature(body: [UInt8], secret: Secret, time: Int64) -> String {
        let mac = Digest.hmacSHA256(key: Array(secret.value.utf8), data: Array("\(time).".utf8) + body)
        return "t=\(time),v1=\(Digest.hex(mac))"
    }

    /// The event as POSTed: with attachments inline (base64 in `content_base64`) while they fit
    /// in `inline_attachments`, the rest by their path as in the spool.
    func payload(_ body: [UInt8]) -> [UInt8] {
        guard settings.inlineAttachments > 0, let event = JSONValue.parse(body), let attachments = event["message"]?["attachments"]?.array,
              !attachments.isEmpty else { return body }
        var left = settings.inlineAttachments
        var changed = false
        let inlined = attachments.map { attachment -> JSONValue in
            guard let path = attachment["path"]?.string, let size = attachment["size"]?.int, size <= left,
                  path.hasPrefix("attachments/"), case .object(let members) = attachment,
                  case .success(let bytes) = RegularFile.read(beneath: settings.stateDirectory, path: path, limit: size,
                                                              requirements: .init(singleLink: true, owner: geteuid())) else { return attachment }
            left -= size
            changed = true
            return .object(members + [("content_base64", .string(Data(bytes).base64EncodedString()))])
        }
        guard changed else { return body }
        // The event as it was, its attachments now with their content.
        return event.replacing(["message", "attachments"], with: .array(inlined)).renderedBytes()
    }
}
