"""ID-photo spec catalog: typed rows of the packaged CSV files, validated at load.

The CSV files in ``likeness_render.data`` are the source of truth (copied from the shared
reference data). Every row must load: a rule that rejects a real row is a wrong rule, and
the accommodations made for real rows are documented next to the rule they relax.

Units: millimetres for physical geometry, pixels for digital frames, KB = 1024 bytes.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cache, cached_property
from importlib import resources

MM_PER_INCH = 25.4
# Photo labs and most online-upload tools work at 300 dpi; specs that state no resolution
# are rendered there unless the caller chooses otherwise.
DEFAULT_DPI = 300.0
BYTES_PER_KB = 1024

SPECS_FILE = "id_photo_specs.csv"
PAPERS_FILE = "print_media.csv"

SPEC_COLUMNS = (
    "id", "country_code", "country", "document", "width_mm", "height_mm", "dpi",
    "width_px", "height_px", "head_min_mm", "head_max_mm", "eye_from_bottom_min_mm",
    "eye_from_bottom_max_mm", "top_margin_min_mm", "top_margin_max_mm", "background",
    "file_min_kb", "file_max_kb", "format", "print_or_digital", "source", "notes",
)  # fmt: skip
PAPER_COLUMNS = ("id", "name", "width_mm", "height_mm", "notes")

# Fallback geometry when a spec states nothing: ICAO Doc 9303 puts chin-to-crown at
# 70-80 % of the image height, and ISO/IEC 19794-5 (best practice for full-frontal images)
# puts the eye line at 50-70 % of the height above the bottom edge. The intl-icao row's
# 50-60 % eye band is A-Box's narrower transcription for the 35x45 mm frame; the wider ISO
# band is used because the same fallback must also fit tall frames such as 50x70 mm.
DEFAULT_HEAD_FRACTION = (0.70, 0.80)
DEFAULT_EYE_FRACTION = (0.50, 0.70)

# Plausibility limits. Print rows: a cut ID photo is 10-100 mm a side. Digital rows that
# describe a physical composition in mm are allowed up to 200 mm because one real row
# (in-neet-post-card-photo-4-25x6-5-inch, a 4x6 in postcard-size upload) is 101.6x152.4 mm.
PRINT_MM_RANGE = (10.0, 100.0)
DIGITAL_MM_RANGE = (10.0, 200.0)
PX_RANGE = (50, 10_000)
DPI_RANGE = (72.0, 2400.0)
PAPER_MM_RANGE = (30.0, 600.0)
# Where a row gives both a mm frame and a pixel frame they must describe the same shape;
# 1.5 % absorbs the rounding of a pixel size derived from mm (358x441 px vs 26x32 mm).
FRAME_ASPECT_TOLERANCE = 0.015
KNOWN_SOURCES = frozenset({"icao", "abox", "hivision", "idify"})
KNOWN_FORMATS = frozenset({"JPEG", "PNG"})

_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_COUNTRY_CODE = re.compile(r"[A-Z]{2}|intl")
_HEX_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
_NUM = r"(\d+(?:\.\d+)?)"
_HEAD_PX = re.compile(rf"\bhead (>= ?)?{_NUM}(?:-{_NUM})? px\b")
_EYE_PX = re.compile(rf"\beye line (>= ?)?{_NUM}(?:-{_NUM})? px above (?:the )?bottom edge")
_CROWN_PX = re.compile(rf"\bcrown >= ?{_NUM} px below (?:the )?top")
_HAIR_TOP_PX = re.compile(rf"\bhair top {_NUM}-{_NUM} px below (?:the )?top edge")
_HEAD_PCT = re.compile(rf"\bhead {_NUM}-{_NUM}%")
_EYE_PCT = re.compile(rf"\beye line {_NUM}-{_NUM}%")
_PIXEL_FRAME = re.compile(r"\b(\d+)x(\d+) px\b")
_WORD = re.compile(r"\w+")


class CatalogError(ValueError):
    """A catalog file failed validation; ``problems`` names each row id and line."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = tuple(problems)
        shown = "\n  ".join(self.problems[:20])
        more = f"\n  ... and {len(self.problems) - 20} more" if len(self.problems) > 20 else ""
        super().__init__(f"{source}: {len(self.problems)} problem(s):\n  {shown}{more}")


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


