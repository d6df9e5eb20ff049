/* llama-prebuilt's stand-in for <stdint.h> (see stdio.h here). The exact-width types come from
 * clang's predefined macros for --target (int64_t is `long` on LP64 Linux and macOS, `long long`
 * on LLP64 Windows); bindgen maps each by its name to i8..u64, as it does with a real libc. */
#ifndef LLAMA_PREBUILT_SHIM_STDINT_H
#define LLAMA_PREBUILT_SHIM_STDINT_H
typedef __INT8_TYPE__ int8_t;
typedef __INT16_TYPE__ int16_t;
typedef __INT32_TYPE__ int32_t;
typedef __INT64_TYPE__ int64_t;
typedef __UINT8_TYPE__ uint8_t;
typedef __UINT16_TYPE__ uint16_t;
typedef __UINT32_TYPE__ uint32_t;
typedef __UINT64_TYPE__ uint64_t;
typedef __INTPTR_TYPE__ intptr_t;
typedef __UINTPTR_TYPE__ uintptr_t;
#endif
