#!/usr/bin/env python3
"""make_icon.py: draws the snowflake plugin's listing icon, plugin/.claude-plugin/icon.png.

A white six-armed snowflake on a rounded blue square, 512 x 512 RGBA (the plugin directory
wants a square PNG of 512 to 2048 px). Standard library only, so any machine can regenerate it;
the output is deterministic, so `--check` can tell whether the committed icon is current.

Usage: make_icon.py [--check] [OUTPUT]   (default OUTPUT: plugin/.claude-plugin/icon.png)
"""

import math
import struct
import sys
import zlib
from pathlib import Path

SIZE = 512
CORNER = 96  # radius of the background's rounded corners
TOP = (0x3D, 0xC4, 0xF0)  # background gradient, top-left...
BOTTOM = (0x11, 0x6F, 0xB0)  # ...to bottom-right: Snowflake-like blues
INK = (0xFF, 0xFF, 0xFF)

# One arm along +x, in pixels from the centre: (x0, y0, x1, y1, half_width). The other five
# arms are rotations of it, and the branches below the axis are its mirror image, so only the
# upper half of one arm is described.
ARM = [
    (0.0, 0.0, 196.0, 0.0, 15.0),  # the spoke
    (92.0, 0.0, 140.0, 48.0, 11.0),  # inner branch
    (146.0, 0.0, 178.0, 32.0, 9.0),  # outer branch
]
HUB = 34.0  # radius of the ring drawn around the centre
HUB_WIDTH = 9.0


def segment_distance(px, py, x0, y0, x1, y1):
    """Distance from (px, py) to the segment (x0, y0)-(x1, y1)."""
    dx, dy = x1 - x0, y1 - y0
    t = ((px - x0) * dx + (py - y0) * dy) / (dx * dx + dy * dy)
    t = min(1.0, max(0.0, t))
    ex, ey = px - (x0 + t * dx), py - (y0 + t * dy)
    return math.hypot(ex, ey)


def snowflake_coverage(px, py):
    """Fraction (0..1) of the pixel centred at (px, py) covered by the snowflake, antialiased
    by the signed distance to the nearest stroke (one pixel wide ramp)."""
    r = math.hypot(px, py)
    if r > 215.0:
        return 0.0
    # Fold the point into one 60-degree sector around +x, then mirror it above the axis.
    angle = math.atan2(py, px)
    sector = round(angle / (math.pi / 3))
    a = angle - sector * (math.pi / 3)
    qx, qy = r * math.cos(a), abs(r * math.sin(a))
    # The neighbouring arm's lower branches mirror this arm's upper ones across 30 degrees.
    b = math.pi / 3 - a
    mx, my = r * math.cos(b), abs(r * math.sin(b))
    best = -1e9
    for x0, y0, x1, y1, w in ARM:
        d = min(segment_distance(qx, qy, x0, y0, x1, y1), segment_distance(mx, my, x0, y0, x1, y1))
        best = max(best, w - d)
    best = max(best, HUB_WIDTH - abs(r - HUB))
    return min(1.0, max(0.0, best + 0.5))


def background_alpha(x, y):
    """Coverage of the rounded square at pixel centre (x, y), antialiased at the corners."""
    cx = min(max(x, CORNER), SIZE - CORNER)
    cy = min(max(y, CORNER), SIZE - CORNER)
    d = math.hypot(x - cx, y - cy) - CORNER
    return min(1.0, max(0.0, 0.5 - d))


def render():
    rows = []
    half = SIZE / 2
    for j in range(SIZE):
        y = j + 0.5
        row = bytearray([0])  # PNG filter type 0 (None) for each scanline
        for i in range(SIZE):
            x = i + 0.5
            alpha = background_alpha(x, y)
            if alpha == 0.0:
                row += b"\x00\x00\x00\x00"
                continue
            t = (x + y) / (2 * SIZE)
            base = [TOP[k] + (BOTTOM[k] - TOP[k]) * t for k in range(3)]
            c = snowflake_coverage(x - half, y - half)
            rgb = [round(base[k] + (INK[k] - base[k]) * c) for k in range(3)]
            row += bytes(rgb + [round(255 * alpha)])
        rows.append(bytes(row))
    return b"".join(rows)


def png(raw):
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", SIZE, SIZE, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def main(argv):
    check = "--check" in argv
    args = [a for a in argv if a != "--check"]
    repo = Path(__file__).resolve().parents[2]
    out = Path(args[0]) if args else repo / "plugin" / ".claude-plugin" / "icon.png"
    data = png(render())
    if check:
        if not out.exists() or out.read_bytes() != data:
            print(f"FAIL {out} is not what make_icon.py draws; run tests/plugin/make_icon.py")
            return 1
        print(f"PASS {out} is current")
        return 0
    out.write_bytes(data)
    print(f"wrote {out} ({len(data)} bytes, {SIZE}x{SIZE})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
