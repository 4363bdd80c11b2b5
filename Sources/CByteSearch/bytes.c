#define _GNU_SOURCE
#include <string.h>
#include "CByteSearch.h"
#if defined(__x86_64__)
#include <emmintrin.h>
#endif

/* Sixteen positions at a time (SSE2, in every x86-64): where the needle's first two bytes
 * stand side by side, the rest is compared. A MIME boundary's "\n-" is rare in text, where
 * glibc's memmem stops at every line feed. Elsewhere, memmem. */
void *carteiro_memmem(const void *haystack, size_t haystack_length, const void *needle, size_t needle_length) {
#if defined(__x86_64__)
    const unsigned char *hay = haystack, *pin = needle;
    if (needle_length < 2 || haystack_length < needle_length) {
        return memmem(haystack, haystack_length, needle, needle_length);
    }
    const __m128i first = _mm_set1_epi8((char)pin[0]), second = _mm_set1_epi8((char)pin[1]);
    size_t i = 0;
    /* Each step reads hay[i .. i+16]: the 16 candidates and the byte after the last one. */
    while (i + 17 <= haystack_length) {
        __m128i here = _mm_loadu_si128((const __m128i *)(hay + i));
        __m128i next = _mm_loadu_si128((const __m128i *)(hay + i + 1));
        unsigned mask = (unsigned)_mm_movemask_epi8(_mm_and_si128(_mm_cmpeq_epi8(here, first), _mm_cmpeq_epi8(next, second)));
        while (mask != 0) {
            size_t at = i + (size_t)__builtin_ctz(mask);
            if (at + needle_length > haystack_length) return NULL;
            if (memcmp(hay + at + 2, pin + 2, needle_length - 2) == 0) return (void *)(hay + at);
            mask &= mask - 1;
        }
        i += 16;
    }
    for (; i + needle_length <= haystack_length; i++) {
        if (hay[i] == pin[0] && memcmp(hay + i, pin, needle_length) == 0) return (void *)(hay + i);
    }
    return NULL;
#else
    return memmem(haystack, haystack_length, needle, needle_length);
#endif
}

/* How many bytes from the start need no JSON escape: none below 0x20, '"', '\\', DEL, or 0xE2
 * (the lead byte of U+2028 and U+2029, which are escaped for JavaScript). */
size_t carteiro_json_plain_prefix(const unsigned char *bytes, size_t count) {
    size_t i = 0;
#if defined(__x86_64__)
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'), del = _mm_set1_epi8(0x7F);
    const __m128i e2 = _mm_set1_epi8((char)0xE2), control = _mm_set1_epi8(0x1F);
    while (i + 16 <= count) {
        __m128i x = _mm_loadu_si128((const __m128i *)(bytes + i));
        __m128i low = _mm_cmpeq_epi8(_mm_min_epu8(x, control), x); /* x <= 0x1F, unsigned */
        __m128i special = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, backslash)),
                                       _mm_or_si128(_mm_cmpeq_epi8(x, del), _mm_cmpeq_epi8(x, e2)));
        unsigned mask = (unsigned)_mm_movemask_epi8(_mm_or_si128(low, special));
        if (mask != 0) return i + (size_t)__builtin_ctz(mask);
        i += 16;
    }
#endif
    for (; i < count; i++) {
        unsigned char c = bytes[i];
        if (c < 0x20 || c == '"' || c == '\\' || c == 0x7F || c == 0xE2) return i;
    }
    return count;
}
