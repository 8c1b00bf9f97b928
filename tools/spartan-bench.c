/* spartan-bench: the numbers the policy is tuned against and the paper's tables come from.
 *
 *   spartan-bench gemm      dense (CLBlast, own kernel, OpenBLAS on the host) against the sparse
 *                           path (monitor + compaction + sparse GEMM) for the GEMMs of real
 *                           layers, three passes, patterns and sparsities (tools/bench/gemm.c)
 *   spartan-bench monitor   ReLU alone, ReLU with the fused monitor, and the naive count
 *                           (tools/bench/monitor.c)
 *   spartan-bench conv      the convolution engine: im2col + GEMM (own, CLBlast), the implicit
 *                           kernels dense and sparse, per layer, pass and sparsity
 *                           (tools/bench/conv.c)
 *   spartan-bench train     the presets trained under dense, sparse and adaptive (and the
 *                           dropout kinds asked) side by side, and the PyTorch CPU line
 *                           (tools/bench/train.c)
 *   spartan-bench portability  gemm, conv and train in a short form on every device, and one
 *                           report comparing them (tools/bench/portability.c)
 *
 * This file owns the command line and the shape lists, and runs gemm, conv and monitor on every
 * device (or those --device / SPARTAN_DEVICE pick), train on one device (the one they pick, else
 * the library's default). docs/benchmarks.md says how to read the output. */
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "core/number.h"
#include "patterns.h"