OptionalRange = tuple[float | None, float | None]


@dataclass(frozen=True)
class NotesGeometry:
    """Geometry stated only in a row's notes: pixel bands of pixel-defined uploads and
    bands given as fractions of the image height. ``None`` where not stated."""

    head_px: OptionalRange = (None, None)
    eye_from_bottom_px: OptionalRange = (None, None)
    top_margin_px: OptionalRange = (None, None)
    head_fraction: OptionalRange = (None, None)
    eye_fraction: OptionalRange = (None, None)


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


@dataclass(frozen=True)
class Paper:
    """A photo-paper or sheet size, portrait orientation, exact mm."""

    id: str
    name: str
    width_mm: float
    height_mm: float
    notes: str | None


@dataclass(frozen=True)
class Country:
    code: str
    name: str  # the name most rows use for the code (EU has two: first seen wins ties)
    spec_count: int


class Catalog:
    """Specs and paper sizes, looked up by id and searched case-insensitively."""

    def __init__(self, specs: Iterable[Spec], papers: Iterable[Paper] = ()) -> None:
        self._specs = tuple(specs)
        self._papers = tuple(papers)
        self._by_id = {s.id: s for s in self._specs}
        self._papers_by_id = {p.id: p for p in self._papers}
        if len(self._by_id) != len(self._specs):
            dupes = sorted(i for i, n in Counter(s.id for s in self._specs).items() if n > 1)
            raise ValueError(f"duplicate spec ids: {', '.join(dupes)}")
        if len(self._papers_by_id) != len(self._papers):
            raise ValueError("duplicate paper ids")
        self._haystacks: dict[str, str] = {}
        self._words: dict[str, tuple[str, ...]] = {}
        for s in self._specs:
            haystack = " ".join((s.id, s.country_code, s.country, s.document, s.notes or "")).casefold()
            self._haystacks[s.id] = haystack
            self._words[s.id] = tuple(_WORD.findall(haystack))

    def __len__(self) -> int:
        return len(self._specs)

    def __iter__(self) -> Iterator[Spec]:
        return iter(self._specs)

    def __contains__(self, spec_id: object) -> bool:
        return isinstance(spec_id, str) and spec_id.strip().lower() in self._by_id

    @property
    def specs(self) -> tuple[Spec, ...]:
        return self._specs

    def get(self, spec_id: str) -> Spec:
        try:
            return self._by_id[spec_id.strip().lower()]
        except KeyError:
            raise SpecNotFoundError(f"unknown spec id {spec_id!r}") from None

    def search(
        self,
        country: str | None = None,
        document: str | None = None,
        text: str | None = None,
    ) -> tuple[Spec, ...]:
        """Specs matching every given filter, in catalog order.

        ``country`` equals the code or the country name; ``document`` is a substring of
        the document name; ``text`` is split on whitespace and every word must start a
        word of the id, country code, country, document or notes (so "us" finds US specs
        but not "Austria"). Words in scripts written without spaces (CJK) match anywhere.
        All case-insensitive.
        """
        country_key = country.strip().casefold() if country else None
        document_key = document.strip().casefold() if document else None
        terms = text.casefold().split() if text else []
        out = []
        for s in self._specs:
            if country_key and country_key not in (
                s.country_code.casefold(),
                s.country.casefold(),
            ):
                continue
            if document_key and document_key not in s.document.casefold():
                continue
            if not all(self._matches(s.id, term) for term in terms):
                continue
            out.append(s)
        return tuple(out)

    def _matches(self, spec_id: str, term: str) -> bool:
        if not term.isascii():
            return term in self._haystacks[spec_id]
        return any(word.startswith(term) for word in self._words[spec_id]) or (
            # a term with punctuation ("35x45", "e-visa") is looked up as typed
            not term.isalnum() and term in self._haystacks[spec_id]
        )

    def countries(self) -> tuple[Country, ...]:
        """Every country code with specs, sorted by code."""
        names: dict[str, Counter[str]] = {}
        for s in self._specs:
            names.setdefault(s.country_code, Counter())[s.country] += 1
        return tuple(Country(code, counts.most_common(1)[0][0], sum(counts.values())) for code, counts in sorted(names.items()))

    def papers(self) -> tuple[Paper, ...]:
        return self._papers

    def paper(self, paper_id: str) -> Paper:
        try:
            return self._papers_by_id[paper_id.strip().lower()]
        except KeyError:
            raise PaperNotFoundError(f"unknown paper id {paper_id!r}") from None


