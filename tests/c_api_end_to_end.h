/* c_api_end_to_end.h — the checks c_api_end_to_end.c (plain C) offers the GoogleTest side. */
#ifndef PORTA_TESTS_C_API_END_TO_END_H
#define PORTA_TESTS_C_API_END_TO_END_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { C_API_CHECK_PASSED = 0, C_API_CHECK_FAILED = 1, C_API_CHECK_UNSUPPORTED = 2 };

/* Each runs on the named device with inputs drawn from `seed` and writes what it found
 * into text (capacity bytes). */
int c_api_check_matmul(const char* device_name, uint64_t seed, char* text, size_t capacity);
int c_api_check_attention(const char* device_name, uint64_t seed, char* text, size_t capacity);

#ifdef __cplusplus
}
#endif

#endif
