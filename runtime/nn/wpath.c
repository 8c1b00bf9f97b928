/* The weight-sparse path of the fc layers under Dropback (wpath.h): once the untracked weights
 * are exact zeros (d has decayed to 0), the forward pass (Y = X . W) and the backward pass by
 * input (dX = dY . W^T) can run over W's non-zeros alone (spartan_gemm_wsparse_*). Each layer
 * keeps a description of them, built from W (a blocking read and a host pass), valid until an
 * element of W joins the tracked set (the per-parameter counts read without blocking after every
 * update). Per pass, the weight-sparse GEMM and the path the policy would choose are both timed
 * in training (the step's marks) and the faster runs, the slower one again every RECHECK steps;
 * a stale description is rebuilt when the time it would save until the next change, by the rate
 * of changes seen so far, exceeds what the last build cost. */
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

#include "core/timer.h"
#include "nn/nn_internal.h"

#define RECHECK    50   /* steps between two runs of the slower path */
#define EMA        0.2  /* weight of a new measurement */
#define MIN_RATE   1e-3 /* the rate of changes taken as at least this (once in 1000 updates) */
#define CHANGE_EMA 0.01 /* weight of an update in the rate of changes (a memory of ~100) */

/* SPARTAN_WSPARSE: "on" (run the weight-sparse GEMMs whenever W is sparse, rebuilding at every
 * change: for tests and measurements), "off", else (unset) the measured choice. */
static int forced(void) {
    const char *e = getenv("SPARTAN_WSPARSE");
    if (!e || !*e) return -1;
    if (!strcmp(e, "on")) return 1;
    if (!strcmp(e, "off")) return 0;
    sp_log(SPARTAN_LOG_WARN, "SPARTAN_WSPARSE=%s ignored (on or off)", e);
    return -1;
}

static int takes(const sp_layer *L) {
    return L->ops == &sp_layer_fc && !L->drop_in && !L->drop_out;
}

spartan_status sp_wpath_prepare(spartan_model *m) {
    const sp_dropback *db = m->dropback;
    if (!db) return SPARTAN_OK;
    m->wpath_forced = forced();
    if (!m->wpath_forced) return SPARTAN_OK;
    for (size_t i = 0; i < m->nlayers; i++) {
        sp_layer *L = &m->layers[i];
        if (!takes(L)) continue;
        size_t slot = 0;
        while (slot < db->dev.params && db->p[slot].w != L->g.w) slot++;
        if (slot == db->dev.params) continue;
        spartan_status st = spartan_wsparse_create(m->ctx, L->g.k, L->g.n, &L->g.ws);
        if (st != SPARTAN_OK) return st;
        L->g.ws_slot = slot;
    }
    return SPARTAN_OK;
}

void sp_wpath_release(sp_layer *L) {
    spartan_wsparse_destroy(L->g.ws);
    L->g.ws = NULL;
    L->g.ws_current = 0;
}

/* Builds L's description from W now (blocking), timing it. */
static spartan_status build(spartan_model *m, sp_layer *L) {
    sp_gemm_state *g = &L->g;
    const double t0 = sp_now_ms();
    spartan_status st = spartan_wsparse_build(g->ws, g->w);
    if (st != SPARTAN_OK) return st;
    m->ctx->syncs++;
    g->ws_build_ms = sp_now_ms() - t0;
    g->ws_builds++;
    g->ws_current = 1;
    for (int p = 0; p < SPARTAN_PASS_COUNT; p++) g->ws_warm[p] = 0;
    g->ws_density = (double)spartan_wsparse_nnz(g->ws) / (double)(g->k * g->n);
    return SPARTAN_OK;
}

/* The passes the path covers: forward, and backward by input where the layer computes dX. */
static int covered(const sp_layer *L, int p) {
    return p == SPARTAN_PASS_FWD || (p == SPARTAN_PASS_BWD_INPUT && L->need_dx);
}

spartan_status sp_wpath_plan(spartan_model *m, size_t step) {
    const sp_dropback *db = m->dropback;
    const int sparse_w = db && db->updates && db->last_d == 0.0f;
    for (size_t i = 0; i < m->nlayers; i++) {
        sp_layer *L = &m->layers[i];
        sp_gemm_state *g = &L->g;
        for (int p = 0; p < SPARTAN_PASS_COUNT; p++) g->ws_use[p] = 0;
        if (!g->ws || !sparse_w) continue;
        if (!g->ws_current) {
            /* worth a build: the first (to measure), or when the time it saves per step until
             * the next change pays for it */
            double gain = 0.0;
            for (int p = 0; p < SPARTAN_PASS_COUNT; p++)
                if (covered(L, p) && g->ws_ms[p] > 0.0 && g->alt_ms[p] > g->ws_ms[p])
                    gain += g->alt_ms[p] - g->ws_ms[p];
            const double steps = 1.0 / (g->ws_change > MIN_RATE ? g->ws_change : MIN_RATE);
            if (!g->ws_builds || gain * steps > g->ws_build_ms || m->wpath_forced == 1) {
                spartan_status st = build(m, L);
                if (st != SPARTAN_OK) return st;
            }
        }
        if (!g->ws_current) continue;
        for (int p = 0; p < SPARTAN_PASS_COUNT; p++) {
            if (!covered(L, p)) continue;
            int use = g->ws_ms[p] == 0.0    ? 1 /* not measured yet */
                      : g->alt_ms[p] == 0.0 ? 0
                                            : g->ws_ms[p] < g->alt_ms[p];
            if (g->ws_ms[p] > 0.0 && g->alt_ms[p] > 0.0 && step % RECHECK == (size_t)p)
                use = !use; /* the slower one again, now and then */
            if (m->wpath_forced == 1) use = 1;
            g->ws_use[p] = use;
        }
    }
    return SPARTAN_OK;
}

static void ema(double *avg, double x) {
    *avg = *avg > 0.0 ? (1.0 - EMA) * *avg + EMA * x : x;
}

void sp_wpath_observe(sp_layer *L, int p, double seconds) {
    sp_gemm_state *g = &L->g;
    if (!g->ws || seconds <= 0.0) return;
    if (g->ws_use[p]) {
        g->ws_calls[p]++;
        if (g->ws_warm[p]++) ema(&g->ws_ms[p], 1e3 * seconds); /* not the first since a build */
    } else if (covered(L, p)) {
        ema(&g->alt_ms[p], 1e3 * seconds);
    }
}

void sp_wpath_updated(spartan_model *m) {
    const sp_dropback *db = m->dropback;
    if (!db) return;
    for (size_t i = 0; i < m->nlayers; i++) {
        sp_gemm_state *g = &m->layers[i].g;
        if (!g->ws) continue;
        const int grew = db->joined[g->ws_slot] > 0;
        if (grew) g->ws_current = 0;
        g->ws_change = (1.0 - CHANGE_EMA) * g->ws_change + CHANGE_EMA * grew;
        for (int p = 0; p < SPARTAN_PASS_COUNT; p++) g->ws_use[p] = 0; /* until the next plan */
    }
}
