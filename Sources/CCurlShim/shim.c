#include <stdlib.h>
#include <string.h>
#include "CCurlShim.h"

CURLcode carteiro_curl_setopt_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}
CURLcode carteiro_curl_setopt_string(CURL *handle, CURLoption option, const char *value) {
    return curl_easy_setopt(handle, option, value);
}
CURLcode carteiro_curl_setopt_pointer(CURL *handle, CURLoption option, void *value) {
    return curl_easy_setopt(handle, option, value);
}
CURLcode carteiro_curl_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value) {
    return curl_easy_setopt(handle, option, value);
}
CURLcode carteiro_curl_setopt_write_function(CURL *handle, CURLoption option, carteiro_curl_write_cb value) {
    return curl_easy_setopt(handle, option, value);
}
CURLcode carteiro_curl_setopt_debug_function(CURL *handle, carteiro_curl_debug_cb value) {
    return curl_easy_setopt(handle, CURLOPT_DEBUGFUNCTION, value);
}
CURLcode carteiro_curl_setopt_xferinfo_function(CURL *handle, carteiro_curl_xferinfo_cb value, void *userdata) {
    CURLcode code = curl_easy_setopt(handle, CURLOPT_XFERINFOFUNCTION, value);
    if (code == CURLE_OK) code = curl_easy_setopt(handle, CURLOPT_XFERINFODATA, userdata);
    if (code == CURLE_OK) code = curl_easy_setopt(handle, CURLOPT_NOPROGRESS, 0L);
    return code;
}
CURLcode carteiro_curl_getinfo_long(CURL *handle, CURLINFO info, long *value) {
    return curl_easy_getinfo(handle, info, value);
}
CURLcode carteiro_curl_getinfo_string(CURL *handle, CURLINFO info, const char **value) {
    return curl_easy_getinfo(handle, info, value);
}
CURLcode carteiro_curl_getinfo_socket(CURL *handle, curl_socket_t *value) {
    return curl_easy_getinfo(handle, CURLINFO_ACTIVESOCKET, value);
}
CURLcode carteiro_curl_getinfo_certinfo(CURL *handle, struct curl_certinfo **value) {
    return curl_easy_getinfo(handle, CURLINFO_CERTINFO, value);
}
CURLcode carteiro_curl_global_init(void) {
    return curl_global_init(CURL_GLOBAL_ALL);
}
static size_t carteiro_discard(char *data, size_t size, size_t nmemb, void *userdata) {
    (void)data; (void)userdata;
    return size * nmemb;
}
static size_t carteiro_collect(char *data, size_t size, size_t nmemb, void *userdata) {
    carteiro_body *body = userdata;
    size_t count = size * nmemb;
    if (count > body->limit - body->length) {
        body->overflow = 1;
        return 0;
    }
    char *grown = realloc(body->data, body->length + count + 1);
    if (grown == NULL) return 0;
    memcpy(grown + body->length, data, count);
    body->data = grown;
    body->length += count;
    return count;
}

CURLcode carteiro_curl_collect_body(CURL *handle, carteiro_body *body) {
    CURLcode code = curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, carteiro_collect);
    if (code != CURLE_OK) return code;
    return curl_easy_setopt(handle, CURLOPT_WRITEDATA, body);
}

CURLcode carteiro_curl_collect_headers(CURL *handle, carteiro_body *body) {
    CURLcode code = curl_easy_setopt(handle, CURLOPT_HEADERFUNCTION, carteiro_collect);
    if (code != CURLE_OK) return code;
    return curl_easy_setopt(handle, CURLOPT_HEADERDATA, body);
}

void carteiro_body_free(carteiro_body *body) {
    free(body->data);
    body->data = NULL;
    body->length = 0;
}

CURLcode carteiro_curl_discard_body(CURL *handle) {
    return curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, carteiro_discard);
}

/* TLS sessions shared between connections (CURL_LOCK_DATA_SSL_SESSION): a reconnect, a POP3
 * poll or a new IDLE connection resumes the server's session instead of a full handshake.
 * One share per server (libcurl keeps 8 sessions in a share); each has its own locks. */
#include <pthread.h>
#include <openssl/ssl.h>

typedef struct carteiro_share_locks {
    pthread_mutex_t mutex[CURL_LOCK_DATA_LAST];
} carteiro_share_locks;