static void usage(FILE *f) {
    fprintf(
        f,
        "usage: spartan-bench gemm [--quick | --layers] [--shape MxNxK]... [--sparsity LIST]\n"
        "                          [--pass LIST] [--pattern LIST] [--no-clblast]\n"
        "                          [--clblast-runs N] [--no-openblas] [COMMON]\n"
        "       spartan-bench monitor [COMMON]\n"
        "       spartan-bench wsparse [COMMON]\n"
        "       spartan-bench conv [--set LIST] [--shape NxHxWxC,KxK,COUT,sS,pP]...\n"
        "                          [--batch N] [--sparsity LIST] [--pass LIST]\n"
        "                          [--pattern LIST] [--no-clblast] [COMMON]\n"
        "       spartan-bench train [--model LIST] [--policy LIST] [--dropout-kind LIST]\n"
        "                           [--dropback-density LIST] [--dropback-interval N]\n"
        "                           [--dropback-decay X] [--dropback-ramp N]\n"
        "                           [--dropout P] [--channel-dropout LIST] [--epochs N]\n"
        "                           [--limit N] [--test-limit N]\n"
        "                           [--batch N] [--seed N] [--sample-every N]\n"
        "                           [--sequential] [--data DIR] [--trace FILE.csv] [--no-pytorch]\n"
        "                           [--pytorch-script FILE] [--pytorch-threads N]\n"
        "                           [--python PATH] [--device SEL] [--json FILE] [--csv FILE]\n"
        "       spartan-bench portability [--quick] [--device LIST] [--out DIR] [--json FILE]\n"
        "                           [--no-clblast] [--no-plots] [--plot-script FILE]\n"
        "                           [--data DIR] [--runs N] [--warmup N] [--seed N]\n"
        "                           [--wall-clock] [--from FILE.json]\n"
        "COMMON: [--device SEL] [--runs N] [--warmup N] [--seed N] [--wall-clock]\n"
        "        [--json FILE] [--csv FILE]\n"
        "  --quick          fc 128x512x784 and conv 12544x64x576 at 0,50,70,90 %%\n"
        "  (default)        the full sweep: the layer shapes (fc and conv of the small VGG)\n"
        "                   and the squares 1024, 2048 (about 10 min on a 2-core CPU)\n"
        "  --layers         the layer shapes only (about 3.5 min there)\n"
        "  --shape MxNxK    only these (repeat or separate by commas); Y = X.W, X MxK\n"
        "  --sparsity LIST  percent of zeros (default 0,25,50,70,80,90,95,99)\n"
        "  --pass LIST      fwd,bwd_input,bwd_weight (default all)\n"
        "  --pattern LIST   random,cluster,prepool (default all; prepool: a ReLU-masked\n"
        "                   gradient, the backward passes only)\n"
        "  --runs N         timed runs (default 5, more up to 25 / 0.2 s for short calls;\n"
        "                   CLBlast --clblast-runs, default 5)\n"
        "  --device SEL     P:D, cpu, gpu or a name part, or several separated by commas\n"
        "                   (default $SPARTAN_DEVICE, else\n"
        "                   every device but simulators; train: the library's default)\n"
        "  --wall-clock     time by the host clock after a clFinish even where the driver's\n"
        "                   profiling events are trusted (the header says which is used)\n");
    fprintf(
        f,
        "wsparse: the weight-sparse GEMMs (Dropback's pruned W: W's non-zeros only, and both\n"
        "  W's and X's zeros skipped) against the best dense GEMM, paired run for run, on the fc\n"
        "  layers of mlp and vgg-small (batch 64) at W densities 50, 20, 10, 5 %%\n"
        "conv: each convolution x pass x pattern x sparsity, the sparse path against the best\n"
        "  dense one of the same run (im2col + GEMM, CLBlast, the implicit kernel);\n"
        "  --set LIST       vgg-small, lenet5 (batch 64), vgg16, resnet18 (ImageNet shapes,\n"
        "                   batch 1) (default vgg-small,lenet5)\n"
        "  --shape S        one convolution, e.g. 64x28x28x32,3x3,32,s1,p1 (repeat the flag)\n"
        "  --batch N        the batch of the sets (default 64 and 1)\n"
        "  --pattern LIST   random,cluster (default both); --sparsity default 0,30,50,70,90\n"
        "train: each preset under each policy and dropout kind (a run), the runs stepping in\n"
        "  turn on the same batches;\n"
        "  --model LIST     mlp,lenet5,vgg-small,mlp-dropout,lstm (default all; vgg-small: ~2 min\n"
        "                   per epoch and policy on a 2-core CPU)\n"
        "  --policy LIST    dense,sparse,adaptive (default all)\n"
        "  --dropout-kind LIST  bernoulli,row,tile (default bernoulli): each policy under\n"
        "                   each; row (Approximate Random Dropout, whole neurons) at the\n"
        "                   learning rate x (1 - p)^2, p the largest dropout layer's rate;\n"
        "                   tile (whole tiles of the next fc's weights)\n"
        "  --dropout P      every dropout layer's rate and LSTM's hidden units' dropout, in\n"
        "                   [0, 1) (default: each layer's own)\n"
        "  --channel-dropout LIST  sensitivity-aware channel dropout rates (e.g. 0,0.5): each\n"
        "                   run under each, side by side (default: none)\n"
        "  --dropback-density LIST  Dropback budgets as fractions of the parameters (e.g.\n"
        "                   0,0.1; 0: off): each run under each, side by side (default: off)\n"
        "  --dropback-interval N  updates between selections of the tracked set (default 1)\n"
        "  --dropback-decay X  the initial values' decay per update, in (0, 1) (default 0.9)\n"
        "  --dropback-ramp N   the budget shrinks from all parameters over N updates (default 0)\n"
        "  --epochs N       epochs (default 1); epoch time: median over the epochs\n"
        "  --limit N        train on the first N images (default all 60000)\n"
        "  --test-limit N   evaluate on the first N test images (default all 10000)\n"
        "  --batch N, --seed N  as spartan-train (64, 1)\n"
        "  --sample-every N  monitor sample period (default: the library's, automatic)\n"
        "  --sequential     one run's whole epoch after the other's\n"
        "  --trace FILE     per step, GEMM layer and pass: path and sparsity (CSV for\n"
        "                   tools/plot_train.gp)\n"
        "  --no-pytorch     skip the PyTorch line (tools/pytorch_train.py, run when\n"
        "                   '--python -c \"import torch\"' works; default /usr/bin/python3)\n"
        "  --pytorch-threads N  PyTorch's threads (default 2)\n"
        "portability: gemm, conv and train in a short form on every device found (simulators\n"
        "  included: correctness only) and one report side by side (a few minutes a device);\n"
        "  --device LIST    selections separated by commas, e.g. 1:0,2:0 or pocl,oclgrind\n"
        "  --out DIR        DIR/portability.md, DIR/*.png (gnuplot) and their data, and\n"
        "                   DIR/portability.json unless --json FILE (default DIR: portability)\n"
        "  --quick          one GEMM and one convolution layer, mlp on 256 images, no CLBlast\n"
        "  --plot-script FILE  default: the source tree's tools/plot_portability.gp\n"
        "  --from FILE.json the report and plots again from an earlier run's records\n"
        "                   (runs nothing)\n");
}

/* The full sweep (the default) is the layers and the squares: about 10 minutes on the 2-core
 * POCL machine, under the 20 the issue allows (docs/benchmarks.md). The layers: an MLP
 * 784-512-512-10 at batch 64/128/256, and the im2col convolutions of a small VGG on 28x28
 * (conv 1->32, 32->32 | pool | 32->64, 64->64 | pool | 64->128, 128->128) at batch 64 after
 * its first layer (the input is not a ReLU output): M = batch * H * W, K = Cin * 9, N = Cout. */
