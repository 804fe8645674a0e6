"""Lossless removal of metadata from a JPEG: keep the image's own segments, drop everything else.

Re-encoding a 12 MP photo costs more than decoding it and loses quality; when a JPEG is already
upright 8-bit sRGB, dropping its metadata segments gives the same privacy with the original pixels.
"""

from __future__ import annotations

# Segments that describe the image itself. Everything else (APP1 EXIF/XMP, APP2 ICC/MPF,
# APP13 IPTC, COM, other APPn) is metadata and goes, as does anything after the end marker.
_KEEP = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF, 0xC4, 0xCC, 0xDB, 0xDD, 0xDA, 0xE0, 0xEE}
_SOS, _EOI = 0xDA, 0xD9
_STANDALONE = {0x01, *range(0xD0, 0xD8)}


def strip_metadata(data: bytes) -> bytes | None:
    """The JPEG with only image segments (JFIF APP0, Adobe APP14 kept); None when the structure is not plain."""
    if not data.startswith(b"\xff\xd8"):
        return None
    out = bytearray(b"\xff\xd8")
    i, n = 2, len(data)
    while i < n:
        if data[i] != 0xFF:
            return None
        while i < n and data[i] == 0xFF:  # fill bytes
            i += 1
        if i >= n:
            return None
        marker = data[i]
        i += 1
        if marker == _EOI:
            out += b"\xff\xd9"
            return bytes(out)
        if marker in _STANDALONE:
            out += bytes((0xFF, marker))
            continue
        if i + 2 > n:
            return None
        length = int.from_bytes(data[i : i + 2], "big")
        if length < 2 or i + length > n:
            return None
        segment = data[i : i + length]
        i += length
        if marker in _KEEP:
            out += bytes((0xFF, marker)) + segment
        if marker == _SOS:
            # Entropy-coded data runs to the next marker that is not stuffing (FF00) or a restart (FFD0-D7).
            start = i
            while True:
                i = data.find(b"\xff", i)
                if i < 0 or i + 1 >= n:
                    return None
                following = data[i + 1]
                if following != 0x00 and not 0xD0 <= following <= 0xD7:
                    break
                i += 2
            out += data[start:i]
    return None
