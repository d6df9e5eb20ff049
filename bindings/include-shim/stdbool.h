/* llama-prebuilt's stand-in for <stdbool.h> (see stdio.h here): C's _Bool, one byte on every
 * target, which bindgen maps to Rust's bool. */
#ifndef LLAMA_PREBUILT_SHIM_STDBOOL_H
#define LLAMA_PREBUILT_SHIM_STDBOOL_H
#define bool _Bool
#define true 1
#define false 0
#endif
