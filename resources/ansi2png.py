#!/usr/bin/env python3
"""Renders `tmux capture-pane -e` output (text with ANSI colours) to a PNG.

    ansi2png.py OUT.png PANE.ans [PANE.ans ...]

Several panes are placed side by side. Needs Pillow and the DejaVu Sans Mono font
(Debian: fonts-dejavu-core). Used by make-screenshot.sh; nothing here is specific to
raft-playground beyond the colours chosen.
"""
import re
import sys

if __name__ == "__main__" and (len(sys.argv) < 3 or sys.argv[1] in ("-h", "--help")):
    # Usage first: it needs no Pillow.
    print(__doc__.strip())
    sys.exit(0 if len(sys.argv) > 1 and sys.argv[1] in ("-h", "--help") else 2)

try:
    from PIL import Image, ImageDraw, ImageFont
except ImportError:
    sys.exit("ansi2png.py needs Pillow: pip install pillow (and fonts-dejavu-core for the font)")

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"
FONT_BOLD = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf"
SIZE = 15
BG = (24, 26, 33)
FG = (220, 220, 220)
# xterm-ish 16 colours, a little softened.
BASE16 = [
    (40, 42, 54), (220, 80, 80), (80, 200, 120), (230, 200, 90),
    (90, 140, 230), (200, 110, 210), (90, 200, 210), (200, 200, 200),
    (110, 110, 120), (255, 110, 110), (120, 230, 150), (250, 225, 120),
    (130, 170, 255), (230, 140, 240), (130, 230, 240), (255, 255, 255),
]
SGR = re.compile(r"\x1b\[([0-9;]*)m")


def color256(n):
    if n < 16:
        return BASE16[n]
    if n < 232:
        n -= 16
        steps = [0, 95, 135, 175, 215, 255]
        return (steps[n // 36], steps[(n // 6) % 6], steps[n % 6])
    v = 8 + (n - 232) * 10
    return (v, v, v)


def parse(text):
    """Lines of (char, fg, bg, bold) cells."""
    rows = []
    fg, bg, bold, reverse = FG, BG, False, False
    for line in text.split("\n"):
        cells = []
        pos = 0
        for m in SGR.finditer(line):
            for ch in line[pos:m.start()]:
                cells.append((ch, bg if reverse else fg, fg if reverse else bg, bold))
            pos = m.end()
            codes = [int(c) if c else 0 for c in m.group(1).split(";")]
            i = 0
            while i < len(codes):
                c = codes[i]
                if c == 0:
                    fg, bg, bold, reverse = FG, BG, False, False
                elif c == 1:
                    bold = True
                elif c == 22:
                    bold = False
                elif c == 7:
                    reverse = True
                elif c == 27:
                    reverse = False
                elif 30 <= c <= 37:
                    fg = BASE16[c - 30]
                elif 90 <= c <= 97:
                    fg = BASE16[c - 90 + 8]
                elif 40 <= c <= 47:
                    bg = BASE16[c - 40]
                elif 100 <= c <= 107:
                    bg = BASE16[c - 100 + 8]
                elif c == 39:
                    fg = FG
                elif c == 49:
                    bg = BG
                elif c in (38, 48) and i + 1 < len(codes):
                    if codes[i + 1] == 5 and i + 2 < len(codes):
                        col = color256(codes[i + 2])
                        i += 2
                    elif codes[i + 1] == 2 and i + 4 < len(codes):
                        col = tuple(codes[i + 2:i + 5])
                        i += 4
                    else:
                        col = FG
                    if c == 38:
                        fg = col
                    else:
                        bg = col
                i += 1
        for ch in line[pos:]:
            cells.append((ch, bg if reverse else fg, fg if reverse else bg, bold))
        rows.append(cells)
    while rows and not rows[-1]:
        rows.pop()
    return rows


# Braille dots (a cell is 2 dots wide, 4 high), by bit: the fonts here have no such glyphs
# of the monospace cell's size, so the dots are drawn (the cluster view's lines are made of
# them).
BRAILLE_DOTS = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (0, 3), (1, 3)]


def braille(draw, px, py, cw, ch, bits, fg):
    r = max(1, cw // 6)
    for bit, (dx, dy) in enumerate(BRAILLE_DOTS):
        if bits & (1 << bit):
            cx = px + cw * (1 + 2 * dx) // 4
            cy = py + ch * (1 + 2 * dy) // 8
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fg)


def main():
    out, panes = sys.argv[1], sys.argv[2:]
    font = ImageFont.truetype(FONT, SIZE)
    bold_font = ImageFont.truetype(FONT_BOLD, SIZE)
    cw = round(font.getlength("M"))
    ch = SIZE + 4
    parsed = [parse(open(p, encoding="utf-8", errors="replace").read()) for p in panes]
    cols = [max((len(r) for r in rows), default=0) for rows in parsed]
    gap = 2
    width = (sum(cols) + gap * (len(cols) - 1) + 2) * cw
    height = (max(len(rows) for rows in parsed) + 2) * ch
    img = Image.new("RGB", (width, height), BG)
    draw = ImageDraw.Draw(img)
    x0 = cw
    for rows, ncols in zip(parsed, cols):
        for y, row in enumerate(rows):
            for x, (c, fg, bg, bold) in enumerate(row):
                px, py = x0 + x * cw, ch + y * ch
                if bg != BG:
                    draw.rectangle([px, py, px + cw - 1, py + ch - 1], fill=bg)
                if 0x2800 <= ord(c) <= 0x28FF:
                    braille(draw, px, py, cw, ch, ord(c) - 0x2800, fg)
                elif c != " ":
                    draw.text((px, py + 1), c, font=bold_font if bold else font, fill=fg)
        x0 += (ncols + gap) * cw
    img.save(out)


if __name__ == "__main__":
    main()
