"""Real and deliberately broken test images."""

from __future__ import annotations

import io

import numpy as np
from matplotlib import cbook
from PIL import Image
from skimage import data as skdata


def astronaut() -> np.ndarray:
    return np.asarray(skdata.astronaut())


def grace_hopper_jpeg() -> bytes:
    with cbook.get_sample_data("grace_hopper.jpg") as fh:
        return fh.read()


def jpeg(rgb: np.ndarray, **kwargs: object) -> bytes:
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format="JPEG", quality=90, **kwargs)
    return out.getvalue()


def exif_with_gps_and_orientation(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation  # Orientation
    exif[0x010F] = "SecretCam"  # Make
    gps = {1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0)}
    exif[0x8825] = gps  # GPSInfo
    return exif


# How a camera stores an upright image for each EXIF orientation: the inverse of what a reader applies.
_STORED = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, k=1),
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
    8: lambda a: np.rot90(a, k=-1),
}


def rotated_with_exif(orientation: int = 6, upright: np.ndarray | None = None) -> tuple[bytes, np.ndarray]:
    """A JPEG stored as a camera stores it for `orientation` (6: sideways, display rotated 90° clockwise),
    with GPS and maker tags; and the upright pixels. The default picture is 512x384, so sideways is visible."""
    if upright is None:
        upright = astronaut()[64:448]
    stored = np.ascontiguousarray(_STORED[orientation](upright))
    data = jpeg(stored, exif=exif_with_gps_and_orientation(orientation))
    return data, upright


def png_variant(mode: str) -> bytes:
    rgb = Image.fromarray(astronaut()[:128, :128])
    if mode == "P":
        img = rgb.convert("P", palette=Image.Palette.ADAPTIVE)
    elif mode == "RGBA":
        img = rgb.convert("RGBA")
        img.putalpha(128)
    elif mode == "L":
        img = rgb.convert("L")
    elif mode == "I;16":
        img = Image.fromarray(np.asarray(rgb.convert("L"), dtype=np.uint16) * 257)
    else:
        raise ValueError(mode)
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def cmyk_jpeg() -> bytes:
    out = io.BytesIO()
    Image.fromarray(astronaut()[:128, :128]).convert("CMYK").save(out, format="JPEG")
    return out.getvalue()


def heic() -> bytes:
    import pillow_heif

    pillow_heif.register_heif_opener()
    out = io.BytesIO()
    Image.fromarray(astronaut()).save(out, format="HEIF", quality=90)
    return out.getvalue()


def webp() -> bytes:
    out = io.BytesIO()
    Image.fromarray(astronaut()).save(out, format="WEBP", quality=90)
    return out.getvalue()


def big_jpeg(width: int = 4000, height: int = 3000) -> bytes:
    """A 12 MP photo-like JPEG (the astronaut scaled up)."""
    img = Image.fromarray(astronaut()).resize((width, height), Image.Resampling.BILINEAR)
    # Sensor-like noise so the file is as large as a real phone photo.
    noise = np.random.default_rng(0).normal(0, 6, (height, width, 3))
    img = Image.fromarray(np.clip(np.asarray(img, dtype=np.float32) + noise, 0, 255).astype(np.uint8))
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=88)
    return out.getvalue()


def bomb_png(side: int = 10_000) -> bytes:
    """A tiny PNG that would decode to side*side pixels."""
    out = io.BytesIO()
    Image.new("1", (side, side)).save(out, format="PNG")
    return out.getvalue()
