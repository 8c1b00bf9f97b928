/* Dropback's pool and step (dropback.h); the kernels' side is ops/dropback.c. */
#include <math.h>
#include <stdlib.h>

#include "nn/nn_internal.h"

void sp_dropback_free(spartan_context *ctx, sp_dropback *db) {
    if (!db) return;
    sp_dropback_dev_free(ctx, &db->dev);
    free(db->p);
    free(db->joined);
    free(db);
}

/* The elements the configuration keeps of total: dropback_keep, else the density's share
 * (rounded, at least 1); 0: off. */
static size_t budget(const spartan_train_config *cfg, size_t total) {
    if (cfg->dropback_keep) return cfg->dropback_keep;
    if (!(cfg->dropback_density > 0.0f)) return 0;
    const double k = floor((double)cfg->dropback_density * (double)total + 0.5);
    return k < 1.0 ? 1 : (size_t)k;
}

spartan_status sp_dropback_make(spartan_model *m, sp_dropback **out) {
    *out = NULL;
    const spartan_train_config *cfg = &m->cfg;
    if (!cfg->dropback_keep && !(cfg->dropback_density > 0.0f)) return SPARTAN_OK;
    size_t count = 0, total = 0;
    for (size_t i = 0; i < m->nlayers; i++) {
        const sp_layer *L = &m->layers[i];
        if (!L->ops->params) continue;
        if (!L->ops->gemm)
            return sp_invalid(m->ctx,
                              "Dropback: layer %s (%s) is not supported: its initial values "
                              "cannot be regenerated",
                              L->name, L->ops->name);
        count += 2;
        total += L->g.k * L->g.n + L->g.n;
    }
    const size_t k = budget(cfg, total);
    if (!count || k > total)
        return sp_invalid(m->ctx, "Dropback: a budget of %zu of the model's %zu parameters", k,
                          total);
    sp_dropback *db = calloc(1, sizeof *db);
    if (db) db->p = calloc(count, sizeof *db->p);
    if (db) db->joined = calloc(count, sizeof *db->joined);
    if (!db || !db->p || !db->joined) {
        if (db) free(db->p);
        free(db);
        return sp_err_set(&m->ctx->err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "Dropback");
    }
    size_t off = 0, n = 0;
    for (size_t i = 0; i < m->nlayers; i++) {
        sp_layer *L = &m->layers[i];
        if (!L->ops->params) continue;
        db->p[n++] =
            (sp_dropback_param){L->g.w, off, i, sp_gemm_w0_key(L, cfg->seed), sp_gemm_w0_scale(L)};
        off += L->g.w->numel;
        db->p[n++] = (sp_dropback_param){L->g.b, off, i, 0, 0.0f};
        off += L->g.b->numel;
    }
    db->decay = cfg->dropback_decay;
    db->interval = cfg->dropback_interval;
    db->ramp = cfg->dropback_ramp;
    spartan_status st = sp_dropback_dev_make(m->ctx, total, count, k, &db->dev);
    if (st != SPARTAN_OK) {
        sp_dropback_free(m->ctx, db);
        return st;
    }
    *out = db;
    return SPARTAN_OK;
}

size_t sp_dropback_budget(const sp_dropback *db, size_t step) {
    const size_t n = db->dev.total, k = db->dev.k;
    if (step >= db->ramp) return k;
    const double left = 1.0 - (double)step / (double)db->ramp;
    return k + (size_t)floor((double)(n - k) * left * left * left);
}

/* The selection of an update: the scores, the threshold's three levels, the reset. */
static spartan_status select_set(spartan_context *ctx, sp_dropback *db, size_t step, float d) {
    spartan_status st = sp_dropback_begin(ctx, &db->dev, 1, sp_dropback_budget(db, step));
    for (size_t i = 0; i < db->dev.params && st == SPARTAN_OK; i++) {
        const sp_dropback_param *p = &db->p[i];
        st = sp_dropback_score(ctx, &db->dev, p->w, p->off, p->key, p->scale, d);
    }
    if (st == SPARTAN_OK) st = sp_dropback_guess(ctx, &db->dev);
    for (unsigned level = 0; level < 3 && st == SPARTAN_OK; level++) {
        for (size_t i = 0; i < db->dev.params && st == SPARTAN_OK; i++)
            st = sp_dropback_hist(ctx, &db->dev, db->p[i].w, db->p[i].off, level);
        if (st == SPARTAN_OK) st = sp_dropback_select(ctx, &db->dev, level);
    }
    for (size_t i = 0; i < db->dev.params && st == SPARTAN_OK; i++) {
        const sp_dropback_param *p = &db->p[i];
        st = sp_dropback_apply(ctx, &db->dev, p->w, p->off, i, p->key, p->scale, d);
    }
    return st;
}