@cache
def load_catalog() -> Catalog:
    """The packaged catalog (parsed and validated once per process)."""
    data = resources.files("likeness_render.data")
    return Catalog(
        parse_specs(data.joinpath(SPECS_FILE).read_text(encoding="utf-8"), SPECS_FILE),
        parse_papers(data.joinpath(PAPERS_FILE).read_text(encoding="utf-8"), PAPERS_FILE),
    )


# ---------------------------------------------------------------- parsing + validation


class _RowProblems:
    """Collects problems for one row so every problem names the row id and line."""

    def __init__(self, source: str, line: int, row_id: str, sink: list[str]) -> None:
        self._prefix = f"{source} line {line} (id {row_id!r})"
        self._sink = sink
        self.count = 0

    def add(self, message: str) -> None:
        self.count += 1
        self._sink.append(f"{self._prefix}: {message}")


def _rows(text: str, source: str, columns: Sequence[str]) -> Iterator[tuple[int, dict[str, str]]]:
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        raise CatalogError(source, ["file is empty"])
    if tuple(h.strip() for h in header) != tuple(columns):
        raise CatalogError(source, [f"line 1: header {header!r} differs from the expected {list(columns)!r}"])
    last_line = reader.line_num
    for record in reader:
        start_line = last_line + 1
        last_line = reader.line_num
        if not any(cell.strip() for cell in record):
            continue
        if len(record) != len(columns):
            raise CatalogError(
                source,
                [f"line {start_line}: {len(record)} fields, expected {len(columns)}"],
            )
        yield start_line, {c: v.strip() for c, v in zip(columns, record, strict=True)}


def _float(row: dict[str, str], col: str, problems: _RowProblems) -> float | None:
    raw = row[col]
    if raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        problems.add(f"{col} {raw!r} is not a number")
        return None
    if not math.isfinite(value):
        problems.add(f"{col} {raw!r} is not finite")
        return None
    return value


def _int(row: dict[str, str], col: str, problems: _RowProblems) -> int | None:
    raw = row[col]
    if raw == "":
        return None
    if not raw.isdigit():
        problems.add(f"{col} {raw!r} is not a whole number of pixels")
        return None
    return int(raw)


def parse_specs(text: str, source: str = SPECS_FILE) -> tuple[Spec, ...]:
    """Parse and validate the spec CSV; raises ``CatalogError`` listing every problem."""
    all_problems: list[str] = []
    specs: list[Spec] = []
    first_line: dict[str, int] = {}
    for line, row in _rows(text, source, SPEC_COLUMNS):
        problems = _RowProblems(source, line, row["id"], all_problems)
        spec = _build_spec(row, problems)
        if row["id"] in first_line:
            problems.add(f"duplicate id (first on line {first_line[row['id']]})")
        else:
            first_line[row["id"]] = line
        if spec is not None:
            _validate_spec(spec, problems)
        if problems.count == 0 and spec is not None:
            specs.append(spec)
    if all_problems:
        raise CatalogError(source, all_problems)
    return tuple(specs)


def _build_spec(row: dict[str, str], problems: _RowProblems) -> Spec | None:
    medium_raw = row["print_or_digital"]
    try:
        medium = Medium(medium_raw)
    except ValueError:
        problems.add(f"print_or_digital {medium_raw!r} is not one of print, digital, both")
        return None
    background = tuple(c.strip().lower() for c in row["background"].split("|") if c.strip())
    for colour in background:
        if not _HEX_COLOUR.fullmatch(colour):
            problems.add(f"background colour {colour!r} is not #rrggbb hex")
    spec = Spec(
        id=row["id"],
        country_code=row["country_code"],
        country=row["country"],
        document=row["document"],
        width_mm=_float(row, "width_mm", problems),
        height_mm=_float(row, "height_mm", problems),
        dpi=_float(row, "dpi", problems),
        width_px=_int(row, "width_px", problems),
        height_px=_int(row, "height_px", problems),
        head_min_mm=_float(row, "head_min_mm", problems),
        head_max_mm=_float(row, "head_max_mm", problems),
        eye_from_bottom_min_mm=_float(row, "eye_from_bottom_min_mm", problems),
        eye_from_bottom_max_mm=_float(row, "eye_from_bottom_max_mm", problems),
        top_margin_min_mm=_float(row, "top_margin_min_mm", problems),
        top_margin_max_mm=_float(row, "top_margin_max_mm", problems),
        background=background,
        file_min_kb=_float(row, "file_min_kb", problems),
        file_max_kb=_float(row, "file_max_kb", problems),
        format=row["format"].upper() or None,
        print_or_digital=medium,
        source=tuple(s.strip() for s in row["source"].split(";") if s.strip()),
        notes=row["notes"] or None,
    )
    return spec