static const bench_shape layer_shapes[] = {
    {64, 512, 784, "fc 784->512 b64"},         {128, 512, 784, "fc 784->512 b128"},
    {256, 512, 784, "fc 784->512 b256"},       {64, 512, 512, "fc 512->512 b64"},
    {128, 512, 512, "fc 512->512 b128"},       {256, 512, 512, "fc 512->512 b256"},
    {64, 10, 512, "fc 512->10 b64"},           {128, 10, 512, "fc 512->10 b128"},
    {256, 10, 512, "fc 512->10 b256"},         {50176, 32, 288, "conv 28x28 32->32 b64"},
    {12544, 64, 288, "conv 14x14 32->64 b64"}, {12544, 64, 576, "conv 14x14 64->64 b64"},
    {3136, 128, 576, "conv 7x7 64->128 b64"},  {3136, 128, 1152, "conv 7x7 128->128 b64"},
};
static const bench_shape square_shapes[] = {
    {1024, 1024, 1024, "square 1024"},
    {2048, 2048, 2048, "square 2048"},
};
static const bench_shape quick_shapes[] = {
    {128, 512, 784, "fc 784->512 b128"},
    {12544, 64, 576, "conv 14x14 64->64 b64"},
};
static const double default_sparsities[] = {0, .25, .5, .7, .8, .9, .95, .99};
static const double quick_sparsities[] = {0, .5, .7, .9};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static void add_shapes(bench_opts *o, const bench_shape *s, size_t n) {
    for (size_t i = 0; i < n && o->nshapes < BENCH_MAX_SHAPES; i++) o->shapes[o->nshapes++] = s[i];
}

/* A --shape that is one of the known layers gets its label. */
static void label_shape(bench_shape *s) {
    const bench_shape *lists[] = {layer_shapes, square_shapes};
    size_t counts[] = {COUNT(layer_shapes), COUNT(square_shapes)};
    for (size_t l = 0; l < 2; l++)
        for (size_t i = 0; i < counts[l]; i++)
            if (lists[l][i].m == s->m && lists[l][i].n == s->n && lists[l][i].k == s->k)
                *s = lists[l][i];
}

/* A decimal number from min to max into *out (core/number.h: digits only, no overflow); 1 after
 * a message when it is not one. */
static int parse_u64(const char *flag, const char *text, uint64_t min, uint64_t max,
                     uint64_t *out) {
    if (!sp_parse_u64(text, max, out) || *out < min) {
        fprintf(stderr, "spartan-bench: %s needs a decimal number from %llu to %llu, not '%s'\n",
                flag, (unsigned long long)min, (unsigned long long)max, text);
        return 1;
    }
    return 0;
}

static int parse_int(const char *flag, const char *text, int *out) {
    uint64_t v;
    if (parse_u64(flag, text, 1, 1000000, &v)) return 1;
    *out = (int)v;
    return 0;
}

/* Parses argv[2..]; returns 0, or the exit status (2: bad usage, -1: --help). */
static int parse(int argc, char **argv, int gemm, bench_opts *o) {
    const char *sparsity = NULL, *passes = NULL, *patterns = NULL;
    o->seed = 42;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int takes = 1, rc = 0;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return -1;
        } else if (strcmp(a, "--device") == 0 && v) {
            o->device = v;
        } else if (strcmp(a, "--json") == 0 && v) {
            o->json_path = v;
        } else if (strcmp(a, "--csv") == 0 && v) {
            o->csv_path = v;
        } else if (strcmp(a, "--runs") == 0 && v) {
            rc = parse_int(a, v, &o->runs);
        } else if (strcmp(a, "--warmup") == 0 && v) {
            rc = parse_int(a, v, &o->warmup);
        } else if (strcmp(a, "--seed") == 0 && v) {
            rc = parse_u64(a, v, 0, UINT64_MAX, &o->seed);
        } else if (gemm && strcmp(a, "--clblast-runs") == 0 && v) {
            rc = parse_int(a, v, &o->clblast_runs);
        } else if (gemm && strcmp(a, "--sparsity") == 0 && v) {
            sparsity = v;
        } else if (gemm && strcmp(a, "--pass") == 0 && v) {
            passes = v;
        } else if (gemm && strcmp(a, "--pattern") == 0 && v) {
            patterns = v;
        } else if (gemm && strcmp(a, "--shape") == 0 && v) {
            char buf[512];
            snprintf(buf, sizeof buf, "%s", v);
            for (char *save = NULL, *t = strtok_r(buf, ",", &save); t && !rc;
                 t = strtok_r(NULL, ",", &save)) {
                bench_shape s;
                if (bench_parse_shape(t, &s) || o->nshapes == BENCH_MAX_SHAPES) {
                    fprintf(stderr,
                            "spartan-bench: --shape wants MxNxK (e.g. 128x512x784), "
                            "not '%s'\n",
                            t);
                    rc = 2;
                } else {
                    label_shape(&s);
                    o->shapes[o->nshapes++] = s;
                }
            }
        } else {
            takes = 0;
            if (gemm && strcmp(a, "--quick") == 0) {
                o->quick = 1;
            } else if (gemm && strcmp(a, "--layers") == 0) {
                o->layers = 1;
            } else if (gemm && strcmp(a, "--no-clblast") == 0) {
                o->no_clblast = 1;
            } else if (strcmp(a, "--wall-clock") == 0) {
                o->wall_clock = 1;
            } else if (gemm && strcmp(a, "--no-openblas") == 0) {
                o->no_openblas = 1;
            } else {
                fprintf(stderr, "spartan-bench: unknown option '%s' (or it needs a value)\n", a);
                rc = 2;
            }
        }
        if (rc) return 2;
        i += takes;
    }
    if (o->nshapes == 0) {
        if (o->quick) {
            add_shapes(o, quick_shapes, COUNT(quick_shapes));
        } else {
            add_shapes(o, layer_shapes, COUNT(layer_shapes));
            if (!o->layers) add_shapes(o, square_shapes, COUNT(square_shapes));
        }
    }
    if (sparsity) {
        int n = bench_parse_sparsities(sparsity, o->sparsities, BENCH_MAX_SPARSITIES);
        if (n <= 0) {
            fprintf(stderr, "spartan-bench: --sparsity wants percentages 0..100, e.g. 0,50,90\n");
            return 2;
        }
        o->nsparsities = (size_t)n;
    } else {
        const double *s = o->quick ? quick_sparsities : default_sparsities;
        o->nsparsities = o->quick ? COUNT(quick_sparsities) : COUNT(default_sparsities);
        memcpy(o->sparsities, s, o->nsparsities * sizeof *s);
    }
    o->passes = passes ? bench_parse_passes(passes) : (1u << PASS_COUNT) - 1;
    o->patterns = patterns ? bench_parse_patterns(patterns)
                           : (1u << PAT_RANDOM) | (1u << PAT_CLUSTER) | (1u << PAT_PREPOOL);
    if (!o->passes || !o->patterns) {
        fprintf(stderr, "spartan-bench: %s\n",
                !o->passes ? "--pass takes fwd, bwd_input, bwd_weight"
                           : "--pattern takes random, cluster, prepool");
        return 2;
    }
    if (o->patterns == (1u << PAT_PREPOOL) && o->passes == (1u << PASS_FWD))
        fprintf(stderr, "spartan-bench: note: prepool is the gradient pattern, measured in the "
                        "backward passes only: nothing sparse to measure\n");
    return 0;
}

