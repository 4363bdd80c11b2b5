#ifndef CARTEIRO_BYTE_SEARCH_H
#define CARTEIRO_BYTE_SEARCH_H
#include <stddef.h>

/* The first `needle` in `haystack`, or NULL: memmem(3), sixteen positions at a time on x86-64. */
void *carteiro_memmem(const void *haystack, size_t haystack_length, const void *needle, size_t needle_length);

/* The length of the longest prefix of `bytes` that needs no JSON escape (see bytes.c). */
size_t carteiro_json_plain_prefix(const unsigned char *bytes, size_t count);

/* Whether `bytes` are well-formed UTF-8 (RFC 3629): 1 or 0. Sixteen bytes at a time where the
 * CPU has SSSE3; `carteiro_utf8_valid_plain` is the byte-by-byte way, for tests. */
int carteiro_utf8_valid(const unsigned char *bytes, size_t count);
int carteiro_utf8_valid_plain(const unsigned char *bytes, size_t count);

#endif