/* An update between selections: the set kept, the others reset. */
static spartan_status keep_set(spartan_context *ctx, sp_dropback *db, float d) {
    spartan_status st = sp_dropback_begin(ctx, &db->dev, 0, db->dev.k);
    for (size_t i = 0; i < db->dev.params && st == SPARTAN_OK; i++) {
        const sp_dropback_param *p = &db->p[i];
        st = sp_dropback_member(ctx, &db->dev, p->w, p->off, p->key, p->scale, d);
    }
    return st;
}

spartan_status sp_dropback_step(spartan_context *ctx, sp_dropback *db, size_t step) {
    const float d = sp_dropback_decay(db->decay, step);
    const int selects = !db->updates || step % db->interval == 0;
    spartan_status st = selects ? select_set(ctx, db, step, d) : keep_set(ctx, db, d);
    if (st == SPARTAN_OK) st = sp_dropback_joined_async(ctx, &db->dev, db->joined);
    if (st != SPARTAN_OK) return st;
    db->selections += selects;
    db->last_d = d;
    db->updates++;
    return SPARTAN_OK;
}

spartan_status spartan_model_dropback_info(spartan_model *m, spartan_dropback_info *out,
                                           size_t *layer_tracked) {
    if (!m || !out)
        return sp_invalid(m ? m->ctx : NULL, "spartan_model_dropback_info: NULL argument");
    const sp_dropback *db = m->dropback;
    if (!m->prepared || !db)
        return sp_invalid(m->ctx, "spartan_model_dropback_info: %s",
                          m->prepared ? "Dropback is off" : "the model is not prepared");
    *out = (spartan_dropback_info){.total = db->dev.total,
                                   .keep = db->dev.k,
                                   .decay = db->last_d,
                                   .updates = db->updates,
                                   .selections = db->selections};
    for (size_t i = 0; layer_tracked && i < m->nlayers; i++) layer_tracked[i] = 0;
    if (!db->updates) return SPARTAN_OK;
    unsigned *t = malloc(2 * db->dev.params * sizeof *t);
    if (!t) return sp_err_set(&m->ctx->err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "Dropback counts");
    sp_dropback_counts c;
    spartan_status st = sp_dropback_read(m->ctx, &db->dev, t, t + db->dev.params, &c);
    if (st == SPARTAN_OK) {
        out->threshold = c.threshold;
        out->joined = c.joined;
        out->joined_total = c.joined_total;
        out->full_counts = c.misses;
    }
    for (size_t i = 0; i < db->dev.params && st == SPARTAN_OK; i++) {
        out->tracked += t[i];
        if (layer_tracked) layer_tracked[db->p[i].layer] += t[i];
    }
    free(t);
    return st;
}

spartan_status spartan_model_param_initial(spartan_model *m, size_t i, spartan_tensor *out) {
    if (!m || !out)
        return sp_invalid(m ? m->ctx : NULL, "spartan_model_param_initial: NULL argument");
    if (!m->prepared || i >= m->nparams)
        return sp_invalid(m->ctx, "spartan_model_param_initial: no parameter %zu", i);
    if (out->numel != m->params[i].value->numel)
        return sp_invalid(m->ctx, "spartan_model_param_initial: %zu elements for %s's %zu",
                          out->numel, m->params[i].name, m->params[i].value->numel);
    size_t at = 0;
    for (size_t l = 0; l < m->nlayers; l++) {
        const sp_layer *L = &m->layers[l];
        const size_t np = L->ops->params ? L->ops->params(L, NULL) : 0;
        if (i >= at + np) {
            at += np;
            continue;
        }
        if (!L->ops->gemm)
            return sp_invalid(m->ctx,
                              "spartan_model_param_initial: %s's initial values cannot be "
                              "regenerated",
                              m->params[i].name);
        /* the weight, then the bias (zeros) */
        return i == at
                   ? sp_w0_fill(m->ctx, out, sp_gemm_w0_key(L, m->cfg.seed), sp_gemm_w0_scale(L))
                   : spartan_tensor_fill(out, 0.0f);
    }
    return sp_invalid(m->ctx, "spartan_model_param_initial: no parameter %zu", i);
}