/* `spartan-bench conv`'s layer sets: the presets' convolutions (batch 64), and the ImageNet
 * layers of VGG-16 and ResNet-18 the seeds measure (distinct shapes, batch 1). Batch 0 here:
 * the set's default or --batch. Fields: {batch, in_h, in_w, in_c, k_h, k_w, stride, pad}. */
typedef struct conv_set {
    const char *name;
    size_t batch;
    const bench_conv_shape *layers;
    size_t n;
} conv_set;
static const bench_conv_shape vgg_small_convs[] = {
    {{0, 28, 28, 1, 3, 3, 1, 1}, 32, "vgg-small conv1"},
    {{0, 28, 28, 32, 3, 3, 1, 1}, 32, "vgg-small conv2"},
    {{0, 14, 14, 32, 3, 3, 1, 1}, 64, "vgg-small conv3"},
    {{0, 14, 14, 64, 3, 3, 1, 1}, 64, "vgg-small conv4"},
};
static const bench_conv_shape lenet5_convs[] = {
    {{0, 28, 28, 1, 5, 5, 1, 2}, 6, "lenet5 conv1"},
    {{0, 14, 14, 6, 5, 5, 1, 0}, 16, "lenet5 conv2"},
};
static const bench_conv_shape vgg16_convs[] = {
    {{0, 224, 224, 3, 3, 3, 1, 1}, 64, "vgg16 conv1_1"},
    {{0, 224, 224, 64, 3, 3, 1, 1}, 64, "vgg16 conv1_2"},
    {{0, 112, 112, 64, 3, 3, 1, 1}, 128, "vgg16 conv2_1"},
    {{0, 112, 112, 128, 3, 3, 1, 1}, 128, "vgg16 conv2_2"},
    {{0, 56, 56, 128, 3, 3, 1, 1}, 256, "vgg16 conv3_1"},
    {{0, 56, 56, 256, 3, 3, 1, 1}, 256, "vgg16 conv3_2"},
    {{0, 28, 28, 256, 3, 3, 1, 1}, 512, "vgg16 conv4_1"},
    {{0, 28, 28, 512, 3, 3, 1, 1}, 512, "vgg16 conv4_2"},
    {{0, 14, 14, 512, 3, 3, 1, 1}, 512, "vgg16 conv5_x"},
};
static const bench_conv_shape resnet18_convs[] = {
    {{0, 224, 224, 3, 7, 7, 2, 3}, 64, "resnet18 conv1"},
    {{0, 56, 56, 64, 3, 3, 1, 1}, 64, "resnet18 layer1"},
    {{0, 56, 56, 64, 3, 3, 2, 1}, 128, "resnet18 layer2 down"},
    {{0, 56, 56, 64, 1, 1, 2, 0}, 128, "resnet18 layer2 1x1 down"},
    {{0, 28, 28, 128, 3, 3, 1, 1}, 128, "resnet18 layer2"},
    {{0, 28, 28, 128, 3, 3, 2, 1}, 256, "resnet18 layer3 down"},
    {{0, 14, 14, 256, 3, 3, 1, 1}, 256, "resnet18 layer3"},
    {{0, 14, 14, 256, 3, 3, 2, 1}, 512, "resnet18 layer4 down"},
    {{0, 7, 7, 512, 3, 3, 1, 1}, 512, "resnet18 layer4"},
};
static const conv_set conv_sets[] = {
    {"vgg-small", 64, vgg_small_convs, COUNT(vgg_small_convs)},
    {"lenet5", 64, lenet5_convs, COUNT(lenet5_convs)},
    {"vgg16", 1, vgg16_convs, COUNT(vgg16_convs)},
    {"resnet18", 1, resnet18_convs, COUNT(resnet18_convs)},
};
static const double conv_sparsities[] = {0, .3, .5, .7, .9};

