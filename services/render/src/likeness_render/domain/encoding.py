"""Output encoding: JPEG or PNG at an exact pixel size, true print size, file-size band.

The file-size band is met only by honest encoder choices: JPEG quality (binary search),
chroma subsampling and Huffman-table optimisation. Nothing is ever padded: when a band
cannot be met, the closest honest encoding is returned with ``within_band=False`` and the
reason in ``band_problem``. Encoded files carry no EXIF or other metadata beyond the
resolution, so nothing about the source device or place leaks into the output.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt
from PIL import Image

from likeness_render.domain.specs import BYTES_PER_KB, DEFAULT_DPI, Spec

# Unconstrained JPEG quality: visually lossless for portraits at a moderate size.
DEFAULT_JPEG_QUALITY = 92
# Below about 50 libjpeg's blocking shows on skin gradients and hair edges, which makes a
# photo look tampered with and can fail authority checks; the Chinese resident-ID standard
# (GA 461) itself uses quality 70. Lower bounds can be passed per call.
DEFAULT_MIN_JPEG_QUALITY = 50
MAX_JPEG_QUALITY = 100


class OutputFormat(StrEnum):
    JPEG = "JPEG"
    PNG = "PNG"


class Subsampling(StrEnum):
    S444 = "4:4:4"
    S422 = "4:2:2"
    S420 = "4:2:0"


class EncodingError(ValueError):
    """The image or the encoding request is invalid."""


@dataclass(frozen=True)
class EncodedImage:
    data: bytes
    format: OutputFormat
    width: int
    height: int
    dpi: float
    quality: int | None  # JPEG quality; None for PNG
    subsampling: Subsampling | None  # JPEG only
    within_band: bool
    band_problem: str | None  # why the band was not met; None when within it

    @property
    def size_bytes(self) -> int:
        return len(self.data)

    @property
    def size_kb(self) -> float:
        return len(self.data) / BYTES_PER_KB

    @property
    def media_type(self) -> str:
        return "image/jpeg" if self.format is OutputFormat.JPEG else "image/png"


@dataclass(frozen=True)
class _JpegVariant:
    subsampling: Subsampling
    optimize: bool


# Ordered from the smallest typical output to the largest. The first is the normal choice;
# the others only serve to reach a minimum size honestly: keeping more colour detail (less
# subsampling) and the standard Huffman tables both make a real, fully valid JPEG larger.
_VARIANTS = (
    _JpegVariant(Subsampling.S420, optimize=True),
    _JpegVariant(Subsampling.S420, optimize=False),
    _JpegVariant(Subsampling.S422, optimize=False),
    _JpegVariant(Subsampling.S444, optimize=False),
)


def encode_image(
    image: npt.NDArray[np.uint8],
    *,
    output_format: OutputFormat | str = OutputFormat.JPEG,
    dpi: float = DEFAULT_DPI,
    size_px: tuple[int, int] | None = None,
    min_kb: float | None = None,
    max_kb: float | None = None,
    quality: int = DEFAULT_JPEG_QUALITY,
    min_quality: int = DEFAULT_MIN_JPEG_QUALITY,
) -> EncodedImage:
    """Encode an H×W×3 (RGB) or H×W (grey) uint8 image.

    ``size_px`` (width, height) resizes to that exact size first (Lanczos); ``dpi`` is
    written as JFIF density (JPEG) or pHYs (PNG). With a band (KB = 1024 B), JPEG quality
    is searched in [``min_quality``, 100]: the highest quality not above ``max_kb`` is
    preferred, and ``quality`` is raised only as far as needed to reach ``min_kb``.
    """
    fmt = _parse_format(output_format)
    pil = _to_pil(image, size_px)
    if dpi <= 0:
        raise EncodingError("dpi must be positive")
    if not 1 <= min_quality <= quality <= MAX_JPEG_QUALITY:
        raise EncodingError("need 1 <= min_quality <= quality <= 100")
    min_bytes = None if min_kb is None else int(np.ceil(min_kb * BYTES_PER_KB))
    max_bytes = None if max_kb is None else int(np.floor(max_kb * BYTES_PER_KB))
    if min_bytes is not None and max_bytes is not None and min_bytes > max_bytes:
        raise EncodingError(f"file-size band {min_kb:g}-{max_kb:g} KB is empty")
    if fmt is OutputFormat.PNG:
        return _encode_png(pil, dpi, min_bytes, max_bytes)
    return _encode_jpeg(pil, dpi, min_bytes, max_bytes, quality, min_quality)


def encode_for_spec(
    image: npt.NDArray[np.uint8],
    spec: Spec,
    *,
    default_dpi: float = DEFAULT_DPI,
    output_format: OutputFormat | str | None = None,
    min_quality: int = DEFAULT_MIN_JPEG_QUALITY,
) -> EncodedImage:
    """Encode at the spec's pixel size, resolution, file-size band and stated format
    (JPEG when the spec states none)."""
    return encode_image(
        image,
        output_format=output_format or spec.format or OutputFormat.JPEG,
        dpi=spec.effective_dpi(default_dpi),
        size_px=spec.size_px(default_dpi),
        min_kb=spec.file_min_kb,
        max_kb=spec.file_max_kb,
        min_quality=min_quality,
    )


def _parse_format(value: OutputFormat | str) -> OutputFormat:
    name = str(value).strip().upper()
    try:
        return OutputFormat("JPEG" if name == "JPG" else name)
    except ValueError:
        raise EncodingError(f"unsupported output format {value!r}; use JPEG or PNG") from None


def _to_pil(image: npt.NDArray[np.uint8], size_px: tuple[int, int] | None) -> Image.Image:
    if image.dtype != np.uint8:
        raise EncodingError(f"expected uint8 pixels, got {image.dtype}")
    if image.ndim == 2:
        pil = Image.fromarray(image, mode="L")
    elif image.ndim == 3 and image.shape[2] == 3:
        pil = Image.fromarray(image, mode="RGB")
    else:
        # An alpha channel has no meaning in an ID photo and JPEG cannot carry it.
        raise EncodingError(f"expected an H×W×3 RGB or H×W grey image, got shape {image.shape}")
    if size_px is not None:
        w, h = size_px
        if w < 1 or h < 1:
            raise EncodingError(f"invalid output size {w}x{h}")
        if pil.size != (w, h):
            pil = pil.resize((w, h), Image.Resampling.LANCZOS)
    return pil


def _dpi_pair(dpi: float) -> tuple[float, float]:
    return (dpi, dpi)


def _encode_png(pil: Image.Image, dpi: float, min_bytes: int | None, max_bytes: int | None) -> EncodedImage:
    buf = io.BytesIO()
    pil.save(buf, "PNG", optimize=True, dpi=_dpi_pair(dpi))
    data = buf.getvalue()
    problem = None
    if max_bytes is not None and len(data) > max_bytes:
        problem = (
            f"PNG is lossless: {len(data) / BYTES_PER_KB:.1f} KB at the smallest setting "
            f"exceeds the {max_bytes / BYTES_PER_KB:g} KB maximum; use JPEG"
        )
    elif min_bytes is not None and len(data) < min_bytes:
        problem = (
            f"image content encodes to {len(data) / BYTES_PER_KB:.1f} KB, below the "
            f"{min_bytes / BYTES_PER_KB:g} KB minimum; files are never padded"
        )
    return EncodedImage(data, OutputFormat.PNG, pil.width, pil.height, dpi, None, None, problem is None, problem)


def _encode_jpeg(
    pil: Image.Image,
    dpi: float,
    min_bytes: int | None,
    max_bytes: int | None,
    quality: int,
    min_quality: int,
) -> EncodedImage:
    cache: dict[tuple[_JpegVariant, int], bytes] = {}

    def encode(variant: _JpegVariant, q: int) -> bytes:
        key = (variant, q)
        if key not in cache:
            buf = io.BytesIO()
            options: dict[str, object] = {
                "quality": q,
                "optimize": variant.optimize,
                # JFIF stores density as whole numbers.
                "dpi": (round(dpi), round(dpi)),
            }
            if pil.mode == "RGB":
                options["subsampling"] = variant.subsampling.value
            pil.save(buf, "JPEG", **options)
            cache[key] = buf.getvalue()
        return cache[key]

    def result(variant: _JpegVariant, q: int, problem: str | None) -> EncodedImage:
        return EncodedImage(
            data=encode(variant, q),
            format=OutputFormat.JPEG,
            width=pil.width,
            height=pil.height,
            dpi=float(round(dpi)),
            quality=q,
            subsampling=variant.subsampling if pil.mode == "RGB" else None,
            within_band=problem is None,
            band_problem=problem,
        )

    def fits_max(size: int) -> bool:
        return max_bytes is None or size <= max_bytes

    def fits_min(size: int) -> bool:
        return min_bytes is None or size >= min_bytes

    base = _VARIANTS[0]
    preferred = len(encode(base, quality))
    if fits_max(preferred) and fits_min(preferred):
        return result(base, quality, None)

    if not fits_max(preferred):
        q = _highest(lambda q: fits_max(len(encode(base, q))), min_quality, quality - 1)
        if q is None:
            size_kb = len(encode(base, min_quality)) / BYTES_PER_KB
            assert max_bytes is not None
            return result(
                base,
                min_quality,
                f"{size_kb:.1f} KB at the lowest acceptable quality {min_quality} exceeds the {max_bytes / BYTES_PER_KB:g} KB maximum",
            )
        if fits_min(len(encode(base, q))):
            return result(base, q, None)
        # The band is narrower than one quality step of the base variant: look for a
        # quality in another variant that lands inside it.
    for variant in _VARIANTS:
        q = _lowest(_by_size(encode, variant, fits_min), min_quality, MAX_JPEG_QUALITY)
        if q is not None and fits_max(len(encode(variant, q))):
            return result(variant, q, None)
    return _closest_below_max(encode, result, fits_max, min_quality, min_bytes, max_bytes)


def _closest_below_max(
    encode: Callable[[_JpegVariant, int], bytes],
    result: Callable[[_JpegVariant, int, str | None], EncodedImage],
    fits_max: Callable[[int], bool],
    min_quality: int,
    min_bytes: int | None,
    max_bytes: int | None,
) -> EncodedImage:
    """The minimum is out of honest reach: return the largest encoding still under the
    maximum (the most faithful one), named as such."""
    assert min_bytes is not None
    best: tuple[int, _JpegVariant, int] | None = None
    for variant in _VARIANTS:
        q = _highest(_by_size(encode, variant, fits_max), min_quality, MAX_JPEG_QUALITY)
        if q is None:
            continue
        size = len(encode(variant, q))
        if best is None or size > best[0]:
            best = (size, variant, q)
    if best is None:  # nothing fits the maximum either; report the smallest we have
        variant, q = _VARIANTS[0], min_quality
        size = len(encode(variant, q))
    else:
        size, variant, q = best
    limit = "" if max_bytes is None else f" within the {max_bytes / BYTES_PER_KB:g} KB maximum"
    return result(
        variant,
        q,
        f"image content encodes to at most {size / BYTES_PER_KB:.1f} KB{limit} (quality {q}, "
        f"{variant.subsampling.value}), below the {min_bytes / BYTES_PER_KB:g} KB minimum; "
        "files are never padded",
    )


def _by_size(encode: Callable[[_JpegVariant, int], bytes], variant: _JpegVariant, test: Callable[[int], bool]) -> Callable[[int], bool]:
    """A quality predicate: does this variant at quality q give a size passing ``test``."""
    return lambda q: test(len(encode(variant, q)))


def _highest(ok: Callable[[int], bool], lo: int, hi: int) -> int | None:
    """Highest q in [lo, hi] with ok(q), assuming ok holds up to a threshold."""
    if lo > hi or not ok(lo):
        return None
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def _lowest(ok: Callable[[int], bool], lo: int, hi: int) -> int | None:
    """Lowest q in [lo, hi] with ok(q), assuming ok holds from a threshold up."""
    if lo > hi or not ok(hi):
        return None
    while lo < hi:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo
