// Typed wrappers for libcurl's variadic entry points: Swift cannot call
// curl_easy_setopt / curl_easy_getinfo directly.
#ifndef CARTEIRO_CURL_SHIM_H
#define CARTEIRO_CURL_SHIM_H

#include <curl/curl.h>

typedef size_t (*carteiro_curl_write_cb)(char *data, size_t size, size_t nmemb, void *userdata);
typedef int (*carteiro_curl_debug_cb)(CURL *handle, curl_infotype type, char *data, size_t size, void *userdata);
typedef int (*carteiro_curl_xferinfo_cb)(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow);

CURLcode carteiro_curl_setopt_long(CURL *handle, CURLoption option, long value);
CURLcode carteiro_curl_setopt_string(CURL *handle, CURLoption option, const char *value);
CURLcode carteiro_curl_setopt_pointer(CURL *handle, CURLoption option, void *value);
CURLcode carteiro_curl_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value);
CURLcode carteiro_curl_setopt_write_function(CURL *handle, CURLoption option, carteiro_curl_write_cb value);
/* A response body collected in memory, at most `limit` bytes (more aborts the transfer). */
typedef struct carteiro_body {
    char *data;
    size_t length;
    size_t limit;
    int overflow;
} carteiro_body;
CURLcode carteiro_curl_collect_body(CURL *handle, carteiro_body *body);
void carteiro_body_free(carteiro_body *body);
/* The response's header lines collected the same way (CURLOPT_HEADERFUNCTION). */
CURLcode carteiro_curl_collect_headers(CURL *handle, carteiro_body *body);
/* A write callback that discards the response body. */
CURLcode carteiro_curl_discard_body(CURL *handle);
CURLcode carteiro_curl_setopt_debug_function(CURL *handle, carteiro_curl_debug_cb value);
/* A progress callback (CURLOPT_XFERINFOFUNCTION) with its data; returning non-zero aborts. */
CURLcode carteiro_curl_setopt_xferinfo_function(CURL *handle, carteiro_curl_xferinfo_cb value, void *userdata);

CURLcode carteiro_curl_getinfo_long(CURL *handle, CURLINFO info, long *value);
CURLcode carteiro_curl_getinfo_string(CURL *handle, CURLINFO info, const char **value);
CURLcode carteiro_curl_getinfo_socket(CURL *handle, curl_socket_t *value);
CURLcode carteiro_curl_getinfo_certinfo(CURL *handle, struct curl_certinfo **value);

/* curl_global_init(CURL_GLOBAL_ALL): the flags are a macro expression Swift cannot import. */
CURLcode carteiro_curl_global_init(void);

/* A share of TLS sessions (thread-safe), for the connections to one server. */
CURLSH *carteiro_curl_tls_share_new(void);
CURLcode carteiro_curl_setopt_share(CURL *handle, CURLSH *share);
/* A share of connections, TLS sessions and DNS answers (thread-safe): the HTTP requests of one
 * client reuse each other's connections, from any thread. */
CURLSH *carteiro_curl_connection_share_new(void);
/* A handle's view of its connection's TLS: the OpenSSL SSL, once the handshake is done. */
typedef struct carteiro_tls_slot {
    void *ssl;
} carteiro_tls_slot;
/* How each TLS context libcurl makes for the handle is set up: OpenSSL frees a connection's
 * buffers while it is idle (SSL_MODE_RELEASE_BUFFERS), and `slot` (kept alive as long as the
 * handle) learns the connection's SSL when the handshake is done. */
CURLcode carteiro_curl_tls_context(CURL *handle, carteiro_tls_slot *slot);
/* After the login: OpenSSL reads ahead, into a buffer of `buffer` bytes (0: its default).
 * 0 when the slot knows no SSL (not OpenSSL, or no handshake). */
int carteiro_tls_read_ahead(carteiro_tls_slot *slot, size_t buffer);

#endif
