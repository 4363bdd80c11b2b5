#if canImport(Glibc)
import Glibc
#endif
import CCurl
import CCurlShim
import CarteiroConfig

/// Turns a libcurl failure during connect, TLS or login into an error a person can act on.
enum CurlFailure {
    static func explain(_ code: CURLcode, handle: CurlHandle, endpoint: MailEndpoint, user: String?, bearer: OAuthMechanism? = nil) -> MailConnectionError {
        let target = endpoint.description
        let detail = handle.errorText(code)
        let reply = handle.transcript.lastRefusal
        let curlCode = Int(code.rawValue)
        let proto = endpoint.serviceProtocol.displayName
        func error(_ kind: MailConnectionError.Kind, _ message: String, reply: String? = nil) -> MailConnectionError {
            MailConnectionError(kind, endpoint: target, message: message, serverReply: reply, curlCode: curlCode)
        }
        switch code {
        case CURLE_COULDNT_RESOLVE_HOST:
            return error(.nameNotResolved, "the name \(endpoint.host) could not be resolved: check `server` and this machine's DNS")
        case CURLE_COULDNT_CONNECT:
            let osError = handle.info(CURLINFO_OS_ERRNO)
            if osError == Int(ECONNREFUSED) {
                return error(.connectionRefused, "\(endpoint.host) refused the connection on port \(endpoint.port): nothing listens there, or a firewall rejects it; check `server` and `port`")
            }
            let reason = osError != 0 ? String(cString: strerror(Int32(osError))) : detail
            return error(.connectionRefused, "could not connect to \(endpoint.host) port \(endpoint.port): \(reason)")
        case CURLE_OPERATION_TIMEDOUT:
            let seconds = ConfigDuration.format(endpoint.timeout)
            if !handle.transcript.tcpConnected {
                return error(.connectTimedOut, "connecting to \(endpoint.host) port \(endpoint.port) timed out after \(seconds): the server is down or a firewall drops the packets")
            }
            return error(.noAnswer, "\(target) accepted the connection but did not finish the \(proto) greeting, TLS and login within \(seconds): the server is overloaded, or this port speaks another protocol" + (handle.transcript.lines.isEmpty ? " (it sent nothing at all)" : ""), reply: handle.transcript.lines.last)
        case CURLE_ABORTED_BY_CALLBACK where handle.transcript.foreignGreeting != nil:
            let greeting = handle.transcript.foreignGreeting
            return error(.protocolViolation, "port \(endpoint.port) of \(endpoint.host) speaks \(greeting?.speaks ?? "another protocol"), not \(proto): check `port` (and `provider` or `tls`)",
                         reply: greeting?.line)
        case CURLE_PEER_FAILED_VERIFICATION:
            return certificateError(detail: detail, endpoint: endpoint, curlCode: curlCode)
        case CURLE_SSL_CONNECT_ERROR:
            var hint = ""
            if detail.contains("wrong version number") || detail.contains("packet length too long") || detail.contains("unexpected eof") {
                let starttls = endpoint.serviceProtocol == .smtp ? "tls = \"starttls\"" : "provider \"\(endpoint.serviceProtocol == .imap ? "imap" : "pop")\""
                hint = endpoint.security == .implicitTLS
                    ? ": port \(endpoint.port) does not seem to speak TLS from the first byte; for STARTTLS use \(starttls) (or check `port`)"
                    : ": the server does not complete the TLS handshake after STARTTLS"
            }
            return error(.tlsFailed, "the TLS handshake with \(target) failed (\(detail))\(hint)")
        case CURLE_USE_SSL_FAILED:
            return error(.starttlsNotOffered, "\(target) does not offer STARTTLS, and this mailbox demands it; use the implicit-TLS port (imaps 993, pops 995, smtp tls 465), or allow plain text explicitly (starttls = false / tls = \"none\") if the network is trusted", reply: handle.transcript.lines.last)
        case CURLE_LOGIN_DENIED:
            let who = user.map { " for user \"\($0)\"" } ?? ""
            if let bearer {
                // XOAUTH2/OAUTHBEARER: the server's reason is a base64 JSON challenge.
                let reason = SASLChallenge.oauthError(in: handle.transcript.lines).map { " (the server said: \($0))" } ?? ""
                return error(.loginRejected, "\(target) refused the OAuth token\(who) over \(bearer.saslName)\(reason): check that the token's account is `user`, that the application has the mail scopes and, for app-only access, that the mailbox grants it access", reply: reply)
            }
            return error(.loginRejected, "\(target) rejected the login\(who): check `user` and the password", reply: reply)
        case CURLE_WEIRD_SERVER_REPLY:
            let said = handle.transcript.lines.first.map { " (it said: \($0))" } ?? ""
            return error(.protocolViolation, "\(target) does not answer like a \(proto) server\(said): check `port`")
        case CURLE_GOT_NOTHING:
            return error(.connectionLost, "\(target) closed the connection without a word: check `port`, or the server's connection limits")
        case CURLE_RECV_ERROR, CURLE_SEND_ERROR:
            return error(.connectionLost, "the connection to \(target) broke: \(detail)")
        case CURLE_AUTH_ERROR, CURLE_REMOTE_ACCESS_DENIED:
            return error(.loginRejected, "\(target) rejected the login: \(detail)", reply: reply)
        default:
            if endpoint.serviceProtocol == .smtp, let reply, let replyCode = Int(reply.prefix(3)), replyCode >= 400 {
                return error(.commandRefused, "\(target) refused the session: \(detail)", reply: reply)
            }
            return error(.other, "talking to \(target) failed: \(detail) (libcurl error \(curlCode))", reply: reply)
        }
    }

