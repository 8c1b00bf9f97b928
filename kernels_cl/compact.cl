// The compaction engine. compact_scatter reads the matrix once: one work-item per tile counts
// its non-zeros and writes their positions inside the tile (row by row for the ROWS form,
// column by column for the COLS form) into the tile's own slots, eight positions at a time from
// a bit mask and a lookup table (the slots after the last one are spare: a store of eight may
// run past it). Then exclusive scans of the non-empty flags give each non-empty tile its place
// in the tile lists of its tile-row (row-major order) and tile-column (column-major order), and
// compact_lists writes them. Values are not copied: the GEMMs read them from the matrix itself,
// tile by tile (a tile is a few cache lines). The format: docs/sparse-format.md.
//
// The scan is work-efficient and multi-pass: each work-item sums a chunk of `chunk` values
// (compact_scan_sums), the chunk sums are scanned the same way (recursively, by the host), and
// each work-item then scans its chunk starting from its chunk's offset (compact_scan_apply).
// The scanned sequence is one of: plain values (mode 0: the recursion's chunk sums), the
// non-empty flags in row-major tile order (mode 1), or in column-major tile order (mode 2).

#define TR SP_TILE_ROWS
#define TC SP_TILE_COLS

inline uint scan_value(__global const uint *in, const uint i, const uint mode, const uint tiles_r,
                       const uint tiles_c) {
    if (mode == 0) return in[i];
    if (mode == 1) return in[i] != 0;
    return in[SP_REM(i, tiles_r) * tiles_c + i / tiles_r] != 0;
}

__kernel void compact_scan_sums(__global const uint *in, const uint n, const uint mode,
                                const uint tiles_r, const uint tiles_c, const uint chunk,
                                __global uint *sums) {
    const uint g = get_global_id(0);
    const uint b = g * chunk;
    if (b >= n) return;
    const uint e = min(n, b + chunk);
    uint s = 0;
    for (uint i = b; i < e; i++) s += scan_value(in, i, mode, tiles_r, tiles_c);
    sums[g] = s;
}

// out[i] = sum of values before i, out[n] = total. offsets: the exclusive scan of the chunk sums.
__kernel void compact_scan_apply(__global const uint *in, const uint n, const uint mode,
                                 const uint tiles_r, const uint tiles_c, const uint chunk,
                                 __global const uint *offsets, __global uint *out) {
    const uint g = get_global_id(0);
    const uint b = g * chunk;
    if (b >= n) return;
    const uint e = min(n, b + chunk);
    uint s = offsets[g];
    for (uint i = b; i < e; i++) {
        out[i] = s;
        s += scan_value(in, i, mode, tiles_r, tiles_c);
    }
    if (e == n) out[n] = s;
}

// One work-item per tile: counts the tile's non-zeros and writes their positions into the
// tile's own slots (SP_TILE_CAP of them, at t * SP_TILE_CAP: no scan is needed first, so the
// matrix is read once), plus the per-line offsets inside the tile, then the count and, reduced
// in local memory, one partial sum per work-group (as the monitor does).
__kernel __attribute__((reqd_work_group_size(SP_WG, 1, 1)))
void compact_scatter(__global const float *x, const uint rows, const uint cols,
                     const uint tiles_r, const uint tiles_c, const uint forms,
                     __global uint *counts, __global uint *partials,
                     __global ushort *rowoff, __global ushort *coloff,
                     __global uint *idx_r, __global uint *idx_c, __global const uint8 *lut) {
    __local uint sums[SP_WG];
    const uint t = get_global_id(0), lid = get_local_id(0);
    uint p = 0;
    if (t < tiles_r * tiles_c) {
        const uint tr = t / tiles_c, tc = SP_REM(t, tiles_c);
        const uint r0 = tr * TR, c0 = tc * TC;
        const uint rend = min(r0 + TR, rows), cend = min(c0 + TC, cols);
        const size_t base = (size_t)t * SP_TILE_CAP;
        if (forms & 1) {
            __global ushort *off = rowoff + (size_t)t * (TR + 1);
            p = 0;
            for (uint r = r0; r < r0 + TR; r++) {
                off[r - r0] = (ushort)p;
                if (r >= rend) continue;
                __global const float *xr = x + (size_t)r * cols;
                uint c = c0;
                for (; c + 8 <= cend; c += 8) {
                    const uint m = sp_nz_mask8(vload8(0, xr + c));
                    vstore8(lut[m] + (uint8)(c - c0), 0, idx_r + base + p);
                    p += popcount(m);
                }
                for (; c < cend; c++) {
                    idx_r[base + p] = c - c0;
                    p += xr[c] != 0.0f;
                }
            }
            off[TR] = (ushort)p;
        }
        if (forms & 2) {
            __global ushort *off = coloff + (size_t)t * (TC + 1);
            p = 0;
            for (uint c = c0; c < c0 + TC; c++) {
                off[c - c0] = (ushort)p;
                if (c >= cend) continue;
                uint r = r0;
                for (; r + 8 <= rend; r += 8) {
                    __global const float *xc = x + (size_t)r * cols + c;
                    const float8 v = (float8)(xc[0], xc[cols], xc[2 * cols], xc[3 * cols],
                                              xc[4 * cols], xc[5 * cols], xc[6 * cols],
                                              xc[7 * cols]);
                    const uint m = sp_nz_mask8(v);
                    vstore8(lut[m] + (uint8)(r - r0), 0, idx_c + base + p);
                    p += popcount(m);
                }
                for (; r < rend; r++) {
                    idx_c[base + p] = r - r0;
                    p += x[(size_t)r * cols + c] != 0.0f;
                }
            }
            off[TC] = (ushort)p;
        }
        counts[t] = p;
    }
    sums[lid] = p;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint s = SP_WG / 2; s > 0; s >>= 1) {
        if (lid < s) sums[lid] += sums[lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0) partials[get_group_id(0)] = sums[0];
}

// After the scans of the non-empty flags: each non-empty tile's entry in the tile lists.
__kernel void compact_lists(const uint ntiles, const uint tiles_r, const uint tiles_c,
                            const uint forms, __global const uint *counts,
                            __global const uint *tpos_row, __global const uint *tpos_col,
                            __global uint *list_row, __global uint *list_col) {
    const uint t = get_global_id(0);
    if (t >= ntiles || counts[t] == 0) return;
    if (forms & 1) list_row[tpos_row[t]] = t;
    if (forms & 2) list_col[tpos_col[SP_REM(t, tiles_c) * tiles_r + t / tiles_c]] = t;
}
