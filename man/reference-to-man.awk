# Turns `carteiro check-config --reference` into man(7) text: a subsection per table, a tagged
# paragraph per key. Backslashes and leading dots are escaped.
function esc(s) { gsub(/\\/, "\\e", s); sub(/^[.']/, "\\\\\\&&", s); return s }
/^\[/ { printf ".SS %s\n", esc($0); next }
/^      / { sub(/^ +/, ""); printf "%s\n", esc($0); next }
/^  [A-Za-z_.]+ = / { sub(/^ +/, ""); k = $0; sub(/ = .*/, "", k); v = $0; sub(/^[^=]*= /, "", v); printf ".TP\n.B %s\n%s.\n.br\n", esc(k), esc(v); next }
/^  / { sub(/^ +/, ""); printf ".PP\n%s\n", esc($0); next }
/^$/ { next }
{ printf "%s\n", esc($0) }
