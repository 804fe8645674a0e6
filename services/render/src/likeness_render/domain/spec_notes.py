"""Geometry some spec rows state only in their notes: pixel bands and percentage bands."""

from __future__ import annotations

import re
from dataclasses import dataclass

OptionalRange = tuple[float | None, float | None]

_NUM = r"(\d+(?:\.\d+)?)"
_HEAD_PX = re.compile(rf"\bhead (>= ?)?{_NUM}(?:-{_NUM})? px\b")
_EYE_PX = re.compile(rf"\beye line (>= ?)?{_NUM}(?:-{_NUM})? px above (?:the )?bottom edge")
_CROWN_PX = re.compile(rf"\bcrown >= ?{_NUM} px below (?:the )?top")
_HAIR_TOP_PX = re.compile(rf"\bhair top {_NUM}-{_NUM} px below (?:the )?top edge")
_HEAD_PCT = re.compile(rf"\bhead {_NUM}-{_NUM}%")
_EYE_PCT = re.compile(rf"\beye line {_NUM}-{_NUM}%")
_PIXEL_FRAME = re.compile(r"\b(\d+)x(\d+) px\b")


@dataclass(frozen=True)
class NotesGeometry:
    """Geometry stated only in a row's notes: pixel bands of pixel-defined uploads and
    bands given as fractions of the image height. ``None`` where not stated."""

    head_px: OptionalRange = (None, None)
    eye_from_bottom_px: OptionalRange = (None, None)
    top_margin_px: OptionalRange = (None, None)
    head_fraction: OptionalRange = (None, None)
    eye_fraction: OptionalRange = (None, None)


def parse_notes_geometry(notes: str | None, width_px: int | None, height_px: int | None) -> NotesGeometry:
    """Read pixel and percentage bands out of a row's notes.

    Notes are ``;``-separated clauses. A clause that names a pixel frame other than the
    row's own (e.g. gb-passport-digital: "idify preset: 900x1200 px, head >= 660 px") is
    about a different composition, so its bands are ignored rather than rescaled.
    """
    if not notes:
        return NotesGeometry()
    head_px: OptionalRange = (None, None)
    eye_px: OptionalRange = (None, None)
    top_px: OptionalRange = (None, None)
    head_frac: OptionalRange = (None, None)
    eye_frac: OptionalRange = (None, None)
    for clause in notes.split(";"):
        frames = {(int(w), int(h)) for w, h in _PIXEL_FRAME.findall(clause)}
        if frames and frames != {(width_px, height_px)}:
            continue
        if head_px == (None, None) and (m := _HEAD_PX.search(clause)):
            head_px = _range_from_match(m)
        if eye_px == (None, None) and (m := _EYE_PX.search(clause)):
            eye_px = _range_from_match(m)
        if top_px == (None, None):
            if m := _CROWN_PX.search(clause):
                top_px = (float(m.group(1)), None)
            elif m := _HAIR_TOP_PX.search(clause):
                top_px = (float(m.group(1)), float(m.group(2)))
        if head_frac == (None, None) and (m := _HEAD_PCT.search(clause)):
            head_frac = (float(m.group(1)) / 100.0, float(m.group(2)) / 100.0)
        if eye_frac == (None, None) and (m := _EYE_PCT.search(clause)):
            eye_frac = (float(m.group(1)) / 100.0, float(m.group(2)) / 100.0)
    return NotesGeometry(head_px, eye_px, top_px, head_frac, eye_frac)


def _range_from_match(m: re.Match[str]) -> OptionalRange:
    at_least, lo, hi = m.group(1), m.group(2), m.group(3)
    if at_least or hi is None:
        return float(lo), None
    return float(lo), float(hi)
