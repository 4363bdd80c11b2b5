#ifndef CARTEIRO_BYTE_SEARCH_H
#define CARTEIRO_BYTE_SEARCH_H
#include <stddef.h>

/* glibc's memmem(3), a GNU extension Swift's Glibc module does not show: the first `needle`
 * in `haystack`, or NULL. */
void *carteiro_memmem(const void *haystack, size_t haystack_length, const void *needle, size_t needle_length);

#endif
