# The symbols of .text input sections of 16 KiB or more, from an lld link map (-Map):
# columns VMA, LMA, size and alignment, then the output section unindented, each input
# section indented by 8 and its symbols by 16. Used by link-order.sh.
function hex(text,   i, value) {
    value = 0
    for (i = 1; i <= length(text); i++) value = value * 16 + index("0123456789abcdef", substr(text, i, 1)) - 1
    return value
}
match($0, /^ *[0-9a-f]+ +[0-9a-f]+ +[0-9a-f]+ +[0-9]+ /) {
    rest = substr($0, RLENGTH + 1)
    if (rest !~ /^ /) { text = rest == ".text"; next }
    if (!text) next
    if (rest ~ /^        [^ ]/) { split($0, field, " "); large = hex(field[3]) >= 16384; next }
    if (large && rest ~ /^                [^ ]/) { sub(/^ +/, "", rest); print rest }
}
