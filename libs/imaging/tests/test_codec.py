"""decode_rgb's OpenCV path for JPEGs gives exactly Pillow's pixels, upright, at every scale and orientation."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageOps

from likeness_imaging import codec


def _jpeg(rgb: np.ndarray, orientation: int = 1, mode: str = "RGB", **save: object) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    out = io.BytesIO()
    Image.fromarray(rgb).convert(mode).save(out, format="JPEG", quality=90, exif=exif, **save)
    return out.getvalue()


def _pillow(data: bytes, min_side: int | None = None) -> np.ndarray:
    """What decode_rgb gave before it used OpenCV: Pillow's draft, exif_transpose and conversion."""
    with Image.open(io.BytesIO(data)) as opened:
        if min_side:
            opened.draft("RGB", (min_side, min_side))
        return np.asarray(ImageOps.exif_transpose(opened).convert("RGB"))


def _photo(w: int = 403, h: int = 301) -> np.ndarray:
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:h, 0:w]
    rgb = np.stack([xx * 255 // w, yy * 255 // h, (xx + yy) % 256], axis=-1).astype(np.float64)
    rgb[: h // 3, : w // 4] = (250, 20, 30)  # a corner block: any wrong flip or turn moves it
    return np.clip(rgb + rng.normal(0, 6, rgb.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("min_side", [None, 1500, 300, 150, 75, 37])
def test_every_orientation_and_scale_matches_pillow(orientation: int, min_side: int | None) -> None:
    data = _jpeg(_photo(), orientation)
    ours = codec.decode_rgb(data, min_side=min_side)
    assert ours.dtype == np.uint8 and ours.shape[2] == 3
    assert np.array_equal(ours, _pillow(data, min_side))


@pytest.mark.parametrize("save", [{"progressive": True}, {"subsampling": 0}, {"subsampling": 1}])
def test_progressive_and_other_subsamplings_match_pillow(save: dict[str, object]) -> None:
    data = _jpeg(_photo(), 6, "RGB", **save)
    assert np.array_equal(codec.decode_rgb(data), _pillow(data))
    assert np.array_equal(codec.decode_rgb(data, min_side=100), _pillow(data, 100))


def test_grey_and_cmyk_jpegs_are_rgb_like_pillows() -> None:
    for mode in ("L", "CMYK"):
        data = _jpeg(_photo(), 3, mode=mode)
        assert np.array_equal(codec.decode_rgb(data, min_side=100), _pillow(data, 100)), mode


def test_a_truncated_jpeg_is_still_refused() -> None:
    data = _jpeg(_photo(800, 600))
    with pytest.raises(codec.UndecodableImage):
        codec.decode_rgb(data[: len(data) // 2])
    with pytest.raises(codec.UndecodableImage):
        codec.decode_rgb(data[: len(data) // 2], min_side=100)


def test_the_pixel_bound_is_checked_before_decoding() -> None:
    with pytest.raises(codec.UndecodableImage, match="more than"):
        codec.decode_rgb(_jpeg(_photo()), max_pixels=1000)


def test_a_whole_rgb_jpeg_takes_the_opencv_path(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _jpeg(_photo(), 6)
    expected = _pillow(data, 100)

    def no_pillow_transpose(image: Image.Image) -> Image.Image:
        raise AssertionError("Pillow decoded it")

    monkeypatch.setattr(codec.ImageOps, "exif_transpose", no_pillow_transpose)
    assert np.array_equal(codec.decode_rgb(data, min_side=100), expected)


def test_an_unoptimised_jpeg_has_the_same_pixels() -> None:
    rgb = _photo()
    fast, small = codec.encode_jpeg(rgb, 85, optimize=False), codec.encode_jpeg(rgb, 85)
    assert len(fast) > len(small)  # the Huffman tables were not fitted
    assert np.array_equal(codec.decode_rgb(fast), codec.decode_rgb(small))
