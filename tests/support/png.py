"""Read a PNG with the standard library, to check that a QR image is the code it should be.

Only what QR images use: greyscale, 1 to 8 bits per pixel, no interlacing. Every
chunk's CRC is checked, so bytes that merely start like a PNG do not pass.
"""

from __future__ import annotations

import struct
import zlib

import segno

SIGNATURE = b"\x89PNG\r\n\x1a\n"


def read_png(data: bytes) -> tuple[int, int, list[list[int]]]:
    """``(width, height, rows)``: each row the pixels' grey levels."""
    if data[:8] != SIGNATURE:
        raise ValueError("not a PNG signature")
    offset, chunks = 8, []
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        if zlib.crc32(kind + body) != crc:
            raise ValueError(f"bad CRC in {kind!r}")
        chunks.append((kind, body))
        offset += 12 + length
    if not chunks or chunks[0][0] != b"IHDR" or chunks[-1][0] != b"IEND":
        raise ValueError("a PNG starts with IHDR and ends with IEND")
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    if colour != 0 or depth not in (1, 2, 4, 8) or interlace:
        raise ValueError("only non-interlaced greyscale PNGs are read here")
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    stride = (width * depth + 7) // 8
    rows: list[list[int]] = []
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        line = _unfilter(raw[start], bytearray(raw[start + 1 : start + 1 + stride]), previous)
        previous = line
        bits = "".join(f"{byte:08b}" for byte in line)
        rows.append([int(bits[x * depth : (x + 1) * depth], 2) for x in range(width)])
    return width, height, rows


def _unfilter(kind: int, line: bytearray, above: bytearray) -> bytearray:
    # One byte per pixel at most here, so "the pixel to the left" is the byte before.
    for i in range(len(line)):
        left = line[i - 1] if i else 0
        up, corner = above[i], above[i - 1] if i else 0
        if kind == 1:
            line[i] = (line[i] + left) & 0xFF
        elif kind == 2:
            line[i] = (line[i] + up) & 0xFF
        elif kind == 3:
            line[i] = (line[i] + (left + up) // 2) & 0xFF
        elif kind == 4:
            p = left + up - corner
            pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
            predictor = left if pa <= pb and pa <= pc else (up if pb <= pc else corner)
            line[i] = (line[i] + predictor) & 0xFF
        elif kind != 0:
            raise ValueError(f"unknown filter {kind}")
    return line


def is_qr_code_of(data: bytes, content: str, *, border: int = 4) -> bool:
    """Whether the PNG ``data`` shows exactly the QR code of ``content`` (any whole-pixel
    scale, ``border`` light modules around it, dark modules the darker sample value)."""
    matrix = segno.make(content, error="m").matrix
    modules = len(matrix) + 2 * border
    width, height, rows = read_png(data)
    if width != height or width % modules:
        return False
    scale = width // modules
    dark = min(min(row) for row in rows)
    for y, row in enumerate(rows):
        for x, value in enumerate(row):
            mx, my = x // scale - border, y // scale - border
            inside = 0 <= mx < len(matrix) and 0 <= my < len(matrix)
            expected_dark = inside and bool(matrix[my][mx])
            if (value == dark) != expected_dark:
                return False
    return True
