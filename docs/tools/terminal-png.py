#!/usr/bin/env python3
"""Renders a command's coloured terminal output as the PNG the README shows.

    docs/tools/terminal-png.py OUT.png -- COMMAND ARGS...

The command runs under script(1), so it sees a terminal and colours as it would for a
user; its SGR codes (bold, dim, red, yellow, cyan) become an SVG in DejaVu Sans Mono,
which rsvg-convert (Debian's librsvg2-bin) turns into the PNG."""
import html, os, re, subprocess, sys

out, command = sys.argv[1], sys.argv[sys.argv.index("--") + 1:]
shown = "$ " + " ".join([os.path.basename(command[0])] + command[1:])
text = subprocess.run(["script", "-qc", " ".join(command), "/dev/null"], capture_output=True,
                      text=True, env=dict(os.environ, COLUMNS="200")).stdout.replace("\r", "")
colours = {"31": "#e06c75", "33": "#e5c07b", "36": "#56b6c2"}
lines = [[(shown, {"fill": "#c8c8c8"})], []]
for raw in text.rstrip("\n").split("\n"):
    style, spans = {}, []
    for part in re.split(r"(\x1b\[[0-9;]*m)", raw):
        codes = re.fullmatch(r"\x1b\[([0-9;]*)m", part)
        if codes:
            for code in (codes.group(1) or "0").split(";"):
                if code == "0": style = {}
                elif code == "1": style["weight"] = "bold"
                elif code == "2": style["fill"] = "#8a8a8a"
                elif code in colours: style["fill"] = colours[code]
        elif part:
            spans.append((part, dict(style)))
    lines.append(spans)
size, line_height, char_width, margin = 15, 20, 9.04, 20
width = int(max(sum(len(t) for t, _ in l) for l in lines) * char_width + 2 * margin)
height = len(lines) * line_height + 2 * margin
rows = []
for number, spans in enumerate(lines):
    y = margin + (number + 1) * line_height - 5
    tspans = "".join(
        f'<tspan fill="{s.get("fill", "#e6e6e6")}" font-weight="{s.get("weight", "normal")}">{html.escape(t)}</tspan>'
        for t, s in spans)
    rows.append(f'<text x="{margin}" y="{y}" xml:space="preserve">{tspans}</text>')
svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">'
       f'<rect width="100%" height="100%" fill="#282c34"/>'
       f'<g font-family="DejaVu Sans Mono" font-size="{size}">{"".join(rows)}</g></svg>')
subprocess.run(["rsvg-convert", "-o", out], input=svg.encode(), check=True)
