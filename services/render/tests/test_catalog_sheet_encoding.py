"""Spec catalog, print-sheet packing, output encoding and compliance rules (pure domain)."""

from __future__ import annotations

import csv
import io
from importlib import resources

import numpy as np
import pytest
from PIL import Image
from skimage import data

from likeness_render.domain import compliance, encoding, sheet
from likeness_render.domain.spec_loading import CatalogError, load_catalog, parse_specs

SPECS_TEXT = resources.files("likeness_render.data").joinpath("id_photo_specs.csv").read_text(encoding="utf-8")
HEADER = SPECS_TEXT.splitlines()[0]


def test_every_row_of_the_reference_catalog_loads_with_its_sources() -> None:
    catalog = load_catalog()
    rows = len(list(csv.DictReader(io.StringIO(SPECS_TEXT))))
    papers = len(
        list(csv.DictReader(io.StringIO(resources.files("likeness_render.data").joinpath("print_media.csv").read_text(encoding="utf-8"))))
    )
    assert rows > 0 and papers > 0
    assert len(catalog) == rows and len(catalog.papers()) == papers
    us = catalog.get("us-passport")
    assert us.size_px() == (600, 600) and us.source[0].startswith("http")
    assert {s.id for s in catalog.search(country="JP")} >= {"jp-passport"}
    assert "schengen-visa" in {s.id for s in catalog.search(text="schengen")}


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"width_mm": "900"}, "width"),
        ({"head_max_mm": "80"}, "head"),
        ({"background": "#12345"}, "background"),
        ({"file_min_kb": "30", "file_max_kb": "20"}, "file"),
    ],
)
def test_implausible_rows_are_rejected_naming_the_row(changes: dict[str, str], expected: str) -> None:
    columns = HEADER.split(",")
    row = next(line for line in SPECS_TEXT.splitlines()[1:] if line.startswith("us-passport,"))
    import csv

    cells = next(csv.reader([row]))
    for column, value in changes.items():
        cells[columns.index(column)] = value
    out = io.StringIO()
    csv.writer(out).writerow(cells)
    with pytest.raises(CatalogError) as info:
        parse_specs(HEADER + "\n" + out.getvalue())
    text = str(info.value)
    assert "us-passport" in text and "line 2" in text and expected in text.lower()


def test_4x6_sheet_holds_eight_35x45_photos_in_pixels() -> None:
    layout = sheet.plan_sheet((101.6, 152.4), [sheet.SheetItem(35, 45)], dpi=300, margin_mm=3, gap_mm=2)
    assert layout.total == 8
    margin, gap = sheet.mm_to_px(3, 300), sheet.mm_to_px(2, 300)
    for p in layout.placements:
        assert p.x >= margin and p.y >= margin
        assert p.x + p.width <= layout.width_px - margin and p.y + p.height <= layout.height_px - margin
    boxes = [(p.x, p.y, p.x + p.width, p.y + p.height) for p in layout.placements]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            separated = a[2] + gap <= b[0] or b[2] + gap <= a[0] or a[3] + gap <= b[1] or b[3] + gap <= a[1]
            assert separated, (a, b)
    image = sheet.render_sheet(layout, [np.zeros((531, 413, 3), np.uint8)], cut_marks=True)
    assert image.shape[:2] == (layout.height_px, layout.width_px)
    assert (image == 0).all(axis=2).sum() == 8 * 413 * 531  # eight black photos, nothing else black


def test_mixed_specs_share_a_sheet_and_orientation_is_chosen() -> None:
    layout = sheet.plan_sheet((210, 297), [sheet.SheetItem(35, 45, 4), sheet.SheetItem(51, 51, 2)], dpi=300, margin_mm=5, gap_mm=2)
    assert layout.placed == (4, 2) and layout.complete
    # Asking for more than fits is reported, not raised: the caller decides.
    crowded = sheet.plan_sheet((101.6, 152.4), [sheet.SheetItem(35, 45, 4), sheet.SheetItem(51, 51, 2)], dpi=300, margin_mm=3, gap_mm=2)
    assert not crowded.complete and sum(crowded.shortfall) > 0