    /// An untrusted certificate: say whose certificate it is, which takes a second handshake
    /// without verification and without credentials, only to read the certificate.
    static func certificateError(detail: String, endpoint: MailEndpoint, curlCode: Int) -> MailConnectionError {
        var presented = ""
        if let certificate = CertificateInspector.leafCertificate(of: endpoint) {
            presented = "; the server presented \"\(certificate.subject)\""
            if certificate.issuer != certificate.subject { presented += " issued by \"\(certificate.issuer)\"" } else { presented += " (self-signed)" }
            if let expiry = certificate.expiry { presented += ", valid until \(expiry)" }
        }
        let hint = endpoint.tls.caFile == nil
            ? "if it is your organisation's own CA, set ca_file to its PEM file"
            : "it is not signed by a CA in \(endpoint.tls.caFile!) nor the system's"
        return MailConnectionError(.certificateUntrusted, endpoint: endpoint.description,
                                   message: "the certificate of \(endpoint) is not trusted (\(detail))\(presented): \(hint)",
                                   curlCode: curlCode)
    }
}

/// Reads the certificate a server presents, for error messages only.
enum CertificateInspector {
    struct Certificate {
        var subject: String
        var issuer: String
        var expiry: String?
    }

    static func leafCertificate(of endpoint: MailEndpoint) -> Certificate? {
        guard let handle = CurlHandle() else { return nil }
        var probe = endpoint
        probe.tls.verify = false
        // No credentials are set on this handle: nothing is sent to a server we do not trust.
        MailSession.configure(handle, for: probe, ehloName: "localhost")
        handle.set(CURLOPT_CERTINFO, 1)
        _ = handle.perform()
        guard let leaf = handle.certificates.first else { return nil }
        func field(_ name: String) -> String? {
            leaf.first { $0.hasPrefix(name + ":") }.map { String($0.dropFirst(name.count + 1)) }
        }
        guard let subject = field("Subject") else { return nil }
        return Certificate(subject: subject, issuer: field("Issuer") ?? "unknown", expiry: field("Expire date"))
    }
}
