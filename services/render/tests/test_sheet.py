from __future__ import annotations

import itertools

import numpy as np
import pytest

from likeness_render.domain.sheet import (
    CUT_MARK_GREY,
    FILL,
    Placement,
    SheetError,
    SheetItem,
    SheetLayout,
    SheetTooLarge,
    mm_to_px,
    plan_best_sheet,
    plan_sheet,
    render_sheet,
)
from likeness_render.domain.spec_loading import load_catalog

FOUR_R = (101.6, 152.4)


def _assert_valid_layout(layout: SheetLayout) -> None:
    """Every photo inside the margins, and any two photos at least one gap apart."""
    m = layout.margin_px
    for p in layout.placements:
        assert p.x >= m and p.y >= m, p
        assert p.x + p.width <= layout.width_px - m, p
        assert p.y + p.height <= layout.height_px - m, p
        w, h = layout.item_sizes_px[p.item]
        assert (p.width, p.height) == ((h, w) if p.rotated else (w, h))
    for a, b in itertools.combinations(layout.placements, 2):
        apart_x = a.x + a.width + layout.gap_px <= b.x or b.x + b.width + layout.gap_px <= a.x
        apart_y = a.y + a.height + layout.gap_px <= b.y or b.y + b.height + layout.gap_px <= a.y
        assert apart_x or apart_y, (a, b)


def test_4r_sheet_holds_eight_35x45_photos_at_300_dpi() -> None:
    layout = plan_sheet(load_catalog().paper("4r"), [SheetItem(35, 45, FILL)], dpi=300, margin_mm=3, gap_mm=2)
    assert layout.total == 8 and layout.placed == (8,)
    assert {(layout.width_px, layout.height_px)} <= {(1200, 1800), (1800, 1200)}
    assert layout.item_sizes_px == ((413, 531),)
    assert (layout.margin_px, layout.gap_px) == (35, 24)
    # Upright photos on the turned sheet beat turned photos on the upright sheet (same count).
    assert layout.landscape and not any(p.rotated for p in layout.placements)
    assert sorted({p.x for p in layout.placements}) == [38, 475, 912, 1349]
    assert sorted({p.y for p in layout.placements}) == [57, 612]
    _assert_valid_layout(layout)


def test_wider_gaps_cost_photos() -> None:
    layout = plan_sheet(FOUR_R, [SheetItem(35, 45)], dpi=300, margin_mm=3, gap_mm=3)
    assert layout.total == 6
    _assert_valid_layout(layout)


def test_photo_rotation_is_used_when_only_it_fits() -> None:
    # 30x60 mm photos on a 70x35 mm strip: they fit only lying down (or with the strip
    # stood up, which is the same thing); either way both orientations must be tried.
    layout = plan_sheet((70, 35), [SheetItem(30, 60)], dpi=300, margin_mm=1, gap_mm=2)
    assert layout.total == 1
    _assert_valid_layout(layout)


def test_fixed_counts_come_first_and_fill_takes_the_rest() -> None:
    layout = plan_sheet(FOUR_R, [SheetItem(35, 45, 4), SheetItem(25, 35, FILL)], dpi=300)
    assert layout.placed[0] == 4 and layout.placed[1] >= 6
    assert layout.complete and layout.shortfall == (0, 0)
    assert {p.item for p in layout.placements} == {0, 1}
    _assert_valid_layout(layout)


def test_mixed_sheet_is_the_best_over_all_orientations() -> None:
    items = [SheetItem(35, 45, 4), SheetItem(25, 35, FILL)]
    best = plan_sheet(FOUR_R, items, dpi=300)
    # 4 turned 35x45 + 6 upright 25x35; the answer must not depend on which way round
    # the paper is given.
    turned = plan_sheet((FOUR_R[1], FOUR_R[0]), items, dpi=300)
    assert best.total == turned.total == 10


def test_several_fill_items_share_the_sheet() -> None:
    layout = plan_sheet(FOUR_R, [SheetItem(35, 45), SheetItem(25, 35)], dpi=300)
    assert layout.placed[0] > 0 and layout.placed[1] > 0
    _assert_valid_layout(layout)


def test_shortfall_is_reported_not_raised() -> None:
    layout = plan_sheet(FOUR_R, [SheetItem(35, 45, 20)], dpi=300)
    assert layout.placed == (8,) and layout.shortfall == (12,) and not layout.complete


def test_photo_larger_than_the_paper_places_nothing() -> None:
    layout = plan_sheet(FOUR_R, [SheetItem(120, 160, 1)], dpi=300)
    assert layout.total == 0 and layout.shortfall == (1,)