def _check_range(problems: _RowProblems, label: str, lo: float | None, hi: float | None) -> None:
    if lo is not None and hi is not None and lo > hi:
        problems.add(f"{label} min {lo:g} > max {hi:g}")


def _validate_spec(s: Spec, problems: _RowProblems) -> None:
    if not _SLUG.fullmatch(s.id):
        problems.add("id is not a lowercase slug (a-z, 0-9, single hyphens)")
    if not _COUNTRY_CODE.fullmatch(s.country_code):
        problems.add(f"country_code {s.country_code!r} is neither ISO 3166-1 alpha-2 (upper case) nor 'intl'")
    if not s.country:
        problems.add("country is empty")
    if not s.document:
        problems.add("document is empty")
    if not s.source:
        problems.add("source is empty")
    for src in s.source:
        if src not in KNOWN_SOURCES and not src.startswith(("https://", "http://")):
            problems.add(f"source {src!r} is neither a URL nor one of {sorted(KNOWN_SOURCES)}")
    if s.format is not None and s.format not in KNOWN_FORMATS:
        problems.add(f"format {s.format!r} is not one of {sorted(KNOWN_FORMATS)}")

    has_mm = s.width_mm is not None and s.height_mm is not None
    has_px = s.width_px is not None and s.height_px is not None
    if (s.width_mm is None) != (s.height_mm is None):
        problems.add("width_mm and height_mm must be given together")
        return
    if (s.width_px is None) != (s.height_px is None):
        problems.add("width_px and height_px must be given together")
        return
    if not has_mm and not has_px:
        problems.add("no frame size: give width/height in mm or in px")
        return
    if s.is_print and not has_mm:
        problems.add(f"a {s.print_or_digital} spec needs its frame in mm")
        return

    if has_mm:
        assert s.width_mm is not None and s.height_mm is not None
        lo, hi = PRINT_MM_RANGE if s.is_print else DIGITAL_MM_RANGE
        for label, value in (("width_mm", s.width_mm), ("height_mm", s.height_mm)):
            if not lo <= value <= hi:
                problems.add(f"{label} {value:g} outside {lo:g}-{hi:g} mm for a {s.print_or_digital} spec")
    if has_px:
        assert s.width_px is not None and s.height_px is not None
        for label, px in (("width_px", s.width_px), ("height_px", s.height_px)):
            if not PX_RANGE[0] <= px <= PX_RANGE[1]:
                problems.add(f"{label} {px} outside {PX_RANGE[0]}-{PX_RANGE[1]} px")
    if s.dpi is not None and not DPI_RANGE[0] <= s.dpi <= DPI_RANGE[1]:
        problems.add(f"dpi {s.dpi:g} outside {DPI_RANGE[0]:g}-{DPI_RANGE[1]:g}")
    if has_mm and has_px:
        assert s.width_mm and s.height_mm and s.width_px and s.height_px
        aspect_mm = s.width_mm / s.height_mm
        aspect_px = s.width_px / s.height_px
        if abs(aspect_mm / aspect_px - 1.0) > FRAME_ASPECT_TOLERANCE:
            problems.add(f"mm frame {s.width_mm:g}x{s.height_mm:g} and pixel frame {s.width_px}x{s.height_px} have different shapes")
        if s.dpi is not None:
            for label, mm, px in (
                ("width", s.width_mm, s.width_px),
                ("height", s.height_mm, s.height_px),
            ):
                expected = mm * s.dpi / MM_PER_INCH
                if abs(px - expected) > 1.0 + 0.01 * expected:
                    problems.add(f"{label} {px} px does not match {mm:g} mm at {s.dpi:g} dpi ({expected:.0f} px)")

    if problems.count:
        return  # geometry below needs a sane frame
    height_mm = s.size_mm()[1]
    for label, v in (
        ("head_min_mm", s.head_min_mm),
        ("head_max_mm", s.head_max_mm),
        ("eye_from_bottom_min_mm", s.eye_from_bottom_min_mm),
        ("eye_from_bottom_max_mm", s.eye_from_bottom_max_mm),
    ):
        if v is not None and not 0.0 < v <= height_mm:
            problems.add(f"{label} {v:g} outside the {height_mm:g} mm frame height")
    for label, v in (("top_margin_min_mm", s.top_margin_min_mm), ("top_margin_max_mm", s.top_margin_max_mm)):
        if v is not None and not 0.0 <= v < height_mm:
            problems.add(f"{label} {v:g} outside the {height_mm:g} mm frame height")
    _check_range(problems, "head_mm", s.head_min_mm, s.head_max_mm)
    _check_range(problems, "eye_from_bottom_mm", s.eye_from_bottom_min_mm, s.eye_from_bottom_max_mm)
    _check_range(problems, "top_margin_mm", s.top_margin_min_mm, s.top_margin_max_mm)
    if s.head_min_mm is not None and s.top_margin_min_mm is not None and s.head_min_mm + s.top_margin_min_mm > height_mm:
        problems.add(f"head_min_mm {s.head_min_mm:g} + top_margin_min_mm {s.top_margin_min_mm:g} exceed the {height_mm:g} mm frame")
    for label, v in (("file_min_kb", s.file_min_kb), ("file_max_kb", s.file_max_kb)):
        if v is not None and v <= 0:
            problems.add(f"{label} {v:g} is not positive")
    _check_range(problems, "file_kb", s.file_min_kb, s.file_max_kb)

    geometry = s.notes_geometry
    if s.height_px is not None:
        for label, band in (
            ("notes head px", geometry.head_px),
            ("notes eye line px", geometry.eye_from_bottom_px),
            ("notes top margin px", geometry.top_margin_px),
        ):
            _check_range(problems, label, *band)
            for v in band:
                if v is not None and not 0.0 <= v <= s.height_px:
                    problems.add(f"{label} {v:g} outside the {s.height_px} px frame height")
        head_lo, top_lo = geometry.head_px[0], geometry.top_margin_px[0]
        if head_lo is not None and top_lo is not None and head_lo + top_lo > s.height_px:
            problems.add(f"notes head {head_lo:g} px + crown gap {top_lo:g} px exceed the {s.height_px} px frame")
    for label, band in (
        ("notes head %", geometry.head_fraction),
        ("notes eye line %", geometry.eye_fraction),
    ):
        _check_range(problems, label, *band)
        for v in band:
            if v is not None and not 0.0 < v <= 1.0:
                problems.add(f"{label} {v * 100:g} outside 0-100 %")