/* "NxHxWxC,KxK,COUT,sS,pP" (KxK may be non-square: KHxKW) into *out; 1 when it is not one. */
static int parse_conv_shape(const char *text, bench_conv_shape *out) {
    unsigned long long v[10];
    int used = 0;
    if (sscanf(text, "%llux%llux%llux%llu,%llux%llu,%llu,s%llu,p%llu%n", &v[0], &v[1], &v[2], &v[3],
               &v[4], &v[5], &v[6], &v[7], &v[8], &used) != 9 ||
        text[used] != '\0')
        return 1;
    for (int i = 0; i < 9; i++)
        if (v[i] > 65536 || (i != 8 && v[i] == 0)) return 1;
    *out = (bench_conv_shape){{(size_t)v[0], (size_t)v[1], (size_t)v[2], (size_t)v[3], (size_t)v[4],
                               (size_t)v[5], (size_t)v[7], (size_t)v[8]},
                              (size_t)v[6],
                              ""};
    snprintf(out->label, sizeof out->label, "%s", text);
    if (!spartan_window_out_h(&out->w) || !spartan_window_out_w(&out->w)) return 1;
    return 0;
}

/* --set LIST into o->convs, at batch (0: each set's own). */
static int add_conv_sets(bench_opts *o, const char *list, size_t batch) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", list);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        const conv_set *set = NULL;
        for (size_t i = 0; i < COUNT(conv_sets); i++)
            if (strcmp(conv_sets[i].name, t) == 0) set = &conv_sets[i];
        if (!set) {
            fprintf(stderr,
                    "spartan-bench: --set takes vgg-small, lenet5, vgg16, resnet18, not "
                    "'%s'\n",
                    t);
            return 2;
        }
        for (size_t i = 0; i < set->n && o->nconvs < BENCH_MAX_SHAPES; i++) {
            bench_conv_shape c = set->layers[i];
            c.w.batch = batch ? batch : set->batch;
            o->convs[o->nconvs++] = c;
        }
    }
    return 0;
}

/* `spartan-bench conv`'s options; 0, or the exit status (2: bad usage, -1: --help). */
static int parse_conv(int argc, char **argv, bench_opts *o) {
    const char *sets = NULL, *sparsity = NULL, *passes = NULL, *patterns = NULL;
    size_t batch = 0;
    o->seed = 42;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int rc = 0;
        uint64_t n;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return -1;
        } else if (strcmp(a, "--no-clblast") == 0) {
            o->no_clblast = 1;
            continue;
        } else if (strcmp(a, "--wall-clock") == 0) {
            o->wall_clock = 1;
            continue;
        } else if (!v) {
            fprintf(stderr, "spartan-bench: unknown option '%s' (or it needs a value)\n", a);
            return 2;
        } else if (strcmp(a, "--device") == 0) {
            o->device = v;
        } else if (strcmp(a, "--json") == 0) {
            o->json_path = v;
        } else if (strcmp(a, "--csv") == 0) {
            o->csv_path = v;
        } else if (strcmp(a, "--runs") == 0) {
            rc = parse_int(a, v, &o->runs);
        } else if (strcmp(a, "--warmup") == 0) {
            rc = parse_int(a, v, &o->warmup);
        } else if (strcmp(a, "--seed") == 0) {
            rc = parse_u64(a, v, 0, UINT64_MAX, &o->seed);
        } else if (strcmp(a, "--batch") == 0) {
            rc = parse_u64(a, v, 1, 65536, &n);
            batch = (size_t)n;
        } else if (strcmp(a, "--set") == 0) {
            sets = v;
        } else if (strcmp(a, "--sparsity") == 0) {
            sparsity = v;
        } else if (strcmp(a, "--pass") == 0) {
            passes = v;
        } else if (strcmp(a, "--pattern") == 0) {
            patterns = v;
        } else if (strcmp(a, "--shape") == 0) {
            if (o->nconvs == BENCH_MAX_SHAPES || parse_conv_shape(v, &o->convs[o->nconvs])) {
                fprintf(stderr,
                        "spartan-bench: --shape wants NxHxWxC,KxK,COUT,sS,pP (e.g. "
                        "64x28x28x32,3x3,32,s1,p1) that fits, not '%s'\n",
                        v);
                return 2;
            }
            o->nconvs++;
        } else {
            fprintf(stderr, "spartan-bench: unknown option '%s'\n", a);
            return 2;
        }
        if (rc) return 2;
        i++;
    }
    if (sets || o->nconvs == 0) {
        int rc = add_conv_sets(o, sets ? sets : "vgg-small,lenet5", batch);
        if (rc) return rc;
    }
    if (sparsity) {
        int n = bench_parse_sparsities(sparsity, o->sparsities, BENCH_MAX_SPARSITIES);
        if (n <= 0) {
            fprintf(stderr, "spartan-bench: --sparsity wants percentages 0..100, e.g. 0,50,90\n");
            return 2;
        }
        o->nsparsities = (size_t)n;
    } else {
        o->nsparsities = COUNT(conv_sparsities);
        memcpy(o->sparsities, conv_sparsities, sizeof conv_sparsities);
    }
    o->passes = passes ? bench_parse_passes(passes) : (1u << PASS_COUNT) - 1;
    o->patterns =
        patterns ? bench_parse_patterns(patterns) : (1u << PAT_RANDOM) | (1u << PAT_CLUSTER);
    if (!o->passes || !o->patterns || (o->patterns & (1u << PAT_PREPOOL))) {
        fprintf(stderr, "spartan-bench: %s\n",
                !o->passes ? "--pass takes fwd, bwd_input, bwd_weight"
                           : "conv's --pattern takes random, cluster");
        return 2;
    }
    return 0;
}

