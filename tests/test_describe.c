/* Models from a description (spartan_model_create_from_text/_file, docs/models.md): the presets
 * written as descriptions build the same layers and train to the same losses, bit for bit, as the
 * presets; every malformed line is refused with its number and nothing is built; files are read
 * bounded, and a file's faults name the file. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "spartan/spartan.h"

static spartan_context *ctx;

static void setup(void) {
    spartan_status st = spartan_context_create(NULL, &ctx);
    ck_assert_msg(st == SPARTAN_OK, "context: %s", spartan_last_error(NULL));
}

static void teardown(void) {
    spartan_context_destroy(ctx);
    ctx = NULL;
}

#define OK(call) TH_OK(ctx, call)

static const char *const lenet5_text = "# lenet5, as the preset\n"
                                       "input 28x28x1\n"
                                       "conv 6 k=5 p=2   # stride 1 by default\n"
                                       "relu\n"
                                       "maxpool k=2\n"
                                       "\n"
                                       "conv 16 k=5 s=1 p=0\n"
                                       "relu\n"
                                       "maxpool k=2 s=2\n"
                                       "flatten\n"
                                       "fc 120\n"
                                       "relu\n"
                                       "fc 84\n"
                                       "relu\n"
                                       "fc 10\n";

static const char *const mlp_text = "input 28x28x1\r\nflatten\r\nfc 512\r\nrelu\r\n\tfc 512\r\n"
                                    "relu\r\nfc 10";

/* Same layers (kind, output shape, GEMM shape, parameters) and the same losses over 3 steps. */
static void same_as_preset(const char *text, const char *preset) {
    spartan_model *a = NULL, *b = NULL;
    OK(spartan_model_create_from_text(ctx, text, &a));
    OK(spartan_model_create_preset(ctx, preset, &b));
    ck_assert_uint_eq(spartan_model_layer_count(a), spartan_model_layer_count(b));
    spartan_train_config cfg = spartan_train_config_default();
    cfg.batch = 8;
    cfg.policy = SPARTAN_POLICY_DENSE;
    OK(spartan_model_prepare(a, &cfg));
    OK(spartan_model_prepare(b, &cfg));
    for (size_t i = 0; i < spartan_model_layer_count(a); i++) {
        spartan_layer_info x, y;
        OK(spartan_model_layer_info(a, i, &x));
        OK(spartan_model_layer_info(b, i, &y));
        ck_assert_str_eq(x.kind, y.kind);
        ck_assert_uint_eq(x.out_h * 1000000 + x.out_w * 1000 + x.out_c,
                          y.out_h * 1000000 + y.out_w * 1000 + y.out_c);
        ck_assert_uint_eq(x.m, y.m);
        ck_assert_uint_eq(x.n, y.n);
        ck_assert_uint_eq(x.k, y.k);
        ck_assert_uint_eq(x.params, y.params);
    }
    size_t n = cfg.batch * 28 * 28;
    float *img = malloc(n * sizeof *img), lab[8];
    ck_assert_ptr_nonnull(img);
    th_rng rng;
    th_rng_init(&rng, 42);
    for (size_t i = 0; i < n; i++) {
        float u = th_rng_uniform(&rng, 0.0f, 1.0f);
        img[i] = u < 0.5f ? 0.0f : u;
    }
    for (int i = 0; i < 8; i++) lab[i] = (float)(i % 10);
    for (int step = 0; step < 3; step++) {
        spartan_step_result ra, rb;
        OK(spartan_model_train_step(a, img, lab, cfg.batch, &ra));
        OK(spartan_model_train_step(b, img, lab, cfg.batch, &rb));
        ck_assert_msg(isfinite(ra.loss) && ra.loss == rb.loss, "step %d: loss %.9g, preset %.9g",
                      step, ra.loss, rb.loss);
    }
    free(img);
    spartan_model_destroy(a);
    spartan_model_destroy(b);
}

START_TEST(presets_as_descriptions) {
    same_as_preset(lenet5_text, "lenet5");
    same_as_preset(mlp_text, "mlp"); /* CRLF, a tab, no final newline */
}
END_TEST

