"""ID-photo specs: one typed row of the catalog and the geometry it implies (frame size,
head and eye bands at a resolution). Loading is spec_loading.py; lookup and search is
spec_catalog.py.

Units: millimetres for physical geometry, pixels for digital frames, KB = 1024 bytes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property

from likeness_render.domain.spec_notes import NotesGeometry, OptionalRange, parse_notes_geometry

MM_PER_INCH = 25.4
# Photo labs and most online-upload tools work at 300 dpi; specs that state no resolution
# are rendered there unless the caller chooses otherwise.
DEFAULT_DPI = 300.0
BYTES_PER_KB = 1024

# Fallback geometry when a spec states nothing: ICAO Doc 9303 puts chin-to-crown at
# 70-80 % of the image height, and ISO/IEC 19794-5 (best practice for full-frontal images)
# puts the eye line at 50-70 % of the height above the bottom edge. The intl-icao row's
# 50-60 % eye band is A-Box's narrower transcription for the 35x45 mm frame; the wider ISO
# band is used because the same fallback must also fit tall frames such as 50x70 mm.
DEFAULT_HEAD_FRACTION = (0.70, 0.80)
DEFAULT_EYE_FRACTION = (0.50, 0.70)


class SpecNotFoundError(LookupError):
    """No spec with the requested id."""


class PaperNotFoundError(LookupError):
    """No paper size with the requested id."""


class Medium(StrEnum):
    PRINT = "print"
    DIGITAL = "digital"
    BOTH = "both"


class BandOrigin(StrEnum):
    """Where a band bound comes from, so rules can tell stated facts from fallbacks."""

    STATED = "stated"  # a CSV column
    NOTES = "notes"  # parsed from the row's notes (pixel or percentage bands)
    DERIVED = "derived"  # missing bound filled from the stated one (see Spec.head_band_mm)
    DEFAULT = "default"  # nothing stated: ICAO / ISO proportions of the frame height


_STATED_ORIGINS = frozenset({BandOrigin.STATED, BandOrigin.NOTES})


@dataclass(frozen=True)
class Band:
    """A closed range with the provenance of each bound."""

    min: float
    max: float
    min_origin: BandOrigin
    max_origin: BandOrigin

    @property
    def midpoint(self) -> float:
        return (self.min + self.max) / 2.0

    @property
    def min_stated(self) -> bool:
        return self.min_origin in _STATED_ORIGINS

    @property
    def max_stated(self) -> bool:
        return self.max_origin in _STATED_ORIGINS

    def contains(self, value: float) -> bool:
        return self.min <= value <= self.max

    def scaled(self, factor: float) -> Band:
        return Band(self.min * factor, self.max * factor, self.min_origin, self.max_origin)


@dataclass(frozen=True)
class Spec:
    """One ID-photo specification; every CSV column typed, empty cells as ``None``."""

    id: str
    country_code: str
    country: str
    document: str
    width_mm: float | None
    height_mm: float | None
    dpi: float | None
    width_px: int | None
    height_px: int | None
    head_min_mm: float | None
    head_max_mm: float | None
    eye_from_bottom_min_mm: float | None
    eye_from_bottom_max_mm: float | None
    top_margin_min_mm: float | None
    top_margin_max_mm: float | None
    background: tuple[str, ...]  # lowercase "#rrggbb", most preferred first
    file_min_kb: float | None
    file_max_kb: float | None
    format: str | None  # "JPEG" / "PNG" where stated
    print_or_digital: Medium
    source: tuple[str, ...]  # most authoritative first
    notes: str | None

    @property
    def is_pixel_defined(self) -> bool:
        """True for digital uploads defined only by a pixel size (no mm frame)."""
        return self.width_mm is None

    @property
    def is_print(self) -> bool:
        return self.print_or_digital in (Medium.PRINT, Medium.BOTH)

    def px_per_mm(self, default_dpi: float = DEFAULT_DPI) -> float:
        """Pixels per millimetre of the frame.

        When a row gives both a mm and a pixel frame the pixel frame wins (it is what gets
        encoded), averaged over both axes; otherwise the stated dpi, else ``default_dpi``.
        For pixel-only specs the mm frame is nominal: the pixel frame printed at that dpi.
        """
        if self.width_px is not None and self.height_px is not None and self.width_mm is not None and self.height_mm is not None:
            return (self.width_px / self.width_mm + self.height_px / self.height_mm) / 2.0
        return (self.dpi if self.dpi is not None else default_dpi) / MM_PER_INCH

    def effective_dpi(self, default_dpi: float = DEFAULT_DPI) -> float:
        """Resolution to write into the file so it prints at its true size."""
        if self.dpi is not None:
            return self.dpi
        return self.px_per_mm(default_dpi) * MM_PER_INCH

    def size_px(self, default_dpi: float = DEFAULT_DPI) -> tuple[int, int]:
        """(width, height) in pixels: stated, else the mm frame at the spec's dpi."""
        if self.width_px is not None and self.height_px is not None:
            return self.width_px, self.height_px
        assert self.width_mm is not None and self.height_mm is not None  # checked at load
        scale = self.px_per_mm(default_dpi)
        return round(self.width_mm * scale), round(self.height_mm * scale)

    def size_mm(self, default_dpi: float = DEFAULT_DPI) -> tuple[float, float]:
        """(width, height) in mm: stated, else the pixel frame at ``default_dpi``."""
        if self.width_mm is not None and self.height_mm is not None:
            return self.width_mm, self.height_mm
        assert self.width_px is not None and self.height_px is not None  # checked at load
        scale = self.px_per_mm(default_dpi)
        return self.width_px / scale, self.height_px / scale

    @cached_property
    def notes_geometry(self) -> NotesGeometry:
        return parse_notes_geometry(self.notes, self.width_px, self.height_px)

    def top_margin_band_mm(self, default_dpi: float = DEFAULT_DPI) -> OptionalRange:
        """Crown-to-top-edge gap as stated (columns, else notes); no fallback."""
        if self.top_margin_min_mm is not None or self.top_margin_max_mm is not None:
            return self.top_margin_min_mm, self.top_margin_max_mm
        lo, hi = self.notes_geometry.top_margin_px
        scale = self.px_per_mm(default_dpi)
        return (
            None if lo is None else lo / scale,
            None if hi is None else hi / scale,
        )

    def head_band_mm(self, default_dpi: float = DEFAULT_DPI) -> Band:
        """Chin-to-crown band in mm.

        Sources in order: the mm columns; for pixel-defined uploads the pixel band in the
        notes (converted at ``px_per_mm``) or a band given as % of the image height. A
        missing upper bound is derived from the lower one with ICAO's relative width
        (80/70), never above the frame height minus the stated top margin; a missing lower
        bound likewise. With nothing stated the ICAO 70-80 % of frame height is used. The
        origin of each bound is kept so compliance rules can soften unstated bounds.
        """
        height = self.size_mm(default_dpi)[1]
        lo: float | None = self.head_min_mm
        hi: float | None = self.head_max_mm
        origin = BandOrigin.STATED
        if lo is None and hi is None:
            lo, hi, origin = self._notes_band(self.notes_geometry.head_px, self.notes_geometry.head_fraction, default_dpi)
        top_min = self.top_margin_band_mm(default_dpi)[0]
        return _complete_band(lo, hi, origin, height, DEFAULT_HEAD_FRACTION, ceiling=height - (top_min or 0.0))

    def head_band_px(self, default_dpi: float = DEFAULT_DPI) -> Band:
        return self.head_band_mm(default_dpi).scaled(self.px_per_mm(default_dpi))

    def eye_band_mm(self, default_dpi: float = DEFAULT_DPI) -> Band:
        """Eye line above the bottom edge in mm; same source order and fallback rules as
        ``head_band_mm`` with the ISO/IEC 19794-5 50-70 % band as the default."""
        height = self.size_mm(default_dpi)[1]
        lo: float | None = self.eye_from_bottom_min_mm
        hi: float | None = self.eye_from_bottom_max_mm
        origin = BandOrigin.STATED
        if lo is None and hi is None:
            lo, hi, origin = self._notes_band(
                self.notes_geometry.eye_from_bottom_px,
                self.notes_geometry.eye_fraction,
                default_dpi,
            )
        return _complete_band(lo, hi, origin, height, DEFAULT_EYE_FRACTION, ceiling=height)

    def eye_band_px(self, default_dpi: float = DEFAULT_DPI) -> Band:
        return self.eye_band_mm(default_dpi).scaled(self.px_per_mm(default_dpi))

    def file_band_bytes(self) -> tuple[int | None, int | None]:
        """File-size band in bytes (1 KB = 1024 B)."""
        return (
            None if self.file_min_kb is None else math.ceil(self.file_min_kb * BYTES_PER_KB),
            None if self.file_max_kb is None else math.floor(self.file_max_kb * BYTES_PER_KB),
        )

    def _notes_band(self, px: OptionalRange, fraction: OptionalRange, default_dpi: float) -> tuple[float | None, float | None, BandOrigin]:
        if px != (None, None):
            scale = self.px_per_mm(default_dpi)
            lo, hi = px
            return (
                None if lo is None else lo / scale,
                None if hi is None else hi / scale,
                BandOrigin.NOTES,
            )
        if fraction != (None, None):
            height = self.size_mm(default_dpi)[1]
            flo, fhi = fraction
            return (
                None if flo is None else flo * height,
                None if fhi is None else fhi * height,
                BandOrigin.NOTES,
            )
        return None, None, BandOrigin.STATED


def _complete_band(
    lo: float | None,
    hi: float | None,
    origin: BandOrigin,
    frame_height: float,
    default_fraction: tuple[float, float],
    ceiling: float,
) -> Band:
    flo, fhi = default_fraction
    ratio = fhi / flo
    if lo is None and hi is None:
        return Band(flo * frame_height, fhi * frame_height, BandOrigin.DEFAULT, BandOrigin.DEFAULT)
    if hi is None:
        assert lo is not None
        return Band(lo, max(lo, min(lo * ratio, ceiling)), origin, BandOrigin.DERIVED)
    if lo is None:
        return Band(hi / ratio, hi, BandOrigin.DERIVED, origin)
    return Band(lo, hi, origin, origin)


@dataclass(frozen=True)
class Paper:
    """A photo-paper or sheet size, portrait orientation, exact mm."""

    id: str
    name: str
    width_mm: float
    height_mm: float
    notes: str | None