static int parse_size(const char *flag, const char *text, uint64_t max, size_t *out) {
    uint64_t v;
    if (parse_u64(flag, text, 1, max < SIZE_MAX ? max : SIZE_MAX, &v)) return 2;
    *out = (size_t)v;
    return 0;
}

/* --model: names checked against the presets, kept in o->model_buf. */
static int parse_models(const char *text, bench_train_opts *o) {
    snprintf(o->model_buf, sizeof o->model_buf, "%s", text);
    o->nmodels = 0;
    for (char *save = NULL, *t = strtok_r(o->model_buf, ",", &save); t;
         t = strtok_r(NULL, ",", &save)) {
        const char *const *p = spartan_model_presets();
        while (*p && strcmp(*p, t)) p++;
        if (!*p || o->nmodels == BENCH_MAX_MODELS) {
            fprintf(stderr, "spartan-bench: --model takes a list of presets (");
            for (p = spartan_model_presets(); *p; p++)
                fprintf(stderr, "%s%s", *p, p[1] ? ", " : "), not ");
            fprintf(stderr, "'%s'\n", t);
            return 2;
        }
        o->models[o->nmodels++] = t;
    }
    return o->nmodels ? 0 : 2;
}

/* --dropout-kind: the names spartan_dropout_kind_name gives. */
static int parse_dropout_kinds(const char *text, unsigned *out) {
    char buf[128];
    const char *bad = text; /* an empty list names itself */
    snprintf(buf, sizeof buf, "%s", text);
    *out = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int k = 0;
        while (k < SPARTAN_DROPOUT_KIND_COUNT &&
               strcmp(t, spartan_dropout_kind_name((spartan_dropout_kind)k)))
            k++;
        if (k == SPARTAN_DROPOUT_KIND_COUNT) {
            bad = t;
            *out = 0;
            break;
        }
        *out |= 1u << k;
    }
    if (*out) return 0;
    fprintf(stderr, "spartan-bench: --dropout-kind takes bernoulli, row, tile, not '%s'\n", bad);
    return 2;
}

/* --dropout: a rate in [0, 1) as plain decimal digits and a point (no sign, exponent or space),
 * checked after the rounding to float (0.99999999999 is 1.0f). */
static int parse_rate(const char *flag, const char *text, float *out) {
    char *end;
    double v = strtod(text, &end);
    float f = (float)v;
    if (text[strspn(text, "0123456789.")] || end == text || *end || !(f >= 0.0f) || !(f < 1.0f)) {
        fprintf(stderr, "spartan-bench: %s needs a rate from 0 to below 1 (e.g. 0.5), not '%s'\n",
                flag, text);
        return 2;
    }
    *out = f;
    return 0;
}

/* --channel-dropout LIST: up to max rates, each as parse_rate takes it. */
static int parse_rates(const char *flag, const char *text, float *out, size_t max, size_t *n) {
    char buf[128];
    snprintf(buf, sizeof buf, "%s", text);
    *n = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (*n == max) {
            fprintf(stderr, "spartan-bench: %s takes at most %zu rates\n", flag, max);
            return 2;
        }
        if (parse_rate(flag, t, &out[(*n)++])) return 2;
    }
    if (*n) return 0;
    fprintf(stderr, "spartan-bench: %s needs a list of rates, not '%s'\n", flag, text);
    return 2;
}

static int parse_policies(const char *text, unsigned *out) {
    char buf[128];
    snprintf(buf, sizeof buf, "%s", text);
    *out = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        spartan_policy_mode m;
        if (spartan_policy_mode_parse(t, &m) != SPARTAN_OK) {
            fprintf(stderr, "spartan-bench: --policy takes dense, sparse, adaptive, not '%s'\n", t);
            return 2;
        }
        *out |= 1u << m;
    }
    return *out ? 0 : 2;
}

