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

/* UTF-8 well-formedness (RFC 3629), byte by byte: the reference, and the way on machines
 * without SSSE3. */
static int utf8_valid_scalar(const unsigned char *bytes, size_t count) {
    size_t i = 0;
    while (i < count) {
        unsigned char lead = bytes[i];
        if (lead < 0x80) { i++; continue; }
        if (lead >= 0xC2 && lead <= 0xDF) {
            if (i + 1 >= count || (bytes[i + 1] & 0xC0) != 0x80) return 0;
            i += 2;
        } else if (lead >= 0xE0 && lead <= 0xEF) {
            if (i + 2 >= count || (bytes[i + 1] & 0xC0) != 0x80 || (bytes[i + 2] & 0xC0) != 0x80) return 0;
            if ((lead == 0xE0 && bytes[i + 1] < 0xA0) || (lead == 0xED && bytes[i + 1] >= 0xA0)) return 0;
            i += 3;
        } else if (lead >= 0xF0 && lead <= 0xF4) {
            if (i + 3 >= count || (bytes[i + 1] & 0xC0) != 0x80 || (bytes[i + 2] & 0xC0) != 0x80 || (bytes[i + 3] & 0xC0) != 0x80) return 0;
            if ((lead == 0xF0 && bytes[i + 1] < 0x90) || (lead == 0xF4 && bytes[i + 1] >= 0x90)) return 0;
            i += 4;
        } else {
            return 0;
        }
    }
    return 1;
}

#if defined(__x86_64__)
#include <tmmintrin.h>

/* Sixteen bytes at a time with three table lookups (pshufb) per block: the method of Keiser and
 * Lemire, "Validating UTF-8 in less than one instruction per byte" (2021), as simdjson has it.
 * Each pair of adjacent bytes is classified by the first byte's high and low nibbles and the
 * second byte's high nibble; a bit left in all three is an error. Third and fourth bytes of a
 * character are checked apart: exactly those must be continuations the pair check did not
 * expect. */
enum {
    TOO_SHORT = 1 << 0,      /* 11______ 0_______ and 11______ 11______ */
    TOO_LONG = 1 << 1,       /* 0_______ 10______ */
    OVERLONG_3 = 1 << 2,     /* 11100000 100_____ */
    TOO_LARGE = 1 << 3,      /* 11110100 1001____, 11110100 101_____, 11110101+ 1001____ … */
    SURROGATE = 1 << 4,      /* 11101101 101_____ */
    OVERLONG_2 = 1 << 5,     /* 1100000_ 10______ */
    TOO_LARGE_1000 = 1 << 6, /* 11110101+ 1000____ */
    OVERLONG_4 = 1 << 6,     /* 11110000 1000____ */
    TWO_CONTS = 1 << 7,      /* 10______ 10______ */
    CARRY = TOO_SHORT | TOO_LONG | TWO_CONTS,
};

__attribute__((target("ssse3")))
static inline __m128i high_nibbles(__m128i x) { return _mm_and_si128(_mm_srli_epi16(x, 4), _mm_set1_epi8(0x0F)); }

