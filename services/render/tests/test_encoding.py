from __future__ import annotations

import io
import re

import numpy as np
import pytest
from PIL import Image, ImageCms
from skimage import data

from likeness_render.domain.encoding import (
    DEFAULT_JPEG_QUALITY,
    DEFAULT_MIN_JPEG_QUALITY,
    EncodingError,
    OutputFormat,
    Subsampling,
    encode_for_spec,
    encode_image,
    encode_pdf,
    encode_portrait,
    srgb_icc,
)
from likeness_render.domain.spec_loading import load_catalog

KB = 1024


@pytest.fixture(scope="module")
def astronaut_id_crop() -> np.ndarray:
    """The astronaut portrait cropped to the 358:441 shape of a Chinese resident-ID photo."""
    image = data.astronaut()
    width = round(512 * 358 / 441)
    x0 = (512 - width) // 2
    return np.ascontiguousarray(image[:, x0 : x0 + width])


def _open(encoded: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(encoded))
    image.load()
    return image


def test_jpeg_has_exact_size_and_readable_dpi(astronaut_id_crop: np.ndarray) -> None:
    result = encode_image(astronaut_id_crop, dpi=350, size_px=(358, 441))
    image = _open(result.data)
    assert image.format == "JPEG" and image.size == (358, 441)
    assert image.info["dpi"] == (350, 350)
    assert image.info.get("jfif_unit") == 1  # dots per inch, not per cm or aspect only
    assert (result.width, result.height, result.dpi) == (358, 441, 350.0)
    assert result.quality == DEFAULT_JPEG_QUALITY and result.within_band
    assert result.media_type == "image/jpeg"
    # Nothing but the resolution is written: no EXIF about the source device or place.
    assert len(image.getexif()) == 0


def test_png_is_lossless_with_phys_dpi(astronaut_id_crop: np.ndarray) -> None:
    result = encode_image(astronaut_id_crop, output_format="png", dpi=300)
    image = _open(result.data)
    assert image.format == "PNG" and result.format is OutputFormat.PNG
    assert image.info["dpi"] == pytest.approx((300, 300), abs=0.01)
    assert np.array_equal(np.asarray(image), astronaut_id_crop)
    assert result.quality is None and result.subsampling is None


def test_astronaut_resident_id_photo_fits_14_to_20_kb(astronaut_id_crop: np.ndarray) -> None:
    result = encode_image(astronaut_id_crop, dpi=350, size_px=(358, 441), min_kb=14, max_kb=20)
    assert result.within_band and result.band_problem is None
    assert 14 * KB <= result.size_bytes <= 20 * KB
    quality = result.quality
    assert quality is not None and DEFAULT_MIN_JPEG_QUALITY <= quality < DEFAULT_JPEG_QUALITY
    # The search returns the highest quality that fits: one step up no longer fits.
    one_up = encode_image(astronaut_id_crop, dpi=350, size_px=(358, 441), quality=quality + 1, min_quality=quality + 1)
    assert one_up.size_bytes > 20 * KB


def test_encode_for_spec_uses_the_spec_size_dpi_and_band(astronaut_id_crop: np.ndarray) -> None:
    spec = load_catalog().get("cn-resident-id")
    result = encode_for_spec(astronaut_id_crop, spec)
    assert _open(result.data).size == (358, 441)
    assert _open(result.data).info["dpi"] == (350, 350)
    assert result.format is OutputFormat.JPEG
    assert result.within_band and 14 * KB <= result.size_bytes <= 20 * KB


def test_600px_upload_stays_under_240_kb() -> None:
    image = np.asarray(Image.fromarray(data.astronaut()).resize((600, 600), Image.Resampling.LANCZOS))
    result = encode_for_spec(image, load_catalog().get("us-visa-digital"))
    assert result.within_band and result.size_bytes <= 240 * KB
    assert _open(result.data).size == (600, 600)


def test_unreachable_maximum_is_reported_at_the_lowest_acceptable_quality() -> None:
    image = np.asarray(Image.fromarray(data.astronaut()).resize((600, 600)))
    result = encode_image(image, max_kb=5)
    assert not result.within_band
    assert result.band_problem is not None and "maximum" in result.band_problem
    assert result.quality == DEFAULT_MIN_JPEG_QUALITY
    assert result.size_bytes > 5 * KB