/* `spartan-bench train`'s options; 0, or the exit status (2: bad usage, -1: --help). */
static int parse_train(int argc, char **argv, bench_train_opts *o) {
    bench_train_opts_init(o);
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        size_t n = 0;
        int rc = 0;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return -1;
        } else if (strcmp(a, "--no-pytorch") == 0) {
            o->no_pytorch = 1;
            continue;
        } else if (strcmp(a, "--sequential") == 0) {
            o->sequential = 1;
            continue;
        } else if (!v) {
            fprintf(stderr, "spartan-bench: unknown option '%s' (or it needs a value)\n", a);
            return 2;
        } else if (strcmp(a, "--device") == 0) {
            o->device = v;
        } else if (strcmp(a, "--json") == 0) {
            o->json_path = v;
        } else if (strcmp(a, "--csv") == 0) {
            o->csv_path = v;
        } else if (strcmp(a, "--trace") == 0) {
            o->trace_path = v;
        } else if (strcmp(a, "--data") == 0) {
            o->data = v;
        } else if (strcmp(a, "--pytorch-script") == 0) {
            o->pytorch_script = v;
        } else if (strcmp(a, "--python") == 0) {
            o->python = v;
        } else if (strcmp(a, "--model") == 0) {
            rc = parse_models(v, o);
        } else if (strcmp(a, "--policy") == 0) {
            rc = parse_policies(v, &o->policies);
        } else if (strcmp(a, "--dropout-kind") == 0) {
            rc = parse_dropout_kinds(v, &o->dropout_kinds);
        } else if (strcmp(a, "--dropout") == 0) {
            rc = parse_rate(a, v, &o->dropout);
        } else if (strcmp(a, "--channel-dropout") == 0) {
            rc = parse_rates(a, v, o->channels, BENCH_MAX_CHANNELS, &o->nchannels);
        } else if (strcmp(a, "--dropback-density") == 0) {
            rc = parse_rates(a, v, o->dropbacks, BENCH_MAX_CHANNELS, &o->ndropbacks);
        } else if (strcmp(a, "--dropback-interval") == 0) {
            rc = parse_size(a, v, UINT32_MAX, &o->dropback_interval);
        } else if (strcmp(a, "--dropback-ramp") == 0) {
            rc = parse_size(a, v, UINT32_MAX, &o->dropback_ramp);
        } else if (strcmp(a, "--dropback-decay") == 0) {
            float decay = 0.0f;
            rc = parse_rate(a, v, &decay);
            if (!rc && !(decay > 0.0f)) {
                fprintf(stderr, "spartan-bench: --dropback-decay needs a rate above 0\n");
                rc = 2;
            }
            o->dropback_decay = decay;
        } else if (strcmp(a, "--epochs") == 0) {
            rc = parse_int(a, v, &o->epochs) ? 2 : 0;
        } else if (strcmp(a, "--pytorch-threads") == 0) {
            rc = parse_int(a, v, &o->pytorch_threads) ? 2 : 0;
        } else if (strcmp(a, "--limit") == 0) {
            rc = parse_size(a, v, UINT32_MAX, &o->limit);
        } else if (strcmp(a, "--test-limit") == 0) {
            rc = parse_size(a, v, UINT32_MAX, &o->test_limit);
        } else if (strcmp(a, "--batch") == 0) {
            rc = parse_size(a, v, UINT32_MAX, &o->batch);
        } else if (strcmp(a, "--seed") == 0) {
            rc = parse_u64(a, v, 0, UINT64_MAX, &o->seed) ? 2 : 0;
        } else if (strcmp(a, "--sample-every") == 0) {
            rc = parse_size(a, v, 999999, &n);
            o->sample_every = (unsigned)n;
        } else {
            fprintf(stderr, "spartan-bench: unknown option '%s'\n", a);
            return 2;
        }
        if (rc) return 2;
        i++;
    }
    return 0;
}

static int main_train(int argc, char **argv) {
    static bench_train_opts o;
    int prc = parse_train(argc, argv, &o);
    if (prc) return prc < 0 ? 0 : prc;
    bench_dev d;
    bench_out out;
    if (bench_dev_open(&d, o.device ? o.device : getenv("SPARTAN_DEVICE"), 0)) return 1;
    char date[64];
    if (bench_out_start(&out, o.json_path, o.csv_path, bench_train_csv_header, date, sizeof date)) {
        bench_dev_close(&d);
        return 1;
    }
    double t0 = bench_now_ms();
    int rc = bench_train(&d, &o, &out, date);
    bench_dev_close(&d);
    if (bench_out_close(&out)) rc = 1;
    printf("\ntotal %.1f s%s%s%s%s%s%s\n", (bench_now_ms() - t0) / 1e3,
           o.json_path ? "; JSON " : "", o.json_path ? o.json_path : "", o.csv_path ? "; CSV " : "",
           o.csv_path ? o.csv_path : "", o.trace_path ? "; trace " : "",
           o.trace_path ? o.trace_path : "");
    return rc ? 3 : 0;
}

