"""Output encoding: JPEG or PNG at an exact pixel size, true print size, file-size band.

The file-size band is met only by honest encoder choices: JPEG quality (binary search),
chroma subsampling and Huffman-table optimisation. Nothing is ever padded: when a band
cannot be met, the closest honest encoding is returned with ``within_band=False`` and the
reason in ``band_problem``. Encoded files carry no EXIF or other metadata beyond the
resolution and an sRGB ICC profile (so colour-managed printers and viewers do not guess the
colour space), so nothing about the source device or place leaks into the output.

Print sheets can also be a PDF whose page is the paper's exact physical size
(``encode_pdf``), written here directly: one page, one JPEG image, no other content.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from functools import cache

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageCms

from likeness_render.domain.specs import BYTES_PER_KB, DEFAULT_DPI, Spec

# Unconstrained JPEG quality: visually lossless for portraits at a moderate size.
DEFAULT_JPEG_QUALITY = 92
# Below about 50 libjpeg's blocking shows on skin gradients and hair edges, which makes a
# photo look tampered with and can fail authority checks; the Chinese resident-ID standard
# (GA 461) itself uses quality 70. Lower bounds can be passed per call.
DEFAULT_MIN_JPEG_QUALITY = 50
MAX_JPEG_QUALITY = 100


# A PDF user-space unit is 1/72 in.
POINTS_PER_INCH = 72
# The sheet's JPEG inside a PDF: print quality, full colour resolution.
PDF_JPEG_QUALITY = 95


class OutputFormat(StrEnum):
    JPEG = "JPEG"
    PNG = "PNG"
    PDF = "PDF"  # print sheets only (encode_pdf)


MEDIA_TYPES = {OutputFormat.JPEG: "image/jpeg", OutputFormat.PNG: "image/png", OutputFormat.PDF: "application/pdf"}


@cache
def srgb_icc() -> bytes:
    """The sRGB ICC profile embedded in every RGB output (LittleCMS's built-in sRGB, 588 bytes)."""
    return bytes(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())


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
        return MEDIA_TYPES[self.format]


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
    if fmt is OutputFormat.PDF:
        raise EncodingError("PDF is made for print sheets only (it needs a paper size); use JPEG or PNG")
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
        raise EncodingError(f"unsupported output format {value!r}; use JPEG, PNG or (sheets) PDF") from None


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


def _colour_options(pil: Image.Image) -> dict[str, object]:
    """The sRGB profile for RGB images (a grey image has no RGB colour space to declare)."""
    return {"icc_profile": srgb_icc()} if pil.mode == "RGB" else {}


def _encode_png(pil: Image.Image, dpi: float, min_bytes: int | None, max_bytes: int | None) -> EncodedImage:
    buf = io.BytesIO()
    pil.save(buf, "PNG", optimize=True, dpi=_dpi_pair(dpi), **_colour_options(pil))
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
                **_colour_options(pil),
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


def encode_portrait(image: npt.NDArray[np.uint8], quality: int = DEFAULT_JPEG_QUALITY) -> bytes:
    """A portrait-like result (no print size): a JPEG with the sRGB profile and no other metadata."""
    pil = _to_pil(image, None)
    buf = io.BytesIO()
    pil.save(buf, "JPEG", quality=quality, optimize=True, **_colour_options(pil))
    return buf.getvalue()


def encode_pdf(
    image: npt.NDArray[np.uint8],
    page_width_in: float,
    page_height_in: float,
    dpi: float,
    quality: int = PDF_JPEG_QUALITY,
) -> EncodedImage:
    """A one-page PDF whose page is exactly ``page_width_in`` x ``page_height_in`` inches
    (MediaBox in points = inches x 72) with ``image`` (made at ``dpi``) filling it.

    The image is a JPEG (DCTDecode, 4:4:4) tagged with the sRGB profile (ICCBased colour
    space), so the printer reproduces the same colours as the JPEG and PNG outputs; the
    sub-pixel difference between the page and whole pixels at ``dpi`` is absorbed by the
    placement matrix, never by a margin.
    """
    if not (page_width_in > 0 and page_height_in > 0):
        raise EncodingError("page width and height must be positive")
    if dpi <= 0:
        raise EncodingError("dpi must be positive")
    pil = _to_pil(image, None)
    if pil.mode != "RGB":
        pil = pil.convert("RGB")
    buf = io.BytesIO()
    pil.save(buf, "JPEG", quality=quality, subsampling="4:4:4", optimize=True, dpi=(round(dpi), round(dpi)))
    jpeg = buf.getvalue()
    width_pt = _pdf_number(page_width_in * POINTS_PER_INCH)
    height_pt = _pdf_number(page_height_in * POINTS_PER_INCH)
    content = f"q {width_pt} 0 0 {height_pt} 0 0 cm /Im0 Do Q".encode("ascii")
    icc = srgb_icc()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {width_pt} {height_pt}] "
            "/Resources << /XObject << /Im0 4 0 R >> >> /Contents 5 0 R >>"
        ).encode("ascii"),
        _pdf_stream(
            f"<< /Type /XObject /Subtype /Image /Width {pil.width} /Height {pil.height} /ColorSpace [/ICCBased 6 0 R] "
            f"/BitsPerComponent 8 /Filter /DCTDecode /Length {len(jpeg)} >>",
            jpeg,
        ),
        _pdf_stream(f"<< /Length {len(content)} >>", content),
        _pdf_stream(f"<< /N 3 /Alternate /DeviceRGB /Length {len(icc)} >>", icc),
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode("ascii") + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode("ascii")
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode("ascii")
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode("ascii")
    return EncodedImage(bytes(out), OutputFormat.PDF, pil.width, pil.height, float(dpi), quality, Subsampling.S444, True, None)


def _pdf_stream(dictionary: str, data: bytes) -> bytes:
    return dictionary.encode("ascii") + b"\nstream\n" + data + b"\nendstream"


def _pdf_number(value: float) -> str:
    """A PDF real: exact for whole and half points, else 4 decimals (1/18000 in)."""
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return text or "0"
