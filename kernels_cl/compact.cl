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
// order (mode 1), the flags in column-major tile order (mode 2), or the counts plus one spare
// slot per non-empty tile (mode 3: the element offsets; the spare slot lets the scatter write
// every element unconditionally, without a branch per element, and advance only past
// non-zeros: a trailing zero lands in the spare slot).

#define TR SP_TILE_ROWS
#define TC SP_TILE_COLS

inline uint scan_value(__global const uint *in, const uint i, const uint mode, const uint tiles_r,
                       const uint tiles_c) {
    if (mode == 0) return in[i];
    if (mode == 1) return in[i] != 0;
    if (mode == 3) return in[i] + (in[i] != 0); // a non-empty tile's slots plus one spare
    return in[(i % tiles_r) * tiles_c + i / tiles_r] != 0;
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
                              __global ushort *idx_r, __global ushort *idx_c) {
    const uint t = get_global_id(0);
    if (t >= tiles_r * tiles_c || counts[t] == 0) return;
    const uint tr = t / tiles_c, tc = t % tiles_c;
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
            for (uint c = c0; c < cend; c++) {
                idx_r[base + p] = (ushort)(c - c0);
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
            for (uint r = r0; r < rend; r++) {
                idx_c[base + p] = (ushort)(r - r0);
                p += x[(size_t)r * cols + c] != 0.0f;
            }
        }
        off[TC] = (ushort)p;
    }
}
