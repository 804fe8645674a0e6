"""Loading the spec catalog: typed rows of the packaged CSV files, validated at load.

The CSV files in ``likeness_render.data`` are the source of truth (copied from the shared
reference data). Every row must load: a rule that rejects a real row is a wrong rule, and
the accommodations made for real rows are documented next to the rule they relax.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Callable, Iterator, Sequence
from functools import cache
from importlib import resources
from typing import TypeVar

from likeness_render.domain.spec_catalog import Catalog
from likeness_render.domain.specs import MM_PER_INCH, Medium, Paper, Spec

SPECS_FILE = "id_photo_specs.csv"
PAPERS_FILE = "print_media.csv"

T = TypeVar("T")

SPEC_COLUMNS = (
    "id", "country_code", "country", "document", "width_mm", "height_mm", "dpi",
    "width_px", "height_px", "head_min_mm", "head_max_mm", "eye_from_bottom_min_mm",
    "eye_from_bottom_max_mm", "top_margin_min_mm", "top_margin_max_mm", "background",
    "file_min_kb", "file_max_kb", "format", "print_or_digital", "source", "notes",
)  # fmt: skip
PAPER_COLUMNS = ("id", "name", "width_mm", "height_mm", "notes")

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


class CatalogError(ValueError):
    """A catalog file failed validation; ``problems`` names each row id and line."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = tuple(problems)
        shown = "\n  ".join(self.problems[:20])
        more = f"\n  ... and {len(self.problems) - 20} more" if len(self.problems) > 20 else ""
        super().__init__(f"{source}: {len(self.problems)} problem(s):\n  {shown}{more}")


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
    return _parse(text, source, SPEC_COLUMNS, _valid_spec)


def _valid_spec(row: dict[str, str], problems: _RowProblems) -> Spec | None:
    spec = _build_spec(row, problems)
    if spec is not None:
        _validate_spec(spec, problems)
    return spec


def _parse(text: str, source: str, columns: Sequence[str], build: Callable[[dict[str, str], _RowProblems], T | None]) -> tuple[T, ...]:
    """Every row built by ``build`` (which reports its problems); ids must be unique. Raises
    ``CatalogError`` listing every problem of every row."""
    all_problems: list[str] = []
    built: list[T] = []
    first_line: dict[str, int] = {}
    for line, row in _rows(text, source, columns):
        problems = _RowProblems(source, line, row["id"], all_problems)
        if row["id"] in first_line:
            problems.add(f"duplicate id (first on line {first_line[row['id']]})")
        else:
            first_line[row["id"]] = line
        item = build(row, problems)
        if problems.count == 0 and item is not None:
            built.append(item)
    if all_problems:
        raise CatalogError(source, all_problems)
    return tuple(built)


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
    return _parse(text, source, PAPER_COLUMNS, _build_paper)


def _build_paper(row: dict[str, str], problems: _RowProblems) -> Paper | None:
    if not _SLUG.fullmatch(row["id"]):
        problems.add("id is not a lowercase slug (a-z, 0-9, single hyphens)")
    if not row["name"]:
        problems.add("name is empty")
    width = _float(row, "width_mm", problems)
    height = _float(row, "height_mm", problems)
    if width is None or height is None:
        problems.add("width_mm and height_mm are required")
        return None
    lo, hi = PAPER_MM_RANGE
    for label, value in (("width_mm", width), ("height_mm", height)):
        if not lo <= value <= hi:
            problems.add(f"{label} {value:g} outside {lo:g}-{hi:g} mm")
    if width > height:
        problems.add("paper sizes are listed in portrait orientation (width <= height)")
    return Paper(row["id"], row["name"], width, height, row["notes"] or None)
