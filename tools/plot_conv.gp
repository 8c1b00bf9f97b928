# Speedup of the sparse convolution over the best dense path of the same run, against the
# measured sparsity, from the CSV of `spartan-bench conv --csv FILE` (docs/benchmarks.md). One
# panel per pass and pattern, one line per layer, with the ideal 1/(1-s) and break-even (1x).
# Rows whose result was wrong (ok = 0) are not drawn.
#
#   gnuplot -e "csv='conv.csv'; out='conv.png'" tools/plot_conv.gp
#
# Columns used: 2 pass, 4 label, 5 pattern, 7 measured_sparsity, 8 path, 14 speedup, 19 ok.
# Needs awk (the lists of panels and layers come from the file).

if (!exists("csv")) csv = 'conv.csv'
if (!exists("out")) out = 'conv.png'

set datafile separator comma

sparse_rows = sprintf("awk -F, 'NR > 1 && $8 == \"sparse\"' '%s'", csv)
panels = system(sparse_rows . " | awk -F, '{ p = $2 \"/\" $5 } !seen[p]++ { print p }'")
labels = system(sparse_rows . " | awk -F, '{ gsub(/\"/, \"\", $4); gsub(/ /, \"_\", $4) } !seen[$4]++ { print $4 }'")
if (words(panels) == 0) {
    print sprintf("plot_conv.gp: no sparse rows in %s", csv)
    exit
}
panel_pass(p) = p[1:strstrt(p, "/") - 1]
panel_pattern(p) = p[strstrt(p, "/") + 1:]
# a layer's name as the file has it (the list above has its spaces as underscores)
spaced(s) = system(sprintf("echo '%s' | tr _ ' '", s))

npanels = words(panels)
nslots = npanels + 1
ncols = nslots < 3 ? nslots : 3
nrows = (nslots + ncols - 1) / ncols

if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
    set terminal pngcairo size 640 * ncols, 520 * nrows font ",10"
} else {
    set terminal png size 640 * ncols, 520 * nrows
}
set output out
set termoption noenhanced

set multiplot layout nrows, ncols title sprintf("spartan-bench conv: sparse / best dense (%s)", csv)
set logscale y
set yrange [0.05:30]
set xrange [0:0.995]
set nonlinear x via -log10(1 - x) inverse 1 - 10**(-x)
set xtics ("0" 0, "30" 0.3, "50" 0.5, "70" 0.7, "90" 0.9, "95" 0.95, "99" 0.99)
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
    plot ideal(x) with lines lc rgb "gray40" dt 2 lw 1.5, \
         1 with lines lc rgb "black" lw 1, \
         for [i = 1:words(labels)] csv \
             using ((strcol(2) eq pas && strcol(5) eq pat && strcol(8) eq "sparse" \
                     && strcol(4) eq spaced(word(labels, i)) && $19 == 1) ? $7 : 1/0):14 \
             with linespoints lt i dt 1 + (i > 8) pt 1 + i % 13 ps 0.8 lw 1.5
}

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
     for [i = 1:words(labels)] 2 with linespoints lt i dt 1 + (i > 8) pt 1 + i % 13 ps 0.8 \
         lw 1.5 title spaced(word(labels, i))
unset multiplot
set output
print sprintf("plot_conv.gp: wrote %s (%d panels, %d layers)", out, npanels, words(labels))