def test_flat_image_below_minimum_is_reported_not_padded() -> None:
    flat = np.full((441, 358, 3), 200, dtype=np.uint8)
    result = encode_image(flat, dpi=350, min_kb=14, max_kb=20)
    assert not result.within_band
    assert result.band_problem is not None and "minimum" in result.band_problem
    assert result.size_bytes < 14 * KB
    # The bytes are exactly what the encoder makes with the reported settings (and the sRGB
    # profile every output carries): no padding.
    buf = io.BytesIO()
    Image.fromarray(flat).save(
        buf, "JPEG", quality=result.quality, subsampling=str(result.subsampling),
        optimize=False, dpi=(350, 350), icc_profile=srgb_icc(),
    )  # fmt: skip
    optimised = io.BytesIO()
    Image.fromarray(flat).save(
        optimised, "JPEG", quality=result.quality, subsampling=str(result.subsampling),
        optimize=True, dpi=(350, 350), icc_profile=srgb_icc(),
    )  # fmt: skip
    assert result.data in (buf.getvalue(), optimised.getvalue())
    assert result.data.endswith(b"\xff\xd9")
    assert np.abs(np.asarray(_open(result.data)).astype(int) - 200).max() <= 2


def test_png_outside_its_band_is_reported() -> None:
    flat = np.full((100, 100, 3), 128, dtype=np.uint8)
    small = encode_image(flat, output_format=OutputFormat.PNG, min_kb=10)
    assert not small.within_band and small.band_problem and "never padded" in small.band_problem
    noisy = np.random.default_rng(1).integers(0, 256, (200, 200, 3), dtype=np.uint8)
    big = encode_image(noisy, output_format=OutputFormat.PNG, max_kb=10)
    assert not big.within_band and big.band_problem and "use JPEG" in big.band_problem


def test_chroma_subsampling_change_reaches_a_minimum_420_cannot() -> None:
    # Strong colour detail: 4:4:4 keeps the chroma that 4:2:0 throws away, so it is
    # honestly larger. Put the minimum between the two and the encoder must switch.
    rng = np.random.default_rng(7)
    chroma = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    image = np.asarray(Image.fromarray(chroma).resize((256, 256), Image.Resampling.NEAREST))

    def size(subsampling: str, optimize: bool) -> int:
        buf = io.BytesIO()
        Image.fromarray(image).save(
            buf, "JPEG", quality=100, subsampling=subsampling, optimize=optimize, dpi=(300, 300), icc_profile=srgb_icc()
        )
        return len(buf.getvalue())

    largest_420 = max(size("4:2:0", True), size("4:2:0", False))
    size_444 = size("4:4:4", False)
    assert size_444 > largest_420
    min_kb = (largest_420 + 1) / KB
    result = encode_image(image, min_kb=min_kb)
    assert result.within_band, result.band_problem
    assert result.subsampling in (Subsampling.S422, Subsampling.S444)
    assert result.size_bytes >= largest_420 + 1


def test_grey_images_encode_as_grey() -> None:
    grey = np.tile(np.arange(256, dtype=np.uint8), (64, 1))
    result = encode_image(grey)
    assert _open(result.data).mode == "L" and result.subsampling is None


@pytest.mark.parametrize(
    ("image", "kwargs"),
    [
        (np.zeros((10, 10, 4), dtype=np.uint8), {}),
        (np.zeros((10, 10, 3), dtype=np.float32), {}),
        (np.zeros((10, 10, 3), dtype=np.uint8), {"output_format": "gif"}),
        (np.zeros((10, 10, 3), dtype=np.uint8), {"min_kb": 20, "max_kb": 10}),
        (np.zeros((10, 10, 3), dtype=np.uint8), {"quality": 40}),
        (np.zeros((10, 10, 3), dtype=np.uint8), {"size_px": (0, 10)}),
    ],
)
def test_invalid_requests_raise(image: np.ndarray, kwargs: dict[str, object]) -> None:
    with pytest.raises(EncodingError):
        encode_image(image, **kwargs)  # type: ignore[arg-type]


# ------------------------------------------------------------------ colour profile and PDF


def _profile_description(image: Image.Image) -> str:
    icc = image.info.get("icc_profile")
    assert icc, "no ICC profile embedded"
    profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    assert profile.profile.xcolor_space.strip() == "RGB"
    return ImageCms.getProfileDescription(profile).strip()


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_outputs_carry_an_srgb_profile_and_their_dpi(astronaut_id_crop: np.ndarray, fmt: str) -> None:
    result = encode_image(astronaut_id_crop, output_format=fmt, dpi=600)
    image = _open(result.data)
    assert _profile_description(image) == "sRGB built-in"
    assert image.info["dpi"] == pytest.approx((600, 600), abs=0.01)
    # The profile is the only addition: still no EXIF.
    assert len(image.getexif()) == 0


