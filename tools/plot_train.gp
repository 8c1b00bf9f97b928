# Per-layer sparsity and the path each GEMM pass took, step by step, for one model and policy,
# from the trace of `spartan-bench train --trace FILE.csv` (docs/benchmarks.md).
#   top:    the latest monitored fraction of zeros of each GEMM layer's input X (solid) and of
#           the gradient dY reaching it (dashed), one colour per layer
#   bottom: one lane per layer and pass (the first layer has no bwd_input), low = dense,
#           high = sparse
#
#   gnuplot -e "csv='trace.csv'; out='train.png'; model='vgg-small'; policy='adaptive'" \
#       tools/plot_train.gp
#
# Columns used: 1 model, 2 policy, 4 step, 5 layer_index, 6 layer, 7 pass, 8 path, 9 zeros_last,
# 10 grad_zeros_last (< 0: not sampled yet, not drawn). Needs awk.

if (!exists("csv")) csv = 'trace.csv'
if (!exists("out")) out = 'train.png'
if (!exists("model")) model = 'vgg-small'
if (!exists("policy")) policy = 'adaptive'

set datafile separator comma

# the rows of this model and policy, optionally of one layer and pass, as a gnuplot data source
rows(cond) = sprintf("< awk -F, 'NR > 1 && $1 == \"%s\" && $2 == \"%s\" %s' '%s'", model, policy, cond, csv)
layer_rows(i, pass) = rows(sprintf("&& $5 == %d && $7 == \"%s\"", i, pass))

# GEMM layers in model order (layer_index = position in this list)
layers = system(sprintf("awk -F, 'NR > 1 && $1 == \"%s\" && $2 == \"%s\" && !seen[$5]++ { print $6 }' '%s'", model, policy, csv))
nlayers = words(layers)
if (nlayers == 0) {
    print sprintf("plot_train.gp: no rows for model %s, policy %s in %s", model, policy, csv)
    exit
}
# lanes "index:pass" in the order of the trace (layer by layer, fwd, bwd_input, bwd_weight; the
# first layer has no bwd_input), drawn top to bottom
lanes = system(sprintf("awk -F, 'NR > 1 && $1 == \"%s\" && $2 == \"%s\" && !seen[$5 \":\" $7]++ { print $5 \":\" $7 }' '%s'", model, policy, csv))
nlanes = words(lanes)
lane_layer(w) = int(w[1:strstrt(w, ":") - 1])          # 0-based layer_index
lane_pass(w) = w[strstrt(w, ":") + 1:]
short(p) = p eq "fwd" ? "fwd" : p eq "bwd_input" ? "bwd_in" : "bwd_w"
lane_y(j) = nlanes - j + 1
SPARSE = 0.45                               # the lane's step up when the path is sparse

top_px = 420
lane_px = 24
height = top_px + 80 + lane_px * nlanes
if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
    set terminal pngcairo size 1100, height font ",10"
} else {
    set terminal png size 1100, height
}
set output out
set termoption noenhanced

set multiplot title sprintf("spartan-bench train: %s, policy %s (%s)", model, policy, csv)
split = 1.0 - (top_px + 40.0) / height

# ---- sparsity
set origin 0, split
set size 1, 1 - split - 30.0 / height
set lmargin 16
set rmargin 24
set xlabel "step"
set ylabel "fraction of zeros"
set yrange [0:1]
set ytics 0.1
set grid xtics ytics
set key outside right top title "X solid, dY dashed"
set style data steps
plot for [i = 1:nlayers] layer_rows(i - 1, "fwd") using 4:($9 >= 0 ? $9 : 1/0) \
         lt i lw 1.8 title word(layers, i), \
     for [i = 1:nlayers] layer_rows(i - 1, "fwd") using 4:($10 >= 0 ? $10 : 1/0) \
         lt i lw 1.2 dt 2 notitle

# ---- paths
set origin 0, 0
set size 1, split
unset ylabel
set yrange [0.5:nlanes + 0.5 + SPARSE]
set ytics () font ",9"
do for [j = 1:nlanes] {
    w = word(lanes, j)
    set ytics add (sprintf("%s %s", word(layers, lane_layer(w) + 1), short(lane_pass(w))) lane_y(j) + SPARSE / 2)
}
unset grid
set grid xtics
set key outside right top title "lower rail dense,\nupper rail sparse"
plot for [j = 1:nlanes] lane_y(j) with lines lc rgb "gray60" dt 3 lw 1 notitle, \
     for [j = 1:nlanes] lane_y(j) + SPARSE with lines lc rgb "gray60" dt 3 lw 1 notitle, \
     for [j = 1:nlanes] layer_rows(lane_layer(word(lanes, j)), lane_pass(word(lanes, j))) \
         using 4:(lane_y(j) + (strcol(8) eq "sparse" ? SPARSE : 0)) \
         lt lane_layer(word(lanes, j)) + 1 lw 2.5 \
         title (lane_pass(word(lanes, j)) eq "fwd" ? word(layers, lane_layer(word(lanes, j)) + 1) : "")
unset multiplot
set output
print sprintf("plot_train.gp: wrote %s (%s, %s, %d GEMM layers)", out, model, policy, nlayers)
