import io

import numpy as np
import pytest
from PIL import Image

from likeness_imaging.codec import decode_rgb, decoded_size
from likeness_ingestion.domain.errors import ContentTypeMismatch, CorruptImage, Empty, TooLarge, TooManyPixels, UnsupportedFormat
from likeness_ingestion.domain.normalize import Limits, normalize

from . import images

LIMITS = Limits()


def _decoded(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_oriented_jpeg_keeps_its_pixels_and_only_its_orientation(orientation: int) -> None:
    data, upright = images.rotated_with_exif(orientation)
    assert Image.open(io.BytesIO(data)).getexif().get(0x8825) is not None  # the input does carry GPS
    out = normalize(data, "image/jpeg", LIMITS)
    assert (out.width, out.height) == (upright.shape[1], upright.shape[0])
    # The entropy-coded data is the original's, bit for bit: nothing was decoded and encoded again.
    scan = data[data.index(b"\xff\xda") :]
    assert out.data.endswith(scan)
    # The only metadata left is the orientation (none when upright): no GPS, maker, thumbnail or comment.
    img = _decoded(out.data)
    exif = img.getexif()
    assert dict(exif) == ({} if orientation == 1 else {0x0112: orientation})
    assert not exif.get_ifd(0x8825) and not {"icc_profile", "xmp", "comment"} & set(img.info)
    assert b"SecretCam" not in out.data
    # Read the way every Likeness service reads it: upright, at full and at reduced scale.
    full = decode_rgb(out.data)
    assert full.shape == upright.shape
    assert np.abs(full.astype(np.int16) - upright.astype(np.int16)).mean() < 6
    small = decode_rgb(out.data, min_side=96)
    assert small.shape[:2] == (upright.shape[0] // 4, upright.shape[1] // 4)
    assert decoded_size(out.data, 96, 0) == small.shape[1]
    reduced = np.asarray(Image.fromarray(upright).reduce(4), dtype=np.int16)
    assert np.abs(small.astype(np.int16) - reduced).mean() < 6


def test_rotated_jpeg_that_must_be_re_encoded_comes_out_upright_without_metadata() -> None:
    # CMYK takes the decode-and-encode path; the orientation is applied to the pixels there.
    rgb = np.ascontiguousarray(np.rot90(images.astronaut()[:128, :96], k=1))
    out_buf = io.BytesIO()
    Image.fromarray(rgb).convert("CMYK").save(out_buf, format="JPEG", exif=images.exif_with_gps_and_orientation(6))
    out = normalize(out_buf.getvalue(), "image/jpeg", LIMITS)
    img = _decoded(out.data)
    assert (out.width, out.height) == img.size == (96, 128)
    assert len(img.getexif()) == 0 and b"SecretCam" not in out.data


def test_out_of_range_orientation_is_dropped() -> None:
    exif = images.exif_with_gps_and_orientation(1)
    exif[0x0112] = 9
    out = normalize(images.jpeg(images.astronaut()[:64, :96], exif=exif), "image/jpeg", LIMITS)
    assert len(_decoded(out.data).getexif()) == 0 and (out.width, out.height) == (96, 64)


@pytest.mark.parametrize("mode", ["P", "RGBA", "L", "I;16"])
def test_png_modes_become_8bit_rgb(mode: str) -> None:
    out = normalize(images.png_variant(mode), "image/png", LIMITS)
    img = _decoded(out.data)
    assert img.mode == "RGB" and img.format == "JPEG"
    assert out.source_format == "png"


def test_16bit_png_keeps_its_tonal_range() -> None:
    out = _decoded(normalize(images.png_variant("I;16"), "image/png", LIMITS).data)
    arr = np.asarray(out)
    assert arr.max() > 200 and arr.min() < 60


def test_cmyk_jpeg_is_converted() -> None:
    img = _decoded(normalize(images.cmyk_jpeg(), "image/jpeg", LIMITS).data)
    assert img.mode == "RGB"
    # The astronaut's suit is white-ish: conversion must not invert or blacken the image.
    assert np.asarray(img).mean() > 60


def test_heic_and_webp_are_accepted() -> None:
    for data, fmt in ((images.heic(), "heif"), (images.webp(), "webp")):
        out = normalize(data, "application/octet-stream", LIMITS)
        assert out.source_format == fmt
        assert (out.width, out.height) == (512, 512)


def test_each_rejection_has_its_own_code() -> None:
    cases = [
        (b"", Empty, "EMPTY"),
        (b"GIF89a" + b"\0" * 100, UnsupportedFormat, "UNSUPPORTED_FORMAT"),
        (b"%PDF-1.7 hello", UnsupportedFormat, "UNSUPPORTED_FORMAT"),
        (images.jpeg(images.astronaut())[:5000], CorruptImage, "CORRUPT_IMAGE"),
        (images.bomb_png(), TooManyPixels, "TOO_MANY_PIXELS"),
    ]
    for data, exc, code in cases:
        with pytest.raises(exc) as info:
            normalize(data, "", LIMITS)
        assert info.value.code == code
    with pytest.raises(TooLarge) as info:
        normalize(images.jpeg(images.astronaut()), "", Limits(max_bytes=1000))
    assert info.value.code == "TOO_LARGE"
    with pytest.raises(ContentTypeMismatch):
        normalize(images.jpeg(images.astronaut()), "image/png", LIMITS)


def test_pixel_cap_is_checked_before_decoding() -> None:
    with pytest.raises(TooManyPixels):
        normalize(images.jpeg(images.astronaut()), "", Limits(max_pixels=512 * 511))


def test_clean_upright_jpeg_keeps_its_pixels_and_loses_its_metadata() -> None:
    rgb = images.astronaut()
    exif = images.exif_with_gps_and_orientation(1)
    data = images.jpeg(rgb, exif=exif, comment=b"shot at home")
    original = np.asarray(_decoded(images.jpeg(rgb)))
    out = normalize(data + b"TRAILING-MOTION-PHOTO", "image/jpeg", LIMITS)
    img = _decoded(out.data)
    assert np.array_equal(np.asarray(img), original)  # same entropy data: bit-identical pixels
    assert len(img.getexif()) == 0 and "comment" not in img.info
    assert b"SecretCam" not in out.data and b"shot at home" not in out.data and b"TRAILING" not in out.data
    assert out.data.endswith(bytes((0xFF, 0xD9)))


def test_progressive_jpeg_is_stripped_losslessly_too() -> None:
    rgb = images.astronaut()
    data = images.jpeg(rgb, progressive=True, exif=images.exif_with_gps_and_orientation(1))
    out = normalize(data, "", LIMITS)
    assert b"SecretCam" not in out.data
    assert np.array_equal(np.asarray(_decoded(out.data)), np.asarray(_decoded(data)))


def test_too_many_pixels_is_told_in_likeness_words() -> None:
    with pytest.raises(TooManyPixels) as info:
        normalize(images.bomb_png(), "", LIMITS)
    message = str(info.value)
    assert "limit is" in message and "decompression bomb" not in message.lower() and "DOS" not in message


def test_deep_grey_conversion_rounds_like_the_float_formula_without_float64() -> None:
    from likeness_ingestion.domain.normalize import _deep_grey_to_rgb8

    values = (np.arange(600 * 100, dtype=np.uint32) * 7 % 65536).astype(np.uint16).reshape(600, 100)
    img = Image.fromarray(values)
    out = np.asarray(_deep_grey_to_rgb8(img))[..., 0]
    expected = np.clip(values.astype(np.float64) * (255.0 / 65535.0) + 0.5, 0, 255).astype(np.uint8)
    assert out.shape == values.shape and np.array_equal(out, expected)


@pytest.mark.parametrize("restart", [{}, {"restart_marker_rows": 1}, {"restart_marker_blocks": 7}])
def test_entropy_data_with_stuffing_and_restarts_is_copied_whole(restart: dict) -> None:
    rgb = np.random.default_rng(1).integers(0, 256, (96, 136, 3), dtype=np.uint8)  # noise: many stuffed FF00 bytes
    data = images.jpeg(rgb, exif=images.exif_with_gps_and_orientation(1), **restart)
    assert b"\xff\x00" in data and (not restart or b"\xff\xd0" in data)
    out = normalize(data, "image/jpeg", LIMITS)
    assert out.data.endswith(data[data.index(b"\xff\xda") :])  # up to and including the end marker
    assert np.array_equal(np.asarray(_decoded(out.data)), np.asarray(_decoded(data)))
    with pytest.raises(CorruptImage):
        normalize(data[: len(data) // 2], "image/jpeg", LIMITS)