def test_encoding_writes_dpi_and_meets_bands_honestly() -> None:
    photo = np.asarray(Image.fromarray(data.astronaut()).resize((358, 441)))
    jpeg = encoding.encode_image(photo, output_format="JPEG", dpi=350, min_kb=14, max_kb=20)
    assert 14 * 1024 <= len(jpeg.data) <= 20 * 1024 and jpeg.band_problem is None
    assert Image.open(io.BytesIO(jpeg.data)).info["dpi"] == pytest.approx((350, 350), abs=0.5)
    png = encoding.encode_image(photo, output_format="PNG", dpi=300)
    assert Image.open(io.BytesIO(png.data)).info["dpi"] == pytest.approx((300, 300), abs=0.5)
    flat = np.full((441, 358, 3), 240, np.uint8)
    honest = encoding.encode_image(flat, output_format="JPEG", dpi=300, min_kb=40, max_kb=60)
    assert honest.band_problem and len(honest.data) < 40 * 1024  # reported, never padded


def _measurements(**face: float) -> compliance.PhotoMeasurements:
    defaults = dict(
        yaw_deg=0.0,
        pitch_deg=0.0,
        roll_deg=0.0,
        left_eye_openness=1.0,
        right_eye_openness=1.0,
        mouth_openness=0.0,
        sharpness=0.9,
        exposure=0.5,
        shadow_clipped_fraction=0.0,
        highlight_clipped_fraction=0.0,
        lighting_ratio=1.0,
        head_height_mm=34.0,
        eye_line_from_bottom_mm=27.0,
    )
    defaults.update(face)
    return compliance.PhotoMeasurements(
        1, 413, 531, compliance.FaceMeasurements(**defaults), background_std=1.0, file_size_kb=100.0, source_px_per_mm=20.0
    )


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"roll_deg": 15.0}, "HEAD_TILTED"),
        ({"yaw_deg": 25.0}, "HEAD_TURNED"),
        ({"pitch_deg": -20.0}, "HEAD_PITCHED"),
        ({"left_eye_openness": 0.1}, "EYES_CLOSED"),
        ({"mouth_openness": 0.8}, "MOUTH_OPEN"),
        ({"sharpness": 0.2}, "BLURRY"),
        ({"exposure": 0.08}, "UNDEREXPOSED"),
        ({"exposure": 0.94}, "OVEREXPOSED"),
        ({"lighting_ratio": 2.5}, "UNEVEN_LIGHTING"),
        ({"head_height_mm": 40.0}, "HEAD_HEIGHT_OUT_OF_RANGE"),
    ],
)
def test_each_rule_fires_with_measured_and_allowed(change: dict, code: str) -> None:
    spec = load_catalog().get("schengen-visa")
    assert compliance.check_compliance(_measurements(), spec).passed
    report = compliance.check_compliance(_measurements(**change), spec)
    issue = next(i for i in report.issues if i.code == code)
    assert not report.passed and issue.measured is not None and (issue.allowed_min is not None or issue.allowed_max is not None)


def test_photo_level_rules() -> None:
    spec = load_catalog().get("cn-resident-id")
    bad = compliance.PhotoMeasurements(2, 100, 120, None, background_std=30.0, file_size_kb=50.0)
    codes = {i.code for i in compliance.check_compliance(bad, spec).issues}
    assert {"MULTIPLE_FACES", "LOW_RESOLUTION", "BACKGROUND_NOT_UNIFORM", "FILE_SIZE_OUT_OF_RANGE"} <= codes
    none = compliance.PhotoMeasurements(0, 358, 441, None)
    assert "NO_FACE" in {i.code for i in compliance.check_compliance(none, spec).issues}
