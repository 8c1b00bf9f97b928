# The plots of `spartan-bench portability` (docs/benchmarks.md), which runs this script itself
# after writing its data files next to the report; by hand:
#
#   gnuplot -e "dir='portability'; ndev=2; ngemm=3; nconv=2" tools/plot_portability.gp
#
# ndev: the timed devices (the columns of port-dense.dat), ngemm and nconv: the layers of the GEMM
# and convolution speedup files. It draws, for the devices side by side:
#   dense.png         the best dense path's GFLOP/s per layer (forward pass), log scale
#   speedup-gemm.png  the sparse GEMM's speedup over the best dense path against the sparsity,
#   speedup-conv.png  the same for the convolutions: one panel per pass, colour = device,
#                     point = layer, with the ideal 1 / (1 - s) (off the top where it
#                     exceeds the measured speedups) and break-even (1x)
#   train.png         training images/s per preset and policy, log scale
# Data: port-dense.dat and port-train.dat (a header line with the device names, then one row per
# category, tab-separated, '?' where missing); port-speedup-*.dat (one block per pass, device and
# layer, in that order, each headed by its title).

if (!exists("dir")) dir = 'portability'
if (!exists("ndev")) ndev = 1
if (!exists("ngemm")) ngemm = 1
if (!exists("nconv")) nconv = 1

set datafile separator "\t"
set datafile missing "?"
png = strstrt(GPVAL_TERMINALS, "pngcairo") > 0 ? "pngcairo" : "png"
cluster_width = 220 + 90 * ndev

# ---- bars: dense GFLOP/s and training images/s -------------------------------------------------
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y
set grid ytics
set key top right
set xtics rotate by -25 scale 0 nomirror
set bmargin 7

rows_dense = system(sprintf("awk 'END { print NR - 1 }' '%s/port-dense.dat'", dir)) + 0
eval sprintf("set terminal %s size %d, 560 font ',10' noenhanced", png, 360 + cluster_width * rows_dense / 2)
set output dir . '/dense.png'
set title "Dense GEMM and convolution: the best device path, forward pass"
set ylabel "GFLOP/s (log scale)"
plot for [i = 2:ndev + 1] dir . '/port-dense.dat' using i:xtic(1) title columnheader(i)

rows_train = system(sprintf("awk 'END { print NR - 1 }' '%s/port-train.dat'", dir)) + 0
eval sprintf("set terminal %s size %d, 560 font ',10' noenhanced", png, 360 + cluster_width * rows_train / 2)
set output dir . '/train.png'
set title "Training: images/s of a short epoch per preset and policy"
set ylabel "images/s (log scale)"
plot for [i = 2:ndev + 1] dir . '/port-train.dat' using i:xtic(1) title columnheader(i)

# ---- lines: sparse speedup against sparsity, one panel per pass --------------------------------
unset logscale y
set style fill empty
set style data linespoints
set xtics rotate by 0 scale 1 mirror
set bmargin
set xrange [0:92]
set xlabel "zeros of the sparse operand (%)"
set ylabel "speedup over the best dense path"
set key top left font ',9' opaque
passes = "fwd bwd_input bwd_weight"
ideal(s) = 1.0 / (1.0 - s / 100.0)

do for [op in "gemm conv"] {
    nl = op eq "gemm" ? ngemm : nconv
    if (nl > 0) {
        file = dir . '/port-speedup-' . op . '.dat'
        # the measured speedups set the scale (the ideal runs off the top at high sparsity)
        stats file using 2 nooutput
        top = STATS_max * 1.25 > 2 ? STATS_max * 1.25 : 2
        set yrange [0:top]
        eval sprintf("set terminal %s size 1500, 520 font ',10' noenhanced", png)
        set output dir . '/speedup-' . op . '.png'
        set multiplot layout 1, 3 title (op eq "gemm" ? "Sparse GEMM" : "Sparse convolution") . \
            " against the best dense path (random zeros)"
        do for [p = 0:2] {
            set title word(passes, p + 1)
            plot for [d = 0:ndev - 1] for [l = 0:nl - 1] file index (p * ndev + d) * nl + l \
                     using 1:2 linecolor d + 1 pointtype l + 4 pointsize 1.2 linewidth 1.5 \
                     title columnheader(1), \
                 ideal(x) with lines dashtype 2 linecolor rgb "gray50" title "ideal 1/(1-s)", \
                 1 with lines dashtype 3 linecolor rgb "black" title "break-even"
            unset key
        }
        unset multiplot
        set key top left font ',9' opaque
    }
}
