"""Validation and normalization of an uploaded image, before anything is stored.

Order matters: the format is judged from magic bytes, the pixel count from the header
(before decoding, against decompression bombs), then the full decode; the output is a fresh
8-bit sRGB JPEG carrying no metadata at all, except for an 8-bit sRGB JPEG, which keeps its pixels
and loses only its metadata segments; if it was stored sideways (EXIF orientation 2-8), a minimal
EXIF segment with that orientation alone goes with it and readers turn it after their decode.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageCms, ImageOps

from likeness_ingestion.domain.errors import ContentTypeMismatch, CorruptImage, Empty, TooLarge, TooManyPixels, UnsupportedFormat
from likeness_ingestion.domain.jpeg_segments import strip_metadata

_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}
_CONTENT_TYPES = {
    "jpeg": {"image/jpeg", "image/jpg", "image/pjpeg"},
    "png": {"image/png"},
    "webp": {"image/webp"},
    "heif": {"image/heic", "image/heif", "image/heic-sequence", "image/heif-sequence"},
}
_ORIENTATION = 0x0112
_GENERIC_TYPES = {"", "application/octet-stream", "binary/octet-stream", "image/*"}


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 25 * 1000 * 1000
    max_pixels: int = 50_000_000
    jpeg_quality: int = 95


@dataclass(frozen=True)
class NormalizedImage:
    data: bytes  # JPEG, 8-bit sRGB, no metadata
    source_format: str
    width: int
    height: int
    sha256: str


def sniff_format(head: bytes) -> str:
    """The container format from magic bytes; UnsupportedFormat when it is none we accept."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[4:8] == b"ftyp":
        brands = {head[8:12]} | {head[i : i + 4] for i in range(16, min(len(head), 64), 4)}
        if brands & _HEIF_BRANDS:
            return "heif"
    raise UnsupportedFormat("only JPEG, PNG, WebP and HEIC/HEIF images are accepted")


def check_content_type(declared: str, detected: str) -> None:
    """A declared specific image type must match the bytes; generic or empty types are fine."""
    declared = (declared or "").split(";")[0].strip().lower()
    if declared in _GENERIC_TYPES:
        return
    if declared not in _CONTENT_TYPES[detected]:
        raise ContentTypeMismatch(f"declared content type {declared!r} but the file is {detected.upper()}")


def _to_srgb(img: Image.Image) -> Image.Image:
    icc = img.info.get("icc_profile")
    if icc:
        try:
            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            dst = ImageCms.createProfile("sRGB")
            return ImageCms.profileToProfile(img, src, dst, outputMode="RGB")  # type: ignore[return-value]
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # a broken profile: fall through to a plain conversion
    return img


# Rows converted at once from 16/32-bit grey: the full image is never held wider than its decoded form.
_ROWS = 256


def _deep_grey_to_rgb8(img: Image.Image) -> Image.Image:
    """16/32-bit grey to 8-bit, rounding v * 255 / peak half up in integers, a band of rows at a time
    (never a float64 copy of the whole image)."""
    arr = np.asarray(img)
    peak = 65535 if int(arr.max(initial=0)) > 255 else 255
    out = np.empty(arr.shape, dtype=np.uint8)
    for top in range(0, arr.shape[0], _ROWS):
        band = np.clip(arr[top : top + _ROWS].astype(np.int64), 0, peak)
        out[top : top + _ROWS] = (band * 510 + peak) // (2 * peak)
    return Image.fromarray(out, "L").convert("RGB")


def _to_rgb8(img: Image.Image) -> Image.Image:
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        return _deep_grey_to_rgb8(img)
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "RGB" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        # Transparent areas become white, the neutral choice for ID photos.
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if img.mode == "CMYK":
        return _to_srgb(img).convert("RGB")
    if img.mode != "RGB":
        return img.convert("RGB")
    return _to_srgb(img)


def _orientation(img: Image.Image) -> int:
    """The EXIF orientation, 1 when absent or not one of 1-8 (as every reader, Pillow's included, treats it)."""
    value = img.getexif().get(_ORIENTATION, 1)
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _keeps_its_pixels(fmt: str, img: Image.Image) -> bool:
    """8-bit sRGB JPEGs keep their pixels, in any orientation; only their metadata segments are dropped (header facts only)."""
    if fmt != "jpeg" or img.mode != "RGB":
        return False
    icc = img.info.get("icc_profile")
    return not (icc and b"sRGB" not in icc[:256] and b"s\x00R\x00G\x00B" not in icc)


def normalize(data: bytes, declared_content_type: str, limits: Limits) -> NormalizedImage:
    """Validate and normalize; raises a Rejected/TooLarge/TooManyPixels error on bad input."""
    if not data:
        raise Empty("the upload is empty")
    if len(data) > limits.max_bytes:
        raise TooLarge(f"the upload is {len(data)} bytes; the limit is {limits.max_bytes}")
    fmt = sniff_format(data[:64])
    check_content_type(declared_content_type, fmt)
    if fmt == "heif":
        import pillow_heif

        pillow_heif.register_heif_opener()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            pixels = img.width * img.height
            if pixels > limits.max_pixels:
                raise TooManyPixels(f"the image has {pixels} pixels ({img.width}x{img.height}); the limit is {limits.max_pixels}")
            width, height = img.size
            orientation = _orientation(img)
            lossless = _keeps_its_pixels(fmt, img)
            if lossless:
                # Every entropy-coded block is still decoded, so corruption and truncation are
                # caught; only the inverse DCT runs at 1/8 scale, as the pixels are kept as they are.
                img.draft("RGB", (max(1, width // 8), max(1, height // 8)))
            img.load()
    except (TooManyPixels, UnsupportedFormat):
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's own wording (its internal limit, its advice) is not passed on.
        raise TooManyPixels(f"the image would decode to too many pixels; the limit is {limits.max_pixels}") from exc
    except Exception as exc:  # Pillow signals bad data with many exception types
        raise CorruptImage(f"the {fmt.upper()} data cannot be decoded completely") from exc
    if getattr(img, "n_frames", 1) > 1:
        img.seek(0)
    if lossless:
        stripped = strip_metadata(data, orientation)
        if stripped is not None:
            if orientation >= 5:  # stored sideways: the upright image is the other way round
                width, height = height, width
            return NormalizedImage(stripped, fmt, width, height, hashlib.sha256(stripped).hexdigest())
        img = Image.open(io.BytesIO(data))  # unusual segment layout: take the re-encoding path at full size
        img.load()
    img = ImageOps.exif_transpose(img)
    rgb = _to_rgb8(img)
    out = io.BytesIO()
    # A fresh image with no info dict carries no EXIF, GPS, XMP, ICC or comments.
    clean = Image.frombytes("RGB", rgb.size, rgb.tobytes())
    clean.save(out, format="JPEG", quality=limits.jpeg_quality, subsampling=0)
    encoded = out.getvalue()
    return NormalizedImage(encoded, fmt, clean.width, clean.height, hashlib.sha256(encoded).hexdigest())
