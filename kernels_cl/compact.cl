// The compaction engine: from the monitor's per-tile counts, (1) exclusive scans, and (2) a
// scatter that writes, for every non-empty tile, its place in the tile lists and the positions
// of its non-zeros inside the tile (16 bits each), row by row (ROWS form) and column by column
// (COLS form). Values are not copied: the GEMMs read them from the matrix itself, tile by tile
// (a tile is a few cache lines), which halves the compaction's memory traffic. The format is
// described in docs/sparse-format.md.
//
// The scan is work-efficient and multi-pass: each work-item sums a chunk of `chunk` values
// (compact_scan_sums), the chunk sums are scanned the same way (recursively, by the host), and
// each work-item then scans its chunk starting from its chunk's offset (compact_scan_apply).
// The scanned sequence is one of: the counts (mode 0), the non-empty flags in row-major tile
// order (mode 1), the flags in column-major tile order (mode 2), or the counts plus SPARE
// slots per non-empty tile (mode 3: the element offsets; the spare slots let the scatter write
// positions unconditionally, eight at a time, and advance only past the non-zeros).

#define TR SP_TILE_ROWS
#define TC SP_TILE_COLS
// Spare slots after each non-empty tile's positions: the scatter writes 8 positions at a time
// and advances past the non-zeros only, so it may write up to 7 slots beyond the last one.
#define SPARE 8

// Eight elements at once: bit l of the mask is set when v.sl is not zero; lut[mask] holds the
// lanes of the set bits, in order, in its first popcount(mask) entries.
inline uint nz_mask8(const float8 v) {
    const int8 bits = (v != (float8)(0.0f)) & (int8)(1, 2, 4, 8, 16, 32, 64, 128);
    const int4 a = bits.lo | bits.hi;
    const int2 b = a.lo | a.hi;
    return (uint)(b.x | b.y);
}

inline uint scan_value(__global const uint *in, const uint i, const uint mode, const uint tiles_r,
                       const uint tiles_c) {
    if (mode == 0) return in[i];
    if (mode == 1) return in[i] != 0;
    if (mode == 3) return in[i] + (in[i] != 0 ? SPARE : 0); // slots plus the spare ones
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

// One work-item per tile. Empty tiles write nothing (no list entry refers to them).
__kernel void compact_scatter(__global const float *x, const uint rows, const uint cols,
                              const uint tiles_r, const uint tiles_c, const uint forms,
                              __global const uint *counts, __global const uint *elem_off,
                              __global const uint *tpos_row, __global const uint *tpos_col,
                              __global uint *list_row, __global uint *list_col,
                              __global ushort *rowoff, __global ushort *coloff,
                              __global uint *idx_r, __global uint *idx_c,
                              __global const uint8 *lut) {
    const uint t = get_global_id(0);
    if (t >= tiles_r * tiles_c || counts[t] == 0) return;
    const uint tr = t / tiles_c, tc = SP_REM(t, tiles_c);
    const uint r0 = tr * TR, c0 = tc * TC;
    const uint rend = min(r0 + TR, rows), cend = min(c0 + TC, cols);
    const uint base = elem_off[t];
    if (forms & 1) {
        list_row[tpos_row[t]] = t;
        __global ushort *off = rowoff + (size_t)t * (TR + 1);
        uint p = 0;
        for (uint r = r0; r < r0 + TR; r++) {
            off[r - r0] = (ushort)p;
            if (r >= rend) continue;
            __global const float *xr = x + (size_t)r * cols;
            uint c = c0;
            for (; c + 8 <= cend; c += 8) {
                const uint m = nz_mask8(vload8(0, xr + c));
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
        list_col[tpos_col[tc * tiles_r + tr]] = t;
        __global ushort *off = coloff + (size_t)t * (TC + 1);
        uint p = 0;
        for (uint c = c0; c < c0 + TC; c++) {
            off[c - c0] = (ushort)p;
            if (c >= cend) continue;
            uint r = r0;
            for (; r + 8 <= rend; r += 8) {
                __global const float *xc = x + (size_t)r * cols + c;
                const float8 v = (float8)(xc[0], xc[cols], xc[2 * cols], xc[3 * cols],
                                          xc[4 * cols], xc[5 * cols], xc[6 * cols], xc[7 * cols]);
                const uint m = nz_mask8(v);
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
}