/* spartan_model_describe gives a text that rebuilds the same model, and writes like snprintf. */
START_TEST(describe_round_trips) {
    for (const char *const *p = spartan_model_presets(); *p; p++) {
        spartan_model *a = NULL, *b = NULL;
        OK(spartan_model_create_preset(ctx, *p, &a));
        size_t len = spartan_model_describe(a, NULL, 0);
        char *text = malloc(len + 1), *again = malloc(len + 1), small[8];
        ck_assert_ptr_nonnull(text);
        ck_assert_ptr_nonnull(again);
        ck_assert_uint_eq(spartan_model_describe(a, text, len + 1), len);
        ck_assert_uint_eq(strlen(text), len);
        ck_assert_uint_eq(spartan_model_describe(a, small, sizeof small), len);
        ck_assert_uint_eq(strlen(small), sizeof small - 1);
        ck_assert(strncmp(small, text, sizeof small - 1) == 0);
        OK(spartan_model_create_from_text(ctx, text, &b));
        ck_assert_uint_eq(spartan_model_describe(b, again, len + 1), len);
        ck_assert_str_eq(again, text);
        ck_assert_uint_eq(spartan_model_layer_count(a), spartan_model_layer_count(b));
        free(text);
        free(again);
        spartan_model_destroy(a);
        spartan_model_destroy(b);
    }
    spartan_model *d = NULL;
    OK(spartan_model_create_from_text(ctx,
                                      "input 9x7x3\nconv 4 k=3 s=2 p=1\ndropout p=0.3\n"
                                      "maxpool k=3 s=1\nfc 5\n",
                                      &d));
    char text[256];
    spartan_model_describe(d, text, sizeof text);
    ck_assert_str_eq(text, "input 9x7x3\nconv 4 k=3 s=2 p=1\ndropout p=0.300000012\n"
                           "maxpool k=3 s=1\nfc 5\n");
    spartan_model_destroy(d);
}
END_TEST

/* Each malformed description: INVALID_ARGUMENT, *out NULL, the line and the fault named. */
static const struct {
    const char *text, *message;
} bad[] = {
    {"", "line 1: no input line"},
    {"# nothing\n\n", "line 3: no input line"},
    {"fc 10\n", "line 1: the first line must be input HxWxC, not \"fc\""},
    {"input 28x28\nfc 10\n", "line 1: input 28x28: want HxWxC"},
    {"input 28x28x0\nfc 10\n", "line 1: input 28x28x0: \"0\" is not a whole number >= 1"},
    {"input 28xx28x1\nfc 10\n", "line 1: input 28xx28x1: want HxWxC"},
    {"input 28x28x1x\nfc 10\n", "line 1: input 28x28x1x: want HxWxC"},
    {"input 28x28x1 7\nfc 10\n", "line 1: input takes one value"},
    {"input 28x28x1\ninput 28x28x1\nfc 10\n", "line 2: a second input line"},
    {"input 28x28x1\nconv k=3\nfc 10\n", "line 2: conv: the first value is the output count"},
    {"input 28x28x1\nconv 8\nfc 10\n", "line 2: conv needs its kernel size: k=N"},
    {"input 28x28x1\nconv 8 k=3 q=1\nfc 10\n",
     "line 2: unknown option \"q\" (this layer takes: ksp)"},
    {"input 28x28x1\nconv 8 k=3 k=5\nfc 10\n", "line 2: option \"k\" given twice"},
    {"input 28x28x1\nconv 8 k=0\nfc 10\n", "line 2: k=0: want a whole number"},
    {"input 28x28x1\nconv 8 k=-3\nfc 10\n", "line 2: k=-3: want a whole number"},
    {"input 28x28x1\nconv 8 k=99999999999999999999\nfc 10\n", "line 2: k=99999999999999999999"},
    {"input 28x28x1\nconv 8 k3\nfc 10\n", "line 2: \"k3\" is not key=value"},
    {"input 28x28x1\nrelu 2\nfc 10\n", "line 2: relu takes no options"},
    {"input 28x28x1\nmaxpool s=2\nfc 10\n", "line 2: maxpool needs its window"},
    {"input 28x28x1\ndropout p=1\nfc 10\n", "line 2: dropout p=1: want a number in [0, 1)"},
    {"input 28x28x1\ndropout p=0.5x\nfc 10\n", "line 2: dropout p=0.5x"},
    {"input 28x28x1\nfc 10 20\n", "line 2: fc takes one value"},
    {"input 28x28x1\nfc 1.5\n", "line 2: fc: the first value is the output count"},
    {"input 28x28x1\n\n\nsoftmax\nfc 10\n", "line 4: unknown layer \"softmax\""},
    {"input 28x28x1\nfc 10\nrelu\n", "the last layer must be fc N"},
    {"input 28x28x1\nfc 64\nfc 10\ninput 28x28x1\n", "line 4: a second input line"},
    {"input 28x28x1\nrelu a b c d e f g h\nfc 10\n", "line 2: too many values"},
    {"input 28x28x1\navgpool s=2\nfc 10\n", "line 2: avgpool needs its window: k=N"},
    {"input 28x28x1\nglobalavgpool 2\nfc 10\n", "line 2: globalavgpool takes no options"},
    {"input 28x28x1\navgpool k=2 q=1\nfc 10\n",
     "line 2: unknown option \"q\" (this layer takes: ksp)"},
    {"input 4x4x1\navgpool k=2 p=2\nfc 10\n", "line 2: "},
};

