/* The headers bindgen reads: llama.h and the ggml headers a caller of the prebuilt libraries
 * needs (backend loading, CPU backend, allocators, optimizer, RPC, GGUF). */
#include "llama.h"
#include "ggml.h"
#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "ggml-cpu.h"
#include "ggml-opt.h"
#include "ggml-rpc.h"
#include "gguf.h"
