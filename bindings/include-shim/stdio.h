/* llama-prebuilt's stand-in for <stdio.h>, read by bindgen only where the target's C library
 * headers are missing (a macOS or Windows target built on Linux: see docs/design-notes.md).
 * llama.h, ggml.h and gguf.h need nothing from it but the type FILE, and only behind a
 * pointer; the bindings declare FILE opaque themselves (build.rs blocklists it), so what it
 * stands for here never reaches them. */
#ifndef LLAMA_PREBUILT_SHIM_STDIO_H
#define LLAMA_PREBUILT_SHIM_STDIO_H
typedef struct shim_opaque_FILE FILE;
#endif