/* `spartan-bench portability`'s options; 0, or the exit status (2: bad usage, -1: --help). */
static int parse_portability(int argc, char **argv, bench_port_opts *o, char *cmd, size_t len) {
    const struct {
        const char *flag;
        int *on;
    } flags[] = {{"--quick", &o->quick},
                 {"--no-clblast", &o->no_clblast},
                 {"--no-plots", &o->no_plots},
                 {"--wall-clock", &o->wall_clock}};
    const struct {
        const char *flag;
        const char **to;
    } texts[] = {{"--device", &o->devices},          {"--out", &o->out_dir},
                 {"--json", &o->json_path},          {"--data", &o->data},
                 {"--plot-script", &o->plot_script}, {"--from", &o->from}};
    o->out_dir = "portability";
    snprintf(cmd, len, "spartan-bench");
    for (int i = 1; i < argc; i++) /* the command line, for the report */
        snprintf(cmd + strlen(cmd), len - strlen(cmd), " %s", argv[i]);
    o->command = cmd;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        size_t f = 0, t = 0;
        while (f < COUNT(flags) && strcmp(a, flags[f].flag)) f++;
        while (t < COUNT(texts) && strcmp(a, texts[t].flag)) t++;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return -1;
        }
        if (f < COUNT(flags)) {
            *flags[f].on = 1;
            continue;
        }
        int rc = 0;
        if (v && t < COUNT(texts)) {
            *texts[t].to = v;
        } else if (v && !strcmp(a, "--runs")) {
            rc = parse_int(a, v, &o->runs);
        } else if (v && !strcmp(a, "--warmup")) {
            rc = parse_int(a, v, &o->warmup);
        } else if (v && !strcmp(a, "--seed")) {
            rc = parse_u64(a, v, 0, UINT64_MAX, &o->seed);
            o->has_seed = 1;
        } else {
            fprintf(stderr, "spartan-bench: unknown option '%s' (or it needs a value)\n", a);
            return 2;
        }
        if (rc) return 2;
        i++;
    }
    if (!*o->out_dir || (o->devices && !o->devices[strspn(o->devices, ",")])) {
        fprintf(stderr, "spartan-bench: %s\n",
                *o->out_dir ? "--device wants a list of selections, e.g. 0:0,1:0 or pocl,oclgrind"
                            : "--out wants a directory");
        return 2;
    }
    return 0;
}

static int main_portability(int argc, char **argv) {
    static bench_port_opts o;
    static char cmd[2048];
    int prc = parse_portability(argc, argv, &o, cmd, sizeof cmd);
    if (prc) return prc < 0 ? 0 : prc;
    return bench_portability(&o);
}

int main(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "train") == 0) return main_train(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "portability") == 0) return main_portability(argc, argv);
    if (argc < 2 || (strcmp(argv[1], "gemm") && strcmp(argv[1], "monitor") &&
                     strcmp(argv[1], "conv") && strcmp(argv[1], "wsparse"))) {
        if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
            usage(stdout);
            return 0;
        }
        usage(stderr);
        return 2;
    }
    int gemm = strcmp(argv[1], "gemm") == 0, conv = strcmp(argv[1], "conv") == 0;
    const int wsparse = strcmp(argv[1], "wsparse") == 0;
    static bench_opts o;
    int prc = conv ? parse_conv(argc, argv, &o) : parse(argc, argv, gemm, &o);
    if (prc) return prc < 0 ? 0 : prc;

    const char *selection = o.device ? o.device : getenv("SPARTAN_DEVICE");
    static bench_pick sel[16];
    int ndev = bench_devices(selection, 0, sel, 16);
    if (ndev <= 0) {
        if (ndev == 0) fprintf(stderr, "spartan-bench: no device to run on\n");
        return 1;
    }
    bench_out out;
    char date[64];
    if (bench_out_start(&out, o.json_path, o.csv_path,
                        conv      ? bench_conv_csv_header
                        : gemm    ? bench_gemm_csv_header
                        : wsparse ? bench_wsparse_csv_header
                                  : bench_monitor_csv_header,
                        date, sizeof date))
        return 1;
    double t0 = bench_now_ms();
    int rc = 0;
    for (int i = 0; i < ndev; i++) {
        bench_dev d;
        if (i) printf("\n");
        if (bench_dev_open(&d, sel[i].sel, o.wall_clock)) {
            rc = 1;
            continue;
        }
        rc |= conv      ? bench_conv(&d, &o, &out, date)
              : gemm    ? bench_gemm(&d, &o, &out, date)
              : wsparse ? bench_wsparse(&d, &o, &out, date)
                        : bench_monitor(&d, &o, &out, date);
        bench_dev_close(&d);
    }
    if (bench_out_close(&out)) rc = 1;
    printf("\ntotal %.1f s%s%s%s%s\n", (bench_now_ms() - t0) / 1e3, o.json_path ? "; JSON " : "",
           o.json_path ? o.json_path : "", o.csv_path ? "; CSV " : "",
           o.csv_path ? o.csv_path : "");
    return rc ? 3 : 0;
}