def test_dpi_scales_the_layout() -> None:
    layout = plan_sheet(FOUR_R, [SheetItem(35, 45)], dpi=600, margin_mm=3, gap_mm=2)
    assert layout.item_sizes_px == ((mm_to_px(35, 600), mm_to_px(45, 600)),)
    assert layout.total == 8
    _assert_valid_layout(layout)


@pytest.mark.parametrize(
    ("items", "kwargs"),
    [
        ([], {}),
        ([SheetItem(0, 45)], {}),
        ([SheetItem(35, 45, -1)], {}),
        ([SheetItem(35, 45)], {"margin_mm": -1}),
        ([SheetItem(35, 45)], {"dpi": 0}),
        ([SheetItem(35, 45)] * 9, {}),
    ],
)
def test_invalid_requests_raise(items: list[SheetItem], kwargs: dict[str, float]) -> None:
    with pytest.raises(SheetError):
        plan_sheet(FOUR_R, items, **kwargs)


# -------------------------------------------------------------------------- rendering


def _photo(colour: tuple[int, int, int], w: int = 413, h: int = 531) -> np.ndarray:
    return np.full((h, w, 3), colour, dtype=np.uint8)


def test_render_pastes_each_photo_on_white_paper_with_cut_marks() -> None:
    layout = plan_sheet(FOUR_R, [SheetItem(35, 45, 4), SheetItem(25, 35, FILL)], dpi=300)
    colours = [(200, 30, 30), (30, 30, 200)]
    # Photos arrive at another resolution than the sheet: they are resized to their slot.
    photos = [_photo(colours[0], 826, 1062), _photo(colours[1], 295, 413)]
    sheet = render_sheet(layout, photos)
    assert sheet.shape == (layout.height_px, layout.width_px, 3) and sheet.dtype == np.uint8
    assert (sheet[:5, :5] == 255).all()  # the paper is white
    grey = np.array(CUT_MARK_GREY, dtype=np.uint8)
    for p in layout.placements:
        region = sheet[p.y : p.y + p.height, p.x : p.x + p.width]
        assert (region == colours[p.item]).all(), "a mark or a neighbour covered a photo"
        # Stubs continue the top edge left of the top-left corner and the left edge above it.
        assert (sheet[p.y, p.x - 1] == grey).all()
        assert (sheet[p.y - 1, p.x] == grey).all()
        # ... and the bottom edge right of the bottom-right corner.
        assert (sheet[p.y + p.height - 1, p.x + p.width] == grey).all()
    # Marks stop at their length: 2 mm (24 px) left of the block's leftmost photo is paper.
    left = min(layout.placements, key=lambda p: p.x)
    assert (sheet[left.y, left.x - mm_to_px(2.0, 300) - 1] == 255).all()


def test_render_without_cut_marks_leaves_the_gaps_white() -> None:
    layout = plan_sheet(FOUR_R, [SheetItem(35, 45)], dpi=300)
    sheet = render_sheet(layout, [_photo((10, 120, 10))], cut_marks=False)
    covered = np.zeros(sheet.shape[:2], dtype=bool)
    for p in layout.placements:
        covered[p.y : p.y + p.height, p.x : p.x + p.width] = True
    assert (sheet[~covered] == 255).all()


def test_rotated_placement_turns_the_photo_counter_clockwise() -> None:
    layout = SheetLayout(
        paper_width_mm=60, paper_height_mm=40, width_px=60, height_px=40, dpi=25.4,
        landscape=False, margin_px=5, gap_px=2,
        placements=(Placement(item=0, x=10, y=10, width=30, height=20, rotated=True),),
        item_sizes_px=((20, 30),), requested=(1,), placed=(1,),
    )  # fmt: skip
    photo = np.zeros((30, 20, 3), dtype=np.uint8)
    photo[:15] = (255, 0, 0)  # top half red
    photo[15:] = (0, 0, 255)  # bottom half blue
    sheet = render_sheet(layout, [photo], cut_marks=False)
    placed = sheet[10:30, 10:40]
    # Turned counter-clockwise, the photo's top lies on the left.
    assert (placed[:, :15] == (255, 0, 0)).all()
    assert (placed[:, 15:] == (0, 0, 255)).all()


def test_render_rejects_photos_of_the_wrong_shape_or_number() -> None:
    layout = plan_sheet(FOUR_R, [SheetItem(35, 45)], dpi=300)
    with pytest.raises(SheetError, match="shape of its"):
        render_sheet(layout, [_photo((0, 0, 0), 600, 600)])
    with pytest.raises(SheetError, match="photos given"):
        render_sheet(layout, [_photo((0, 0, 0)), _photo((0, 0, 0))])


