#ifndef FSCONF_CPCRE2_SHIM_H
#define FSCONF_CPCRE2_SHIM_H
/* PCRE2's API names are macros (pcre2_compile -> pcre2_compile_8), which Swift
 * cannot import; these inline wrappers give Swift plain functions. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <stddef.h>
#include <stdint.h>
#include <pcre2.h>

/* Compiles `pattern` (length bytes) with `options` and frees the result.
 * Returns 1 when it compiles; otherwise 0 with the error message in `message`. */
static inline int fsconf_pcre2_compiles(const char *pattern, size_t length, uint32_t options,
                                        char *message, size_t message_size, size_t *error_offset) {
    int code = 0;
    PCRE2_SIZE offset = 0;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, length, options, &code, &offset, NULL);
    if (re) {
        pcre2_code_free(re);
        return 1;
    }
    if (message && message_size > 0) {
        if (pcre2_get_error_message(code, (PCRE2_UCHAR *)message, message_size) < 0) message[0] = '\0';
    }
    if (error_offset) *error_offset = (size_t)offset;
    return 0;
}

static inline uint32_t fsconf_pcre2_caseless(void) { return PCRE2_CASELESS; }
static inline uint32_t fsconf_pcre2_dotall(void) { return PCRE2_DOTALL; }
#endif