START_TEST(malformed_lines_are_refused_with_their_number) {
    spartan_model *m = (spartan_model *)&m; /* not NULL: the call must clear it */
    spartan_status st = spartan_model_create_from_text(ctx, bad[_i].text, &m);
    ck_assert_int_eq(st, SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_null(m);
    const char *msg = spartan_last_error(ctx);
    ck_assert_msg(strstr(msg, bad[_i].message), "case %d: message \"%s\" lacks \"%s\"", _i, msg,
                  bad[_i].message);
}
END_TEST

/* A description whose layers do not fit its input is refused by the layer, with the line; the
 * bad calls are refused too. */
START_TEST(shapes_are_checked_with_their_line) {
    spartan_model *m = (spartan_model *)&m;
    ck_assert_int_eq(
        spartan_model_create_from_text(ctx, "input 4x4x1\nrelu\nconv 2 k=5\nfc 3\n", &m),
        SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_null(m);
    const char *msg = spartan_last_error(ctx);
    ck_assert_msg(strstr(msg, "line 3: ") && strstr(msg, "do not fit"), "%s", msg);
    ck_assert_int_eq(spartan_model_create_from_text(NULL, "input 1x1x1\nfc 2\n", &m),
                     SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(spartan_model_create_from_text(ctx, NULL, &m),
                     SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(spartan_model_create_from_file(ctx, "x", NULL),
                     SPARTAN_STATUS_INVALID_ARGUMENT);
}
END_TEST

START_TEST(files_are_read_bounded_and_named_in_errors) {
    char *dir = th_tempdir("describe");
    char *good = th_join(dir, "lenet5.model"), *wrong = th_join(dir, "wrong.model"),
         *fifo = th_join(dir, "fifo.model"), *link = th_join(dir, "zero.model"),
         *missing = th_join(dir, "missing.model"), *nul = th_join(dir, "nul.model");
    th_write_text(good, lenet5_text);
    th_write_text(wrong, "input 28x28x1\nconv 8 k=3 x=1\nfc 10\n");
    th_write_bytes(nul, "input 28x28x1\nfc 10\n\0", 21);
    th_make_stream(fifo, TH_FIFO);
    th_make_stream(link, TH_ZERO_LINK);
    spartan_model *m = NULL;
    OK(spartan_model_create_from_file(ctx, good, &m));
    ck_assert_uint_eq(spartan_model_layer_count(m), 12);
    spartan_model_destroy(m);

    ck_assert_int_eq(spartan_model_create_from_file(ctx, wrong, &m),
                     SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_null(m);
    const char *msg = spartan_last_error(ctx);
    ck_assert_msg(strstr(msg, wrong) && strstr(msg, "line 2: unknown option \"x\""), "%s", msg);
    ck_assert_int_eq(spartan_model_create_from_file(ctx, nul, &m), SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert_msg(strstr(spartan_last_error(ctx), "NUL"), "%s", spartan_last_error(ctx));
    const char *unreadable[] = {fifo, link, missing};
    for (int i = 0; i < 3; i++) {
        spartan_status st = spartan_model_create_from_file(ctx, unreadable[i], &m);
        ck_assert_msg(st != SPARTAN_OK && m == NULL, "%s: %d", unreadable[i], st);
        ck_assert_msg(strstr(spartan_last_error(ctx), unreadable[i]), "%s",
                      spartan_last_error(ctx));
    }
    /* a checkpoint carries the description that rebuilds its model */
    char *ck = th_join(dir, "ck.safetensors"), text[1024], again[1024];
    OK(spartan_model_create_from_file(ctx, good, &m));
    spartan_train_config cfg = spartan_train_config_default();
    cfg.batch = 2;
    OK(spartan_model_prepare(m, &cfg));
    OK(spartan_checkpoint_save(m, ck, NULL, 0));
    spartan_model_describe(m, again, sizeof again);
    spartan_model_destroy(m);
    OK(spartan_checkpoint_meta_get(ck, "description", text, sizeof text));
    ck_assert_str_eq(text, again);
    OK(spartan_model_create_from_text(ctx, text, &m));
    OK(spartan_model_prepare(m, &cfg));
    OK(spartan_checkpoint_load(m, ck));
    spartan_model_destroy(m);
    free(ck);
    th_rm_rf(dir);
    free(dir);
    free(good);
    free(wrong);
    free(fifo);
    free(link);
    free(missing);
    free(nul);
}
END_TEST

START_TEST(pooling_words_round_trip) {
    /* The pooling kinds in descriptions: avgpool's stride defaults to its window, its padding to
     * 0; globalavgpool takes nothing; describe writes every option back. */
    const char *text = "input 12x12x3\n"
                       "conv 8 k=3 p=1\n"
                       "relu\n"
                       "avgpool k=2\n"
                       "avgpool k=3 s=2 p=1\n"
                       "conv 4 k=3\n"
                       "globalavgpool\n"
                       "fc 5\n";
    spartan_model *m;
    OK(spartan_model_create_from_text(ctx, text, &m));
    spartan_layer_info li;
    OK(spartan_model_layer_info(m, 2, &li));
    ck_assert_int_eq(li.type, SPARTAN_LAYER_AVGPOOL);
    ck_assert(li.spec.kernel == 2 && li.spec.stride == 2 && li.spec.pad == 0);
    ck_assert(li.out_h == 6 && li.out_w == 6 && li.out_c == 8);
    OK(spartan_model_layer_info(m, 3, &li));
    ck_assert(li.out_h == 3 && li.out_w == 3);
    OK(spartan_model_layer_info(m, 5, &li));
    ck_assert_int_eq(li.type, SPARTAN_LAYER_GLOBALAVGPOOL);
    ck_assert(li.out_h == 1 && li.out_w == 1 && li.out_c == 4);
    char out[512], line[64];
    spartan_model_describe(m, out, sizeof out);
    ck_assert_msg(strstr(out, "avgpool k=2 s=2 p=0\navgpool k=3 s=2 p=1\n") &&
                      strstr(out, "\nglobalavgpool\n"),
                  "%s", out);
    ck_assert_uint_eq(spartan_model_describe_layer(m, 3, line, sizeof line), 19);
    ck_assert_str_eq(line, "avgpool k=3 s=2 p=1");
    ck_assert_uint_eq(spartan_model_describe_layer(m, 99, line, sizeof line), 0);
    ck_assert_str_eq(line, "");
    spartan_model *again;
    OK(spartan_model_create_from_text(ctx, out, &again));
    char out2[512];
    spartan_model_describe(again, out2, sizeof out2);
    ck_assert_str_eq(out, out2);
    spartan_model_destroy(again);
    spartan_model_destroy(m);
}
END_TEST

static Suite *describe_suite(void) {
    Suite *s = suite_create("describe");
    TCase *tc = tcase_create("describe");
    tcase_set_timeout(tc, 300);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, presets_as_descriptions);
    tcase_add_test(tc, describe_round_trips);
    tcase_add_test(tc, pooling_words_round_trip);
    tcase_add_loop_test(tc, malformed_lines_are_refused_with_their_number, 0,
                        (int)(sizeof bad / sizeof bad[0]));
    tcase_add_test(tc, shapes_are_checked_with_their_line);
    tcase_add_test(tc, files_are_read_bounded_and_named_in_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return th_run_suite(describe_suite());
}
