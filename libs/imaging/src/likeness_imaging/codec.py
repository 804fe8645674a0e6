"""Decode image bytes to RGB arrays and encode arrays back, the same way in every service."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageOps


class UndecodableImage(ValueError):
    pass


def decode_rgb(data: bytes, max_pixels: int = 60_000_000, min_side: int | None = None) -> np.ndarray:
    """Decode JPEG/PNG/WebP bytes to an upright HxWx3 uint8 RGB array.

    With `min_side`, a JPEG is decoded at the smallest DCT scale (1/2, 1/4, 1/8) that keeps both
    sides at least that long: several times faster when the full resolution is not needed.
    """
    try:
        with Image.open(io.BytesIO(data)) as opened:
            if opened.width * opened.height > max_pixels:
                raise UndecodableImage(f"image has {opened.width * opened.height} pixels, more than {max_pixels}")
            if min_side and opened.format == "JPEG":
                opened.draft("RGB", (min_side, min_side))
            img: Image.Image = ImageOps.exif_transpose(opened)
            if img.mode != "RGB":
                img = img.convert("RGB")
            return np.asarray(img)
    except UndecodableImage:
        raise
    except Exception as exc:  # Pillow raises many types for bad data
        raise UndecodableImage(f"cannot decode image: {type(exc).__name__}") from exc


def decoded_size(data: bytes, min_side: int, fallback_width: int) -> int:
    """Width `decode_rgb(data, min_side=...)` will return, read from the header only."""
    try:
        with Image.open(io.BytesIO(data)) as opened:
            if opened.format == "JPEG":
                opened.draft("RGB", (min_side, min_side))
            width, height = opened.size
            orientation = opened.getexif().get(0x0112, 1)
    except Exception:
        return fallback_width
    return height if orientation in (5, 6, 7, 8) else width


def encode_jpeg(rgb: np.ndarray, quality: int = 92, dpi: int | None = None) -> bytes:
    """Encode an RGB array as baseline JPEG without metadata."""
    out = io.BytesIO()
    kwargs: dict[str, object] = {"quality": quality, "optimize": True}
    if dpi:
        kwargs["dpi"] = (dpi, dpi)
    Image.fromarray(rgb).save(out, format="JPEG", **kwargs)
    return out.getvalue()


def encode_png(rgb: np.ndarray, dpi: int | None = None) -> bytes:
    """Encode an RGB(A) array as PNG without metadata (pHYs when dpi is given)."""
    out = io.BytesIO()
    kwargs: dict[str, object] = {"optimize": False}
    if dpi:
        kwargs["dpi"] = (dpi, dpi)
    Image.fromarray(rgb).save(out, format="PNG", **kwargs)
    return out.getvalue()
