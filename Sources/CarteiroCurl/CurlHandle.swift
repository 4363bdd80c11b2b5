#if canImport(Glibc)
import Glibc
#endif
import CCurl
import CarteiroConfig
import CCurlShim

/// One libcurl easy handle. Not thread-safe: one owner at a time, as libcurl requires.
final class CurlHandle {
    let raw: UnsafeMutableRawPointer
    let transcript = ServerTranscript()
    private var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
    private var retainedStrings: [UnsafeMutablePointer<CChar>] = []
    /// The connection's TLS as OpenSSL's callbacks saw it; freed after the handle (and with
    /// it the connection and its TLS context, which point here).
    let tlsSlot: UnsafeMutablePointer<carteiro_tls_slot> = {
        let slot = UnsafeMutablePointer<carteiro_tls_slot>.allocate(capacity: 1)
        slot.initialize(to: carteiro_tls_slot(ssl: nil))
        return slot
    }()

    /// nil only when libcurl cannot allocate a handle (out of memory).
    init?() {
        _ = CurlRuntime.initialized
        guard let handle = curl_easy_init() else { return nil }
        raw = handle
        set(CURLOPT_NOSIGNAL, 1)
        errorBuffer.withUnsafeMutableBufferPointer { buffer in
            _ = carteiro_curl_setopt_pointer(raw, CURLOPT_ERRORBUFFER, buffer.baseAddress)
        }
        // Server lines reach the transcript through the debug callback; client lines are dropped.
        _ = carteiro_curl_setopt_debug_function(raw) { _, type, data, size, userdata in
            guard type == CURLINFO_HEADER_IN || type == CURLINFO_TEXT, let data, let userdata else { return 0 }
            let transcript = Unmanaged<ServerTranscript>.fromOpaque(userdata).takeUnretainedValue()
            data.withMemoryRebound(to: UInt8.self, capacity: size) { pointer in
                let bytes = UnsafeBufferPointer(start: pointer, count: size)
                if type == CURLINFO_TEXT { transcript.note(bytes) } else { transcript.append(bytes) }
            }
            return 0
        }
        _ = carteiro_curl_setopt_pointer(raw, CURLOPT_DEBUGDATA, Unmanaged.passUnretained(transcript).toOpaque())
        set(CURLOPT_VERBOSE, 1)
        // Called while libcurl waits: a greeting in another protocol ends the wait at once.
        _ = carteiro_curl_setopt_xferinfo_function(raw, { userdata, _, _, _, _ in
            guard let userdata else { return 0 }
            return Unmanaged<ServerTranscript>.fromOpaque(userdata).takeUnretainedValue().shouldAbort ? 1 : 0
        }, Unmanaged.passUnretained(transcript).toOpaque())
    }

    deinit {
        curl_easy_cleanup(raw)
        for pointer in retainedStrings { free(pointer) }
        tlsSlot.deallocate()
    }

    func set(_ option: CURLoption, _ value: Int) {
        _ = carteiro_curl_setopt_long(raw, option, value)
    }

    func set(_ option: CURLoption, _ value: String) {
        // libcurl copies most strings, but not all of them in every version: keep ours alive.
        guard let copy = strdup(value) else { return }
        retainedStrings.append(copy)
        _ = carteiro_curl_setopt_string(raw, option, copy)
    }

    func perform() -> CURLcode {
        errorBuffer[0] = 0
        return curl_easy_perform(raw)
    }

    /// libcurl's detailed message for the last failure, or its generic text for `code`.
    /// The certificate checks of `tls`: a CA file trusted as well as the system's (CAINFO names
    /// it; CAPATH keeps the system's hashed directory), or no verification when asked.
    func apply(_ tls: TLSSettings) {
        if let caFile = tls.caFile {
            set(CURLOPT_CAINFO, caFile)
            set(CURLOPT_CAPATH, "/etc/ssl/certs")
        }
        if !tls.verify {
            set(CURLOPT_SSL_VERIFYPEER, 0)
            set(CURLOPT_SSL_VERIFYHOST, 0)
        }
    }

    func errorText(_ code: CURLcode) -> String {
        let detail = errorBuffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        if !detail.isEmpty { return detail }
        return String(cString: curl_easy_strerror(code))
    }

    func info(_ item: CURLINFO) -> Int {
        var value = 0
        _ = carteiro_curl_getinfo_long(raw, item, &value)
        return value
    }

    var activeSocket: Int32? {
        var socket: curl_socket_t = -1
        guard carteiro_curl_getinfo_socket(raw, &socket) == CURLE_OK, socket != -1 else { return nil }
        return socket
    }

    /// The certificate chain of the last TLS handshake (needs CURLOPT_CERTINFO = 1 before it).
    /// Each certificate is a list of "Field:value" strings.
    var certificates: [[String]] {
        var pointer: UnsafeMutablePointer<curl_certinfo>?
        guard carteiro_curl_getinfo_certinfo(raw, &pointer) == CURLE_OK, let info = pointer?.pointee, info.num_of_certs > 0,
              let chain = info.certinfo else { return [] }
        var result: [[String]] = []
        for index in 0..<Int(info.num_of_certs) {
            var fields: [String] = []
            var node = chain[index]
            while let current = node {
                if let data = current.pointee.data { fields.append(String(cString: data)) }
                node = current.pointee.next
            }
            result.append(fields)
        }
        return result
    }
}