def test_oversize_sheet_is_refused_before_any_buffer_is_made() -> None:
    # 250 mm square at 600 dpi is 5906² px (34.9 MP: allowed); at 1200 dpi it is 139 MP: refused.
    plan_sheet((250, 250), [SheetItem(35, 45, 1)], dpi=600)
    with pytest.raises(SheetTooLarge, match="limit is 50000000"):
        plan_sheet((250, 250), [SheetItem(35, 45, 1)], dpi=1200)
    with pytest.raises(SheetTooLarge):
        plan_sheet((1000, 1000), [SheetItem(35, 45, 1)], dpi=1200)


# -------------------------------------------------------------------------- the usual 6-up


def test_2x2_in_on_4x6_in_is_the_usual_6_up_touching_with_cut_lines_on_the_borders() -> None:
    layout = plan_best_sheet(load_catalog().paper("4r"), [SheetItem(50.8, 50.8)], dpi=300)
    assert layout.total == 6 and (layout.width_px, layout.height_px) == (1200, 1800)
    assert (layout.margin_px, layout.gap_px) == (0, 0) and not layout.landscape
    assert sorted((p.x, p.y) for p in layout.placements) == [(x, y) for x in (0, 600) for y in (0, 600, 1200)]
    assert all((p.width, p.height) == (600, 600) for p in layout.placements)
    _assert_valid_layout(layout)

    colour = (40, 160, 90)
    sheet = render_sheet(layout, [_photo(colour, 600, 600)])
    grey = np.array(CUT_MARK_GREY, dtype=np.uint8)
    is_grey = (sheet == grey).all(axis=-1)
    # One line on each shared border: the last pixel of one photo and the first of the next,
    # over the whole length of the border, and nowhere else.
    assert is_grey[:, 599].all() and is_grey[:, 600].all()
    assert is_grey[599, :].all() and is_grey[600, :].all() and is_grey[1199, :].all() and is_grey[1200, :].all()
    lines = np.zeros_like(is_grey)
    lines[:, 599:601] = True
    lines[[599, 600, 1199, 1200], :] = True
    assert (is_grey == lines).all()
    # The paper's edges are cut by the lab, not drawn; every other pixel is the photo.
    assert (sheet[~lines] == colour).all()
    # 600 dpi: the line is 0.1 mm thick on each side (2 px), still centred on the border.
    fine = plan_best_sheet(FOUR_R, [SheetItem(50.8, 50.8)], dpi=600)
    fine_sheet = render_sheet(fine, [_photo(colour, 1200, 1200)])
    column = (fine_sheet[:, 1196:1204] == grey).all(axis=-1).all(axis=0)
    assert column.tolist() == [False, False, True, True, True, True, False, False]


def test_spacing_tightens_only_when_it_places_more_photos() -> None:
    # 35x45 mm: 8 fit with the preferred 3 mm margin and 2 mm gap, so those are kept.
    loose = plan_best_sheet(FOUR_R, [SheetItem(35, 45)], dpi=300)
    assert loose.total == 8 and (loose.margin_px, loose.gap_px) == (mm_to_px(3, 300), mm_to_px(2, 300))
    # 33x48 mm (China): 4 with the preferred spacing, more with a tighter one.
    assert plan_sheet(FOUR_R, [SheetItem(33, 48)], dpi=300).total == 4
    assert plan_best_sheet(FOUR_R, [SheetItem(33, 48)], dpi=300).total > 4
    # A fixed count that fits loosely keeps the loose spacing.
    two = plan_best_sheet(FOUR_R, [SheetItem(50.8, 50.8, 2)], dpi=300)
    assert two.placed == (2,) and two.margin_px == mm_to_px(3, 300)
    # A4 goes through desktop printers: the margin never shrinks there, only the gap.
    a4 = plan_best_sheet(load_catalog().paper("a4"), [SheetItem(35, 45)], dpi=300)
    assert a4.margin_px == mm_to_px(3, 300) and a4.total >= 30
    _assert_valid_layout(a4)


def test_cut_lines_on_borders_need_cut_marks() -> None:
    layout = plan_best_sheet(FOUR_R, [SheetItem(50.8, 50.8)], dpi=300)
    sheet = render_sheet(layout, [_photo((1, 2, 3), 600, 600)], cut_marks=False)
    assert (sheet == (1, 2, 3)).all()