def test_portrait_encoder_carries_the_srgb_profile(astronaut_id_crop: np.ndarray) -> None:
    image = _open(encode_portrait(astronaut_id_crop))
    assert image.format == "JPEG" and _profile_description(image) == "sRGB built-in"


def test_grey_images_get_no_rgb_profile() -> None:
    grey = np.full((40, 30), 128, dtype=np.uint8)
    assert "icc_profile" not in _open(encode_image(grey).data).info


def _pdf_objects(pdf: bytes) -> dict[int, bytes]:
    """Objects by number, read through the xref table (so its offsets are checked too)."""
    start = int(re.search(rb"startxref\s+(\d+)\s+%%EOF\s*$", pdf).group(1))  # type: ignore[union-attr]
    assert pdf[start:].startswith(b"xref")
    lines = pdf[start:].split(b"\n")
    first, count = map(int, lines[1].split())
    objects = {}
    for number in range(first + 1, first + count):
        offset = int(lines[2 + number - first].split()[0])
        header = f"{number} 0 obj\n".encode()
        assert pdf[offset:].startswith(header), number
        end = pdf.index(b"\nendobj", offset)
        objects[number] = pdf[offset + len(header) : end]
    return objects


def _stream(body: bytes) -> bytes:
    length = int(re.search(rb"/Length (\d+)", body).group(1))  # type: ignore[union-attr]
    start = body.index(b"stream\n") + len(b"stream\n")
    assert body[start + length :] == b"\nendstream"
    return body[start : start + length]


@pytest.mark.parametrize(("inches", "dpi", "box"), [((4, 6), 300, b"[0 0 288 432]"), ((6, 4), 600, b"[0 0 432 288]")])
def test_pdf_page_is_the_exact_physical_size(inches: tuple[int, int], dpi: int, box: bytes) -> None:
    w_in, h_in = inches
    image = np.zeros((h_in * dpi, w_in * dpi, 3), dtype=np.uint8)
    image[:, : image.shape[1] // 2] = (200, 40, 40)
    result = encode_pdf(image, w_in, h_in, dpi)
    assert result.format is OutputFormat.PDF and result.media_type == "application/pdf"
    pdf = result.data
    assert pdf.startswith(b"%PDF-1.4") and pdf.rstrip().endswith(b"%%EOF")
    objects = _pdf_objects(pdf)
    pages = [o for o in objects.values() if b"/Type /Page " in o]
    assert len(pages) == 1
    assert re.search(rb"/MediaBox (\[[^\]]*\])", pages[0]).group(1) == box  # type: ignore[union-attr]
    # The image fills the page: scaled to the page's points, placed at the origin.
    content = next(_stream(o) for o in objects.values() if o.startswith(b"<< /Length"))
    assert content == b"q " + box[5:-1].replace(b" ", b" 0 0 ", 1) + b" 0 0 cm /Im0 Do Q"
    image_obj = next(o for o in objects.values() if b"/Subtype /Image" in o)
    embedded = _open(_stream(image_obj))
    assert embedded.size == (w_in * dpi, h_in * dpi)  # placed at the asked dpi: 300 or 600 px per inch
    assert embedded.getpixel((10, 10)) == pytest.approx((200, 40, 40), abs=4)
    icc_ref = int(re.search(rb"/ICCBased (\d+) 0 R", image_obj).group(1))  # type: ignore[union-attr]
    assert _stream(objects[icc_ref]) == srgb_icc()


def test_pdf_page_of_a_metric_paper_keeps_its_fraction_of_a_point() -> None:
    # A4 at 300 dpi is 2480x3508 px (whole pixels), but the page is 210x297 mm exactly.
    result = encode_pdf(np.zeros((3508, 2480, 3), np.uint8), 210 / 25.4, 297 / 25.4, 300)
    box = re.search(rb"/MediaBox \[0 0 ([\d.]+) ([\d.]+)\]", result.data)
    assert box is not None
    assert float(box.group(1)) == pytest.approx(210 / 25.4 * 72, abs=1e-4)
    assert float(box.group(2)) == pytest.approx(297 / 25.4 * 72, abs=1e-4)


def test_pdf_is_refused_for_a_single_photo(astronaut_id_crop: np.ndarray) -> None:
    with pytest.raises(EncodingError, match="print sheets only"):
        encode_image(astronaut_id_crop, output_format="pdf")