static void carteiro_share_lock(CURL *handle, curl_lock_data data, curl_lock_access access, void *userptr) {
    (void)handle; (void)access;
    carteiro_share_locks *locks = userptr;
    if (data >= 0 && data < CURL_LOCK_DATA_LAST) pthread_mutex_lock(&locks->mutex[data]);
}
static void carteiro_share_unlock(CURL *handle, curl_lock_data data, void *userptr) {
    (void)handle;
    carteiro_share_locks *locks = userptr;
    if (data >= 0 && data < CURL_LOCK_DATA_LAST) pthread_mutex_unlock(&locks->mutex[data]);
}

CURLSH *carteiro_curl_tls_share_new(void) {
    carteiro_share_locks *locks = calloc(1, sizeof *locks);
    if (!locks) return NULL;
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++) pthread_mutex_init(&locks->mutex[i], NULL);
    CURLSH *share = curl_share_init();
    if (!share) { free(locks); return NULL; }
    if (curl_share_setopt(share, CURLSHOPT_USERDATA, (void *)locks) != CURLSHE_OK
        || curl_share_setopt(share, CURLSHOPT_LOCKFUNC, carteiro_share_lock) != CURLSHE_OK
        || curl_share_setopt(share, CURLSHOPT_UNLOCKFUNC, carteiro_share_unlock) != CURLSHE_OK
        || curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK) {
        curl_share_cleanup(share);
        free(locks);
        return NULL;
    }
    return share;
}

CURLSH *carteiro_curl_connection_share_new(void) {
    CURLSH *share = carteiro_curl_tls_share_new();
    if (!share) return NULL;
    if (curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT) != CURLSHE_OK
        || curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK) {
        curl_share_cleanup(share);
        return NULL;
    }
    return share;
}

CURLcode carteiro_curl_setopt_share(CURL *handle, CURLSH *share) {
    return curl_easy_setopt(handle, CURLOPT_SHARE, share);
}

/* Where a connection's TLS context leads to the handle's slot (its SSL, once the handshake
 * is done): an index of OpenSSL's "extra data", taken once. */
static int carteiro_slot_index = -1;
static pthread_once_t carteiro_slot_once = PTHREAD_ONCE_INIT;
static void carteiro_slot_init(void) {
    carteiro_slot_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

static void carteiro_tls_info(const SSL *ssl, int where, int ret) {
    (void)ret;
    if (!(where & SSL_CB_HANDSHAKE_DONE)) return;
    carteiro_tls_slot *slot = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), carteiro_slot_index);
    if (slot) slot->ssl = (void *)ssl;
}

/* OpenSSL keeps a connection's read and write buffers (about 34 KB) only while it uses them:
 * a thousand connections waiting in IDLE need none. libcurl makes a TLS context for each
 * connection; the slot learns the connection's SSL when the handshake is done. */
static CURLcode carteiro_ssl_ctx(CURL *handle, void *ssl_ctx, void *userptr) {
    (void)handle;
    SSL_CTX_set_mode((SSL_CTX *)ssl_ctx, SSL_MODE_RELEASE_BUFFERS);
    pthread_once(&carteiro_slot_once, carteiro_slot_init);
    if (userptr && carteiro_slot_index >= 0 && SSL_CTX_set_ex_data((SSL_CTX *)ssl_ctx, carteiro_slot_index, userptr) == 1)
        SSL_CTX_set_info_callback((SSL_CTX *)ssl_ctx, carteiro_tls_info);
    return CURLE_OK;
}

CURLcode carteiro_curl_tls_context(CURL *handle, carteiro_tls_slot *slot) {
    CURLcode code = curl_easy_setopt(handle, CURLOPT_SSL_CTX_DATA, (void *)slot);
    if (code != CURLE_OK) return code;
    return curl_easy_setopt(handle, CURLOPT_SSL_CTX_FUNCTION, carteiro_ssl_ctx);
}

/* Once libcurl has finished the login, Carteiro alone reads the connection: OpenSSL may then
 * read ahead (as many bytes as the socket holds, up to its buffer) instead of each record's
 * 5-byte header and then its body, two system calls a record. Not before: libcurl's own
 * reader asks SSL_pending(), which does not count records read ahead, and would wait on the
 * socket for one already read. Carteiro reads until OpenSSL wants the socket before it waits. */
int carteiro_tls_read_ahead(carteiro_tls_slot *slot, size_t buffer) {
    if (!slot || !slot->ssl) return 0;
    SSL *ssl = (SSL *)slot->ssl;
    if (buffer > 0) SSL_set_default_read_buffer_len(ssl, buffer);
    SSL_set_read_ahead(ssl, 1);
    /* libcurl's trace of each record (for its verbose output, which Carteiro reads only
     * during the login): thousands of formatted lines for a large fetch. */
    SSL_set_msg_callback(ssl, NULL);
    return 1;
}
