#if canImport(Glibc)
import Glibc
#endif
import CCurl
import CCurlShim
import Synchronization

/// libcurl's process-wide set-up, done once before the first handle: `curl_global_init` is not
/// thread-safe, and a write to a closed socket must not kill the daemon with SIGPIPE.
enum CurlRuntime {
    static let initialized: Bool = {
        signal(SIGPIPE, SIG_IGN)
        return carteiro_curl_global_init() == CURLE_OK
    }()

    static var versionDescription: String {
        guard let text = curl_version() else { return "libcurl" }
        return String(cString: text)
    }
}

/// TLS sessions kept between connections, one libcurl share per server (host, port and how TLS
/// is begun): a reconnect, a POP3 poll or a new IDLE connection to a server seen before resumes
/// its session (one round trip, no certificate exchange) instead of a full handshake. Shares
/// live as long as the process; there is one per server configured, so they stay few.
enum TLSSessionCache {
    /// Each server's share, by its address (a pointer's bits: the shares are never freed).
    private static let shares = Mutex<[String: UInt]>([:])

    /// The share for `endpoint`'s server; nil when libcurl cannot make one (the connection
    /// then does a full handshake, as it would without the cache).
    static func share(for endpoint: MailEndpoint) -> UnsafeMutableRawPointer? {
        let key = "\(endpoint.scheme)://\(endpoint.urlHost):\(endpoint.port)"
        let address = shares.withLock { shares -> UInt? in
            if let share = shares[key] { return share }
            guard let share = carteiro_curl_tls_share_new() else { return nil }
            shares[key] = UInt(bitPattern: share)
            return UInt(bitPattern: share)
        }
        return address.flatMap { UnsafeMutableRawPointer(bitPattern: $0) }
    }
}
