/*
 * The C baseline of `cargo xtask bench embed`: batch embeddings written straight against
 * llama.h, packed the way llama-prebuilt's `Embedder` packs them.
 *
 *   embed_bench MODEL TEXTS_FILE N_SEQ_MAX N_UBATCH THREADS [--lib-dir DIR]
 *
 * TEXTS_FILE holds one text per line. Every text is tokenized first (BOS added, as
 * `llama_tokenize(..., add_special = true, parse_special = false)`), then the timed region
 * embeds them all: texts are taken in order and packed into one batch while it has fewer than
 * N_SEQ_MAX sequences and the next text still fits in N_UBATCH tokens; for each batch the
 * memory is cleared, the batch decoded (every token an output), and each sequence's pooled
 * (mean) embedding copied out with llama_get_embeddings_seq. The context: n_ctx = n_batch =
 * n_ubatch = N_UBATCH, n_seq_max = N_SEQ_MAX, kv_unified, embeddings on, mean pooling.
 *
 * stdout: `texts <n>`, `tokens <n>`, `decodes <n>`, `checksum <sum of every embedding value>`.
 * stderr: `texts_s <texts per second of the timed region>`.
 */
#define _POSIX_C_SOURCE 199309L

#include "llama.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void log_cb(enum ggml_log_level level, const char * text, void * user_data) {
    (void) user_data;
    if (level == GGML_LOG_LEVEL_ERROR) {
        fputs(text, stderr);
    }
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

_Noreturn static void die(const char * msg) {
    fprintf(stderr, "error: %s\n", msg);
    exit(1);
}

int main(int argc, char ** argv) {
    const char * lib_dir = NULL;
    const char * pos[5];
    int n_pos = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--lib-dir") == 0 && i + 1 < argc) {
            lib_dir = argv[++i];
        } else if (n_pos < 5) {
            pos[n_pos++] = argv[i];
        } else {
            die("too many arguments");
        }
    }
    if (n_pos != 5) {
        fprintf(stderr, "usage: %s MODEL TEXTS_FILE N_SEQ_MAX N_UBATCH THREADS [--lib-dir DIR]\n", argv[0]);
        return 2;
    }
    const int n_seq_max = atoi(pos[2]);
    const int n_ubatch = atoi(pos[3]);
    const int n_threads = atoi(pos[4]);

    llama_log_set(log_cb, NULL);
    if (lib_dir) {
        ggml_backend_load_all_from_path(lib_dir);
    } else {
        ggml_backend_load_all();
    }
    llama_backend_init();
    if (ggml_backend_dev_count() == 0) {
        die("no ggml backend loaded (wrong --lib-dir?)");
    }

    struct llama_model_params mparams = llama_model_default_params();
    struct llama_model * model = llama_model_load_from_file(pos[0], mparams);
    if (!model) {
        die("cannot load the model");
    }
    const struct llama_vocab * vocab = llama_model_get_vocab(model);

    /* Read and tokenize the texts. */
    FILE * f = fopen(pos[1], "rb");
    if (!f) {
        die("cannot open the texts file");
    }
    int cap = 64, n_texts = 0;
    llama_token ** toks = malloc(sizeof(*toks) * cap);
    int * lens = malloc(sizeof(*lens) * cap);
    char line[1 << 16];
    while (fgets(line, sizeof(line), f)) {
        size_t len = strcspn(line, "\n");
        line[len] = 0;
        if (n_texts == cap) {
            cap *= 2;
            toks = realloc(toks, sizeof(*toks) * cap);
            lens = realloc(lens, sizeof(*lens) * cap);
        }
        llama_token * t = malloc(sizeof(*t) * (len + 8));
        int n = llama_tokenize(vocab, line, (int32_t) len, t, (int32_t) (len + 8), true, false);
        if (n <= 0 || n > n_ubatch) {
            die("a text has no tokens or more than N_UBATCH");
        }
        toks[n_texts] = t;
        lens[n_texts] = n;
        n_texts++;
    }
    fclose(f);

    struct llama_context_params cparams = llama_context_default_params();
    cparams.n_ctx = (uint32_t) n_ubatch;
    cparams.n_batch = (uint32_t) n_ubatch;
    cparams.n_ubatch = (uint32_t) n_ubatch;
    cparams.n_seq_max = (uint32_t) n_seq_max;
    cparams.n_threads = n_threads;
    cparams.n_threads_batch = n_threads;
    cparams.embeddings = true;
    cparams.pooling_type = LLAMA_POOLING_TYPE_MEAN;
    cparams.kv_unified = true;
    struct llama_context * ctx = llama_init_from_model(model, cparams);
    if (!ctx) {
        die("cannot create the context");
    }
    const int n_embd = llama_model_n_embd_out(model);
    float * out = malloc(sizeof(float) * (size_t) n_embd * (size_t) n_texts);
    struct llama_batch batch = llama_batch_init(n_ubatch, 0, 1);

    long total_tokens = 0;
    int decodes = 0;
    const double t0 = now_s();
    int start = 0;
    while (start < n_texts) {
        int end = start, n_tok = 0;
        while (end < n_texts && end - start < n_seq_max && n_tok + lens[end] <= n_ubatch) {
            n_tok += lens[end];
            end++;
        }
        batch.n_tokens = 0;
        for (int s = start; s < end; s++) {
            for (int p = 0; p < lens[s]; p++) {
                const int i = batch.n_tokens++;
                batch.token[i] = toks[s][p];
                batch.pos[i] = p;
                batch.n_seq_id[i] = 1;
                batch.seq_id[i][0] = s - start;
                batch.logits[i] = 1;
            }
        }
        llama_memory_clear(llama_get_memory(ctx), true);
        if (llama_decode(ctx, batch) != 0) {
            die("llama_decode failed");
        }
        for (int s = start; s < end; s++) {
            const float * e = llama_get_embeddings_seq(ctx, s - start);
            if (!e) {
                die("no pooled embedding");
            }
            memcpy(out + (size_t) s * n_embd, e, sizeof(float) * n_embd);
        }
        total_tokens += n_tok;
        decodes++;
        start = end;
    }
    const double t = now_s() - t0;

    double checksum = 0.0;
    for (size_t i = 0; i < (size_t) n_embd * (size_t) n_texts; i++) {
        checksum += out[i];
    }
    printf("texts %d\ntokens %ld\ndecodes %d\nchecksum %.6f\n", n_texts, total_tokens, decodes, checksum);
    fprintf(stderr, "texts_s %.3f\n", (double) n_texts / t);

    llama_batch_free(batch);
    free(out);
    for (int i = 0; i < n_texts; i++) {
        free(toks[i]);
    }
    free(toks);
    free(lens);
    llama_free(ctx);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