__attribute__((target("ssse3")))
static void utf8_block(__m128i input, __m128i *previous, __m128i *incomplete, __m128i *error) {
    if (_mm_movemask_epi8(input) == 0) {
        /* ASCII: only a character cut short by the block before can be wrong here. */
        *error = _mm_or_si128(*error, *incomplete);
        *incomplete = _mm_setzero_si128();
        *previous = input;
        return;
    }
    const __m128i byte_1_high_table = _mm_setr_epi8(
        TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG,
        (char)TWO_CONTS, (char)TWO_CONTS, (char)TWO_CONTS, (char)TWO_CONTS,
        TOO_SHORT | OVERLONG_2,
        TOO_SHORT,
        TOO_SHORT | OVERLONG_3 | SURROGATE,
        TOO_SHORT | TOO_LARGE | TOO_LARGE_1000 | OVERLONG_4);
    const __m128i byte_1_low_table = _mm_setr_epi8(
        (char)(CARRY | OVERLONG_3 | OVERLONG_2 | OVERLONG_4),
        (char)(CARRY | OVERLONG_2),
        (char)CARRY, (char)CARRY,
        (char)(CARRY | TOO_LARGE),
        (char)(CARRY | TOO_LARGE | TOO_LARGE_1000),
        (char)(CARRY | TOO_LARGE | TOO_LARGE_1000), (char)(CARRY | TOO_LARGE | TOO_LARGE_1000),
        (char)(CARRY | TOO_LARGE | TOO_LARGE_1000), (char)(CARRY | TOO_LARGE | TOO_LARGE_1000),
        (char)(CARRY | TOO_LARGE | TOO_LARGE_1000), (char)(CARRY | TOO_LARGE | TOO_LARGE_1000),
        (char)(CARRY | TOO_LARGE | TOO_LARGE_1000),
        (char)(CARRY | TOO_LARGE | TOO_LARGE_1000 | SURROGATE),
        (char)(CARRY | TOO_LARGE | TOO_LARGE_1000), (char)(CARRY | TOO_LARGE | TOO_LARGE_1000));
    const __m128i byte_2_high_table = _mm_setr_epi8(
        TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT,
        (char)(TOO_LONG | OVERLONG_2 | TWO_CONTS | OVERLONG_3 | TOO_LARGE_1000 | OVERLONG_4),
        (char)(TOO_LONG | OVERLONG_2 | TWO_CONTS | OVERLONG_3 | TOO_LARGE),
        (char)(TOO_LONG | OVERLONG_2 | TWO_CONTS | SURROGATE | TOO_LARGE),
        (char)(TOO_LONG | OVERLONG_2 | TWO_CONTS | SURROGATE | TOO_LARGE),
        TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT);
    __m128i prev1 = _mm_alignr_epi8(input, *previous, 15);
    __m128i special = _mm_and_si128(
        _mm_and_si128(_mm_shuffle_epi8(byte_1_high_table, high_nibbles(prev1)),
                      _mm_shuffle_epi8(byte_1_low_table, _mm_and_si128(prev1, _mm_set1_epi8(0x0F)))),
        _mm_shuffle_epi8(byte_2_high_table, high_nibbles(input)));
    /* The bytes two after a lead of three or more, and three after a lead of four: these must
     * be continuations, and are exactly where the pair check found two in a row. */
    __m128i prev2 = _mm_alignr_epi8(input, *previous, 14);
    __m128i prev3 = _mm_alignr_epi8(input, *previous, 13);
    __m128i third = _mm_subs_epu8(prev2, _mm_set1_epi8((char)(0xE0 - 0x80)));
    __m128i fourth = _mm_subs_epu8(prev3, _mm_set1_epi8((char)(0xF0 - 0x80)));
    __m128i must_continue = _mm_and_si128(_mm_or_si128(third, fourth), _mm_set1_epi8((char)0x80));
    *error = _mm_or_si128(*error, _mm_xor_si128(must_continue, special));
    /* A lead in the last three bytes whose character does not fit: cut short unless the next
     * block goes on with it (the next block's pair check sees it then). */
    const __m128i last_leads = _mm_setr_epi8((char)255, (char)255, (char)255, (char)255, (char)255, (char)255, (char)255, (char)255,
                                             (char)255, (char)255, (char)255, (char)255, (char)255, (char)(0xF0 - 1), (char)(0xE0 - 1), (char)(0xC0 - 1));
    *incomplete = _mm_subs_epu8(input, last_leads);
    *previous = input;
}

__attribute__((target("ssse3")))
static int utf8_valid_ssse3(const unsigned char *bytes, size_t count) {
    __m128i previous = _mm_setzero_si128(), incomplete = _mm_setzero_si128(), error = _mm_setzero_si128();
    size_t i = 0;
    for (; i + 16 <= count; i += 16) {
        utf8_block(_mm_loadu_si128((const __m128i *)(bytes + i)), &previous, &incomplete, &error);
    }
    if (i < count) {
        /* The tail, padded with NULs (ASCII): a character cut short by the end meets them. */
        unsigned char tail[16] = {0};
        memcpy(tail, bytes + i, count - i);
        utf8_block(_mm_loadu_si128((const __m128i *)tail), &previous, &incomplete, &error);
    }
    error = _mm_or_si128(error, incomplete);
    return _mm_movemask_epi8(_mm_cmpeq_epi8(error, _mm_setzero_si128())) == 0xFFFF;
}
#endif

int carteiro_utf8_valid(const unsigned char *bytes, size_t count) {
#if defined(__x86_64__)
    /* Asked once; threads that race here store the same answer. */
    static int ssse3 = -1;
    int known = __atomic_load_n(&ssse3, __ATOMIC_RELAXED);
    if (known < 0) {
        known = __builtin_cpu_supports("ssse3") ? 1 : 0;
        __atomic_store_n(&ssse3, known, __ATOMIC_RELAXED);
    }
    if (known) return utf8_valid_ssse3(bytes, count);
#endif
    return utf8_valid_scalar(bytes, count);
}

int carteiro_utf8_valid_plain(const unsigned char *bytes, size_t count) {
    return utf8_valid_scalar(bytes, count);
}
