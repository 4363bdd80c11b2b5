#if canImport(Glibc)
import Glibc
#endif
import CCurl
import CCurlShim

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
    nonisolated(unsafe) private static var shares: [String: UnsafeMutableRawPointer] = [:]
    private static let lock = Mutex()

    /// The share for `endpoint`'s server; nil when libcurl cannot make one (the connection
    /// then does a full handshake, as it would without the cache).
    static func share(for endpoint: MailEndpoint) -> UnsafeMutableRawPointer? {
        let key = "\(endpoint.scheme)://\(endpoint.urlHost):\(endpoint.port)"
        return lock.withLock { () -> UnsafeMutableRawPointer? in
            if let share = shares[key] { return share }
            guard let share = carteiro_curl_tls_share_new() else { return nil }
            shares[key] = share
            return share
        }
    }

    /// A pthread mutex (CarteiroCurl does not import Foundation for NSLock).
    final class Mutex: @unchecked Sendable {
        private var mutex = pthread_mutex_t()
        init() { pthread_mutex_init(&mutex, nil) }
        func withLock<T>(_ body: () -> T) -> T {
            pthread_mutex_lock(&mutex)
            defer { pthread_mutex_unlock(&mutex) }
            return body()
        }
    }
}
