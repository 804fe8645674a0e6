"""Print-sheet layout: pack ID photos onto photo paper and render the sheet.

Packing is done in pixels at the sheet's dpi (what gets printed is pixels, so a layout that
fits in mm but not after rounding is rejected). Each photo size gets a band of full-width
rows; bands are stacked top to bottom in the order the items were given, and the whole
block is centred on the paper so the cutting margins are even. Every combination of photo
orientation (per item) and paper orientation is tried.

``plan_best_sheet`` also chooses the spacing: the preferred margin and gap unless tighter
spacing places more photos, down to photos that touch (2x2 in on 4x6 in is the usual
6-up that way), where the cut lines fall on the shared borders.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

import cv2
import numpy as np
import numpy.typing as npt

from likeness_render.domain.specs import MM_PER_INCH, Paper

FILL: Final = "fill"
Count = int | Literal["fill"]
RGBImage = npt.NDArray[np.uint8]

# 2^n photo-orientation combinations are tried per paper orientation; 8 distinct sizes on
# one sheet is far beyond any real order and keeps the search at 512 cheap evaluations.
MAX_ITEMS = 8
# A photo whose aspect differs from its slot by more than this was rendered for another
# size; stretching it would distort the face geometry the spec depends on.
ASPECT_TOLERANCE = 0.02
CUT_MARK_GREY: Final = (150, 150, 150)
CUT_LINE_MM: Final = 0.1
# The largest sheet rendered, in pixels (50 MP: A4 at 600 dpi fits, 250 mm square at 600 dpi does not).
# The gateway checks custom sizes against the same documented limit before calling render.
MAX_SHEET_PIXELS: Final = 50_000_000


class SheetError(ValueError):
    """The sheet request or the photos given for it are invalid."""


class SheetTooLarge(SheetError):
    """The sheet would need more pixels than MAX_SHEET_PIXELS."""


@dataclass(frozen=True)
class SheetItem:
    """One photo size to place: finished size in mm and how many (or fill the rest)."""

    width_mm: float
    height_mm: float
    count: Count = FILL


@dataclass(frozen=True)
class Placement:
    """Where one photo lands, in sheet pixels; width/height are its footprint on the
    sheet, i.e. already swapped when ``rotated`` (turned 90° counter-clockwise)."""

    item: int
    x: int
    y: int
    width: int
    height: int
    rotated: bool


@dataclass(frozen=True)
class SheetLayout:
    paper_width_mm: float  # as laid out: swapped when ``landscape``
    paper_height_mm: float
    width_px: int
    height_px: int
    dpi: float
    landscape: bool  # True when the paper was turned relative to how it was given
    margin_px: int
    gap_px: int
    placements: tuple[Placement, ...]
    item_sizes_px: tuple[tuple[int, int], ...]  # upright (width, height) of each item
    requested: tuple[int | None, ...]  # None for FILL
    placed: tuple[int, ...]

    @property
    def total(self) -> int:
        return len(self.placements)

    @property
    def shortfall(self) -> tuple[int, ...]:
        """Photos requested but not placed, per item (0 for FILL items)."""
        return tuple(0 if req is None else max(0, req - got) for req, got in zip(self.requested, self.placed, strict=True))

    @property
    def complete(self) -> bool:
        """Every fixed count was placed in full."""
        return not any(self.shortfall)


def mm_to_px(mm: float, dpi: float) -> int:
    return round(mm * dpi / MM_PER_INCH)


@dataclass(frozen=True)
class _Band:
    item: int
    w: int
    h: int
    rotated: bool
    cols: int
    count: int

    @property
    def rows(self) -> int:
        return 0 if self.count == 0 else math.ceil(self.count / self.cols)


@dataclass(frozen=True)
class _Candidate:
    bands: tuple[_Band, ...]
    landscape: bool
    fixed_placed: int
    total: int
    rotated_photos: int

    def score(self) -> tuple[int, int, int, int]:
        # Honour the fixed counts first, then fit as many as possible, then avoid turning
        # photos (an upright photo is easier to check by eye), then keep the paper as given.
        return (self.fixed_placed, self.total, -self.rotated_photos, -int(self.landscape))


# Spacings (margin, gap) in mm tried after the preferred one, loosest first: each is kept
# only when it places more photos than every looser one. The last has photos touch each
# other and the paper's edge, with cut lines on their shared borders.
TIGHTER_SPACINGS: Final = ((2.0, 2.0), (2.0, 1.0), (1.0, 1.0), (0.0, 0.0))
# Photo-lab papers (up to 5x7 in / 2L) are printed edge to edge, so photos may touch the
# paper's edge. Larger sheets (A4, Letter) go through desktop printers that cannot print
# their last few mm: there the margin never shrinks below the preferred one.
BORDERLESS_MAX_MM: Final = 180.0


def plan_best_sheet(
    paper: Paper | tuple[float, float],
    items: Sequence[SheetItem],
    *,
    dpi: float = 300.0,
    margin_mm: float = 3.0,
    gap_mm: float = 2.0,
) -> SheetLayout:
    """``plan_sheet`` at the loosest spacing that places the most photos.

    ``margin_mm``/``gap_mm`` is the preferred spacing; the ``TIGHTER_SPACINGS`` (never looser
    than the preferred one) are tried in turn, and a tighter one wins only by placing more
    photos (fixed counts first, then the total). Margins shrink on photo-lab papers only
    (long side up to ``BORDERLESS_MAX_MM``).
    """
    paper_w_mm, paper_h_mm = (paper.width_mm, paper.height_mm) if isinstance(paper, Paper) else paper
    borderless = max(paper_w_mm, paper_h_mm) <= BORDERLESS_MAX_MM
    spacings = [(margin_mm, gap_mm)]
    for m, g in TIGHTER_SPACINGS:
        candidate = (min(m, margin_mm) if borderless else margin_mm, min(g, gap_mm))
        if candidate not in spacings:
            spacings.append(candidate)
    best: SheetLayout | None = None
    for m, g in spacings:
        layout = plan_sheet(paper, items, dpi=dpi, margin_mm=m, gap_mm=g)
        if best is None or _placed_score(layout) > _placed_score(best):
            best = layout
    assert best is not None
    return best


def _placed_score(layout: SheetLayout) -> tuple[int, int]:
    fixed = sum(min(req, got) for req, got in zip(layout.requested, layout.placed, strict=True) if req is not None)
    return (fixed, layout.total)


def plan_sheet(
    paper: Paper | tuple[float, float],
    items: Sequence[SheetItem],
    *,
    dpi: float = 300.0,
    margin_mm: float = 3.0,
    gap_mm: float = 2.0,
) -> SheetLayout:
    """Best packing of ``items`` on ``paper`` (a catalog ``Paper`` or (width, height) mm).

    Fixed counts are placed first (in the given order); FILL items then share the rest
    row by row in turn. A fixed count that cannot be placed in full is reported in
    ``SheetLayout.shortfall``, not raised: the caller decides whether a partial sheet is
    acceptable.
    """
    paper_w_mm, paper_h_mm = (paper.width_mm, paper.height_mm) if isinstance(paper, Paper) else paper
    _check_request(paper_w_mm, paper_h_mm, items, dpi, margin_mm, gap_mm)
    margin = mm_to_px(margin_mm, dpi)
    gap = mm_to_px(gap_mm, dpi)
    sizes = tuple((mm_to_px(it.width_mm, dpi), mm_to_px(it.height_mm, dpi)) for it in items)
    for i, (w, h) in enumerate(sizes):
        if w < 1 or h < 1:
            raise SheetError(f"item {i}: photo is smaller than one pixel at {dpi:g} dpi")

    best: _Candidate | None = None
    for landscape in (False, True):
        sheet_w = mm_to_px(paper_h_mm if landscape else paper_w_mm, dpi)
        sheet_h = mm_to_px(paper_w_mm if landscape else paper_h_mm, dpi)
        usable_w, usable_h = sheet_w - 2 * margin, sheet_h - 2 * margin
        orientation_choices = [((False,) if w == h else (False, True)) for w, h in sizes]
        for rotations in itertools.product(*orientation_choices):
            candidate = _pack(items, sizes, rotations, usable_w, usable_h, gap, landscape)
            if best is None or candidate.score() > best.score():
                best = candidate
    assert best is not None
    return _to_layout(best, paper_w_mm, paper_h_mm, dpi, margin, gap, items, sizes)


def _check_request(
    paper_w_mm: float,
    paper_h_mm: float,
    items: Sequence[SheetItem],
    dpi: float,
    margin_mm: float,
    gap_mm: float,
) -> None:
    if not items:
        raise SheetError("no photos to place")
    if len(items) > MAX_ITEMS:
        raise SheetError(f"at most {MAX_ITEMS} photo sizes per sheet, got {len(items)}")
    if not (paper_w_mm > 0 and paper_h_mm > 0):
        raise SheetError("paper width and height must be positive")
    if not dpi > 0:
        raise SheetError("dpi must be positive")
    if margin_mm < 0 or gap_mm < 0:
        raise SheetError("margins and gaps cannot be negative")
    pixels = mm_to_px(paper_w_mm, dpi) * mm_to_px(paper_h_mm, dpi)
    if pixels > MAX_SHEET_PIXELS:
        raise SheetTooLarge(
            f"a {paper_w_mm:g}x{paper_h_mm:g} mm sheet at {dpi:g} dpi would have {pixels} pixels; the limit is {MAX_SHEET_PIXELS}"
        )
    for i, it in enumerate(items):
        if not (it.width_mm > 0 and it.height_mm > 0):
            raise SheetError(f"item {i}: photo width and height must be positive")
        if it.count != FILL and (not isinstance(it.count, int) or it.count < 0):
            raise SheetError(f"item {i}: count must be a non-negative integer or {FILL!r}")


def _pack(
    items: Sequence[SheetItem],
    sizes: Sequence[tuple[int, int]],
    rotations: Sequence[bool],
    usable_w: int,
    usable_h: int,
    gap: int,
    landscape: bool,
) -> _Candidate:
    # A stack of rows of heights h_i separated by gaps is sum(h_i + gap) - gap tall, so
    # each row costs (h + gap) out of a budget of (usable height + gap).
    budget = usable_h + gap if usable_w > 0 and usable_h > 0 else 0
    footprints = [(h, w) if rot else (w, h) for (w, h), rot in zip(sizes, rotations, strict=True)]
    cols = [(usable_w + gap) // (w + gap) if 0 < w <= usable_w and h <= usable_h else 0 for w, h in footprints]
    counts = [0] * len(items)
    for i, it in enumerate(items):
        if it.count == FILL or cols[i] == 0 or it.count == 0:
            continue
        assert isinstance(it.count, int)
        row_cost = footprints[i][1] + gap
        rows = min(math.ceil(it.count / cols[i]), budget // row_cost)
        counts[i] = min(it.count, rows * cols[i])
        budget -= rows * row_cost
    fill_items = [i for i, it in enumerate(items) if it.count == FILL and cols[i] > 0]
    while True:
        added = False
        for i in fill_items:
            row_cost = footprints[i][1] + gap
            if row_cost <= budget:
                counts[i] += cols[i]
                budget -= row_cost
                added = True
        if not added:
            break
    bands = tuple(_Band(i, fw, fh, rotations[i], cols[i], counts[i]) for i, (fw, fh) in enumerate(footprints))
    fixed = sum(counts[i] for i, it in enumerate(items) if it.count != FILL)
    return _Candidate(
        bands=bands,
        landscape=landscape,
        fixed_placed=fixed,
        total=sum(counts),
        rotated_photos=sum(b.count for b in bands if b.rotated),
    )


def _to_layout(
    best: _Candidate,
    paper_w_mm: float,
    paper_h_mm: float,
    dpi: float,
    margin: int,
    gap: int,
    items: Sequence[SheetItem],
    sizes: tuple[tuple[int, int], ...],
) -> SheetLayout:
    sheet_w_mm, sheet_h_mm = (paper_h_mm, paper_w_mm) if best.landscape else (paper_w_mm, paper_h_mm)
    sheet_w, sheet_h = mm_to_px(sheet_w_mm, dpi), mm_to_px(sheet_h_mm, dpi)
    used = [b for b in best.bands if b.count > 0]
    block_h = sum(b.rows * (b.h + gap) for b in used) - gap if used else 0
    block_w = max((min(b.cols, b.count) * (b.w + gap) - gap for b in used), default=0)
    x0 = margin + (sheet_w - 2 * margin - block_w) // 2
    y = margin + (sheet_h - 2 * margin - block_h) // 2
    placements: list[Placement] = []
    for band in used:
        for k in range(band.count):
            row, col = divmod(k, band.cols)
            placements.append(
                Placement(
                    item=band.item,
                    x=x0 + col * (band.w + gap),
                    y=y + row * (band.h + gap),
                    width=band.w,
                    height=band.h,
                    rotated=band.rotated,
                )
            )
        y += band.rows * (band.h + gap)
    return SheetLayout(
        paper_width_mm=sheet_w_mm,
        paper_height_mm=sheet_h_mm,
        width_px=sheet_w,
        height_px=sheet_h,
        dpi=dpi,
        landscape=best.landscape,
        margin_px=margin,
        gap_px=gap,
        placements=tuple(placements),
        item_sizes_px=sizes,
        requested=tuple(None if it.count == FILL else int(it.count) for it in items),
        placed=tuple(b.count for b in best.bands),
    )


def render_sheet(
    layout: SheetLayout,
    photos: Sequence[RGBImage],
    *,
    cut_marks: bool = True,
    mark_length_mm: float = 2.0,
) -> RGBImage:
    """White RGB sheet with ``photos[i]`` (upright H×W×3 uint8) at every placement of
    item i, resized to the slot and turned when the placement is rotated.

    Cut marks are thin grey extensions of each photo's edges beyond its corners. They are
    drawn before the photos are pasted, so they can never cover a photo; marks of
    neighbouring photos may meet across a gap, which reads as one cut line. When photos
    touch (no gap to cut in), the cut lines are drawn on the borders themselves: each
    photo's outermost pixels along every edge that does not lie on the paper's edge, so a
    shared border carries one line centred on it.
    """
    if len(photos) != len(layout.item_sizes_px):
        raise SheetError(f"{len(layout.item_sizes_px)} photo sizes laid out but {len(photos)} photos given")
    sheet = np.full((layout.height_px, layout.width_px, 3), 255, dtype=np.uint8)
    slots = [_fit_photo(i, p, layout.item_sizes_px[i]) for i, p in enumerate(photos)]
    # About 0.1 mm: visible on a print, far thinner than the gap it sits in.
    thickness = max(1, mm_to_px(CUT_LINE_MM, layout.dpi))
    if cut_marks:
        length = max(1, mm_to_px(mark_length_mm, layout.dpi))
        for p in layout.placements:
            _draw_cut_marks(sheet, p, length, thickness)
    for p in layout.placements:
        photo = slots[p.item]
        if p.rotated:
            photo = np.rot90(photo, k=1)
        sheet[p.y : p.y + p.height, p.x : p.x + p.width] = photo
    if cut_marks and layout.gap_px < 2 * thickness:
        for p in layout.placements:
            _draw_border_lines(sheet, p, thickness)
    return sheet


def _draw_border_lines(sheet: RGBImage, p: Placement, thickness: int) -> None:
    h, w = sheet.shape[:2]
    grey = np.array(CUT_MARK_GREY, dtype=np.uint8)
    x0, y0, x1, y1 = p.x, p.y, p.x + p.width, p.y + p.height
    if y0 > 0:
        _paint(sheet, x0, y0, x1, y0 + thickness, grey)
    if y1 < h:
        _paint(sheet, x0, y1 - thickness, x1, y1, grey)
    if x0 > 0:
        _paint(sheet, x0, y0, x0 + thickness, y1, grey)
    if x1 < w:
        _paint(sheet, x1 - thickness, y0, x1, y1, grey)


def _fit_photo(index: int, photo: RGBImage, size: tuple[int, int]) -> RGBImage:
    if photo.ndim != 3 or photo.shape[2] != 3 or photo.dtype != np.uint8:
        raise SheetError(f"photo {index}: expected an H×W×3 uint8 RGB image")
    w, h = size
    ph, pw = photo.shape[:2]
    if abs((pw / ph) / (w / h) - 1.0) > ASPECT_TOLERANCE:
        raise SheetError(f"photo {index}: {pw}x{ph} px does not have the shape of its {w}x{h} px slot")
    if (pw, ph) == (w, h):
        return photo
    shrinking = pw > w or ph > h
    resized = cv2.resize(photo, (w, h), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)
    return np.asarray(resized, dtype=np.uint8)


def _draw_cut_marks(sheet: RGBImage, p: Placement, length: int, thickness: int) -> None:
    x0, y0, x1, y1 = p.x, p.y, p.x + p.width, p.y + p.height
    grey = np.array(CUT_MARK_GREY, dtype=np.uint8)
    # Each corner: a horizontal stub continuing the top/bottom edge outwards and a vertical
    # stub continuing the left/right edge outwards, both on the photo's outermost pixels.
    for cx, cy, dx, dy in ((x0, y0, -1, -1), (x1 - 1, y0, 1, -1), (x0, y1 - 1, -1, 1), (x1 - 1, y1 - 1, 1, 1)):
        hx0, hx1 = (cx - length, cx) if dx < 0 else (cx + 1, cx + 1 + length)
        hy0, hy1 = (cy, cy + thickness) if dy < 0 else (cy - thickness + 1, cy + 1)
        _paint(sheet, hx0, hy0, hx1, hy1, grey)
        vy0, vy1 = (cy - length, cy) if dy < 0 else (cy + 1, cy + 1 + length)
        vx0, vx1 = (cx, cx + thickness) if dx < 0 else (cx - thickness + 1, cx + 1)
        _paint(sheet, vx0, vy0, vx1, vy1, grey)


def _paint(sheet: RGBImage, x0: int, y0: int, x1: int, y1: int, colour: npt.NDArray[np.uint8]) -> None:
    h, w = sheet.shape[:2]
    x0, x1 = max(0, x0), min(w, x1)
    y0, y1 = max(0, y0), min(h, y1)
    if x0 < x1 and y0 < y1:
        sheet[y0:y1, x0:x1] = colour