def parse_papers(text: str, source: str = PAPERS_FILE) -> tuple[Paper, ...]:
    """Parse and validate the print-media CSV; raises ``CatalogError``."""
    all_problems: list[str] = []
    papers: list[Paper] = []
    first_line: dict[str, int] = {}
    for line, row in _rows(text, source, PAPER_COLUMNS):
        problems = _RowProblems(source, line, row["id"], all_problems)
        if row["id"] in first_line:
            problems.add(f"duplicate id (first on line {first_line[row['id']]})")
        else:
            first_line[row["id"]] = line
        if not _SLUG.fullmatch(row["id"]):
            problems.add("id is not a lowercase slug (a-z, 0-9, single hyphens)")
        if not row["name"]:
            problems.add("name is empty")
        width = _float(row, "width_mm", problems)
        height = _float(row, "height_mm", problems)
        if width is None or height is None:
            problems.add("width_mm and height_mm are required")
        else:
            lo, hi = PAPER_MM_RANGE
            for label, value in (("width_mm", width), ("height_mm", height)):
                if not lo <= value <= hi:
                    problems.add(f"{label} {value:g} outside {lo:g}-{hi:g} mm")
            if width > height:
                problems.add("paper sizes are listed in portrait orientation (width <= height)")
        if problems.count == 0 and width is not None and height is not None:
            papers.append(Paper(row["id"], row["name"], width, height, row["notes"] or None))
    if all_problems:
        raise CatalogError(source, all_problems)
    return tuple(papers)
