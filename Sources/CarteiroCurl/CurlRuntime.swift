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
