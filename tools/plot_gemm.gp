# Speedup of the sparse path over the best dense one, against the measured sparsity, from the
# CSV of `spartan-bench gemm --csv FILE` (docs/benchmarks.md). One panel per pass and pattern,
# one line per GEMM shape, with the ideal 1/(1-s) and break-even (1x). Rows whose result was
# wrong (ok = 0) have no speedup and are not drawn.
#
#   gnuplot -e "csv='gemm.csv'; out='gemm.png'" tools/plot_gemm.gp
#   gnuplot -e "csv='gemm.csv'; out='gemm.png'; dev='EPYC'" tools/plot_gemm.gp  (one device)
#
# Columns used: 1 device, 2 pass, 6 shape, 7 label, 8 pattern, 10 measured_sparsity,
# 19 speedup, 25 ok. Needs awk (the lists of panels and shapes come from the file).

if (!exists("csv")) csv = 'gemm.csv'
if (!exists("out")) out = 'gemm.png'
if (!exists("dev")) dev = ''

set datafile separator comma

# "pass/pattern" panels and shapes, in the order the benchmark wrote them
awk_rows = sprintf("awk -F, 'NR > 1 && index($1, \"%s\") > 0' '%s'", dev, csv)
panels = system(awk_rows . " | awk -F, '{ p = $2 \"/\" $8 } !seen[p]++ { print p }'")
shapes = system(awk_rows . " | awk -F, '!seen[$6]++ { print $6 }'")
if (words(panels) == 0) {
    print sprintf("plot_gemm.gp: no rows in %s", csv)
    exit
}
label(s) = system(sprintf("awk -F, '$6 == \"%s\" { gsub(/\"/, \"\", $7); print $7; exit }' '%s'", s, csv))
panel_pass(p) = p[1:strstrt(p, "/") - 1]
panel_pattern(p) = p[strstrt(p, "/") + 1:]

npanels = words(panels)
nslots = npanels + 1                       # the last slot holds the legend, shared by all
ncols = nslots < 3 ? nslots : 3
nrows = (nslots + ncols - 1) / ncols

if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
    set terminal pngcairo size 640 * ncols, 520 * nrows font ",10"
} else {
    set terminal png size 640 * ncols, 520 * nrows
}
set output out
set termoption noenhanced

set multiplot layout nrows, ncols title sprintf("spartan-bench gemm: sparse / best dense (%s)", csv)
set logscale y
set yrange [0.05:150]
# x stretched as -log10(1 - s): the high sparsities get room and the ideal is a straight line
set xrange [0:0.995]
set nonlinear x via -log10(1 - x) inverse 1 - 10**(-x)
set xtics ("0" 0, "50" 0.5, "70" 0.7, "80" 0.8, "90" 0.9, "95" 0.95, "99" 0.99)
set xlabel "measured sparsity (% zeros)"
set ylabel "speedup (x)"
set grid xtics ytics
unset key
set samples 400

ideal(x) = x < 0.995 ? 1.0 / (1.0 - x) : 1/0

do for [pi = 1:npanels] {
    pnl = word(panels, pi)
    pas = panel_pass(pnl)
    pat = panel_pattern(pnl)
    set title sprintf("%s, pattern %s", pas, pat)
    plot ideal(x) with lines lc rgb "gray40" dt 2 lw 1.5 title "ideal 1/(1-s)", \
         1 with lines lc rgb "black" lw 1 title "break-even", \
         for [i = 1:words(shapes)] csv \
             using ((strcol(2) eq pas && strcol(8) eq pat && strcol(6) eq word(shapes, i) \
                     && strstrt(strcol(1), dev) > 0 && $25 == 1) ? $10 : 1/0):19 \
             with linespoints lt i dt 1 + (i > 8) pt 1 + i % 13 ps 0.8 lw 1.5 notitle
}

# the legend: the same styles, drawn outside an empty frame
unset title
unset border
unset tics
unset xlabel
unset ylabel
unset grid
unset nonlinear x
unset logscale y
set xrange [0:1]
set yrange [0:1]
set key center center font ",10" spacing 1.1 box
plot 2 with lines lc rgb "gray40" dt 2 lw 1.5 title "ideal 1/(1-s)", \
     2 with lines lc rgb "black" lw 1 title "break-even (1x)", \
     for [i = 1:words(shapes)] 2 with linespoints lt i dt 1 + (i > 8) pt 1 + i % 13 ps 0.8 \
         lw 1.5 title sprintf("%s  %s", word(shapes, i), label(word(shapes, i)))
unset multiplot
set output
print sprintf("plot_gemm.gp: wrote %s (%d panels, %d shapes)", out, npanels, words(shapes))
