/* llama-prebuilt's stand-in for <stddef.h> (see stdio.h here). The types come from clang's
 * predefined macros, which follow --target: size_t is 64-bit on every supported target, and
 * bindgen maps it to usize whatever its C spelling (`unsigned long` or `unsigned long long`). */
#ifndef LLAMA_PREBUILT_SHIM_STDDEF_H
#define LLAMA_PREBUILT_SHIM_STDDEF_H
typedef __SIZE_TYPE__ size_t;
typedef __PTRDIFF_TYPE__ ptrdiff_t;
#define NULL ((void *)0)
#define offsetof(type, member) __builtin_offsetof(type, member)
#endif
