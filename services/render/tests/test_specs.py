from __future__ import annotations

import csv
import io
from collections import Counter
from importlib import resources

import pytest

from likeness_render.domain.spec_catalog import Catalog
from likeness_render.domain.spec_loading import SPEC_COLUMNS, CatalogError, load_catalog, parse_papers, parse_specs
from likeness_render.domain.specs import (
    DEFAULT_EYE_FRACTION,
    DEFAULT_HEAD_FRACTION,
    BandOrigin,
    Medium,
    PaperNotFoundError,
    SpecNotFoundError,
)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def _csv_rows(name: str) -> list[dict[str, str]]:
    """The packaged data file's rows, read independently of the catalog loader."""
    return list(csv.DictReader(io.StringIO(resources.files("likeness_render.data").joinpath(name).read_text(encoding="utf-8"))))


SPEC_ROWS = _csv_rows("id_photo_specs.csv")
PAPER_ROWS = _csv_rows("print_media.csv")


# ----------------------------------------------------------------------------- loading


def test_every_row_of_the_packaged_catalog_loads(catalog: Catalog) -> None:
    assert len(catalog) == len(SPEC_ROWS)
    assert len({s.id for s in catalog}) == len({r["id"] for r in SPEC_ROWS}) == len(SPEC_ROWS)
    media = Counter(s.print_or_digital for s in catalog)
    assert media == Counter(Medium(r["print_or_digital"]) for r in SPEC_ROWS)
    assert set(media) == set(Medium)
    assert len(catalog.countries()) == len({r["country_code"] for r in SPEC_ROWS})
    assert len(catalog.papers()) == len(PAPER_ROWS)


def test_columns_are_typed(catalog: Catalog) -> None:
    s = catalog.get("cn-resident-id")
    assert (s.width_mm, s.height_mm, s.dpi) == (26.0, 32.0, 350.0)
    assert (s.width_px, s.height_px) == (358, 441)
    assert s.head_min_mm is None and s.head_max_mm is None
    assert (s.top_margin_min_mm, s.top_margin_max_mm) == (0.5, 1.5)
    assert (s.file_min_kb, s.file_max_kb) == (14.0, 20.0)
    assert s.format == "JPEG"
    assert s.print_or_digital is Medium.DIGITAL
    assert s.background == ("#ffffff",)
    assert s.notes is not None and "GA 461-2004" in s.notes

    gb = catalog.get("gb-passport-digital")
    assert gb.background == ("#d3d3d3", "#fffdd0", "#ffffff")
    assert gb.width_mm is None and gb.is_pixel_defined

    au = catalog.get("au-passport")
    assert au.source[0] == "abox" and au.source[-1] == "idify" and len(au.source) == 3
    assert catalog.get("ae-id-card").notes is None


# ------------------------------------------------------------------------ pixel size


def test_pixel_size_from_mm_uses_the_default_dpi_only_when_none_is_stated(
    catalog: Catalog,
) -> None:
    us = catalog.get("us-passport")  # 2x2 in, no dpi stated
    assert us.size_px() == (600, 600)
    assert us.size_px(default_dpi=600) == (1200, 1200)
    de = catalog.get("de-passport")  # 35x45 mm at a stated 600 dpi
    assert de.size_px() == de.size_px(default_dpi=150) == (827, 1063)
    assert de.effective_dpi(default_dpi=150) == 600


def test_stated_pixel_size_wins_and_sets_the_scale(catalog: Catalog) -> None:
    cn = catalog.get("cn-resident-id")
    assert cn.size_px(default_dpi=72) == (358, 441)
    assert cn.effective_dpi() == 350
    assert cn.px_per_mm() == pytest.approx((358 / 26 + 441 / 32) / 2)
    dv = catalog.get("us-diversity-visa-digital")  # 600 px over 50.8 mm, no dpi stated
    assert dv.effective_dpi(default_dpi=72) == pytest.approx(300)


def test_pixel_defined_spec_has_a_nominal_mm_frame(catalog: Catalog) -> None:
    s = catalog.get("am-evisa-photo")  # 600x600 px
    assert s.size_px(default_dpi=72) == (600, 600)
    assert s.size_mm() == pytest.approx((50.8, 50.8))
    assert s.size_mm(default_dpi=600) == pytest.approx((25.4, 25.4))


def test_file_band_in_bytes_uses_1024(catalog: Catalog) -> None:
    assert catalog.get("cn-resident-id").file_band_bytes() == (14 * 1024, 20 * 1024)
    assert catalog.get("us-passport").file_band_bytes() == (None, None)


# ------------------------------------------------------------------------------ bands


def test_stated_head_and_eye_bands(catalog: Catalog) -> None:
    us = catalog.get("us-passport")
    head, eye = us.head_band_mm(), us.eye_band_mm()
    assert (head.min, head.max) == (25.0, 35.0)
    assert (eye.min, eye.max) == (28.0, 35.0)
    assert head.min_stated and head.max_stated
    assert head.min_origin is BandOrigin.STATED
    assert us.head_band_px().min == pytest.approx(25.0 * 600 / 50.8)


def test_missing_head_max_is_derived_with_icao_relative_width(catalog: Catalog) -> None:
    ae = catalog.get("ae-id-card")  # 40x60 mm, head >= 38, top margin >= 6
    band = ae.head_band_mm()
    assert band.min == 38.0 and band.min_origin is BandOrigin.STATED
    assert band.max == pytest.approx(38.0 * 80 / 70)
    assert band.max_origin is BandOrigin.DERIVED and not band.max_stated


def test_derived_head_max_never_leaves_room_below_the_top_margin() -> None:
    text = _csv(_row(height_mm="50", head_min_mm="40", head_max_mm="", top_margin_min_mm="6"))
    (spec,) = parse_specs(text)
    # 40 * 8/7 = 45.7 mm would push the crown into the stated 6 mm top margin.
    assert spec.head_band_mm().max == pytest.approx(44.0)


def test_pixel_bands_in_notes_are_used_for_pixel_defined_uploads(catalog: Catalog) -> None:
    cn = catalog.get("cn-passport-online")  # head 301-354 px, eye line 256-400 px
    head, eye = cn.head_band_px(), cn.eye_band_px()
    assert (head.min, head.max) == pytest.approx((301, 354))
    assert (eye.min, eye.max) == pytest.approx((256, 400))
    assert head.min_origin is BandOrigin.NOTES and head.max_stated
    # The pixel band converted to mm at the default 300 dpi.
    assert cn.head_band_mm().min == pytest.approx(301 * 25.4 / 300)
    assert cn.head_band_mm(default_dpi=600).min == pytest.approx(301 * 25.4 / 600)
    assert cn.top_margin_band_mm()[0] == pytest.approx(29 * 25.4 / 300)


def test_at_least_pixel_band_gets_a_derived_max(catalog: Catalog) -> None:
    am = catalog.get("am-evisa-photo")  # head >= 450 px, crown >= 60 px below top, 600 px
    band = am.head_band_px()
    assert band.min == pytest.approx(450) and band.min_origin is BandOrigin.NOTES
    assert band.max == pytest.approx(min(450 * 8 / 7, 600 - 60))
    assert band.max_origin is BandOrigin.DERIVED


def test_percentage_bands_in_notes(catalog: Catalog) -> None:
    us = catalog.get("us-visa-digital")  # head 50-69 %, eye line 56-69 % of height
    assert (us.head_band_px().min, us.head_band_px().max) == pytest.approx((300, 414))
    assert (us.eye_band_px().min, us.eye_band_px().max) == pytest.approx((336, 414))


def test_bands_of_another_pixel_frame_in_notes_are_ignored(catalog: Catalog) -> None:
    gb = catalog.get("gb-passport-digital")  # notes quote a 900x1200 px preset's head band
    assert gb.notes_geometry.head_px == (None, None)
    band = gb.head_band_px()
    assert band.min_origin is BandOrigin.DEFAULT
    assert band.min == pytest.approx(0.70 * 750)


def test_default_bands_when_nothing_is_stated(catalog: Catalog) -> None:
    s = catalog.get("cn-1-inch")  # 25x35 mm conventional size, no geometry
    head, eye = s.head_band_mm(), s.eye_band_mm()
    assert (head.min, head.max) == pytest.approx((24.5, 28.0))
    assert (eye.min, eye.max) == pytest.approx((17.5, 24.5))
    assert head.min_origin is head.max_origin is BandOrigin.DEFAULT


def test_eye_band_with_only_a_minimum(catalog: Catalog) -> None:
    cn = catalog.get("cn-resident-id")  # eye line >= 15 mm on a 32 mm frame
    eye = cn.eye_band_mm()
    assert eye.min == 15.0 and eye.min_stated
    assert eye.max == pytest.approx(15.0 * 70 / 50) and not eye.max_stated


def test_default_head_fraction_matches_the_icao_row(catalog: Catalog) -> None:
    icao = catalog.get("intl-icao")
    band = icao.head_band_mm()
    assert (band.min, band.max) == pytest.approx((DEFAULT_HEAD_FRACTION[0] * 45, DEFAULT_HEAD_FRACTION[1] * 45))
    # The ICAO row's eye band (A-Box: 50-60 %) lies inside the wider ISO default.
    eye = icao.eye_band_mm()
    assert DEFAULT_EYE_FRACTION[0] * 45 <= eye.min and eye.max <= DEFAULT_EYE_FRACTION[1] * 45


def test_every_spec_yields_ordered_bands_inside_its_frame(catalog: Catalog) -> None:
    for s in catalog:
        height = s.size_mm()[1]
        for band in (s.head_band_mm(), s.eye_band_mm()):
            assert 0 < band.min <= band.max <= height + 1e-9, s.id


# ------------------------------------------------------------------------- validation

BASE_ROW = {
    "id": "xx-passport",
    "country_code": "XX",
    "country": "Testland",
    "document": "Passport",
    "width_mm": "35",
    "height_mm": "45",
    "dpi": "",
    "width_px": "",
    "height_px": "",
    "head_min_mm": "32",
    "head_max_mm": "36",
    "eye_from_bottom_min_mm": "",
    "eye_from_bottom_max_mm": "",
    "top_margin_min_mm": "3",
    "top_margin_max_mm": "",
    "background": "#ffffff",
    "file_min_kb": "",
    "file_max_kb": "",
    "format": "",
    "print_or_digital": "print",
    "source": "idify",
    "notes": "",
}


def _row(**changes: str) -> dict[str, str]:
    return {**BASE_ROW, **changes}


def _csv(*rows: dict[str, str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=SPEC_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def test_a_valid_row_parses() -> None:
    (spec,) = parse_specs(_csv(_row()))
    assert spec.id == "xx-passport" and spec.head_max_mm == 36.0


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"width_mm": "120", "height_mm": "150", "head_min_mm": "", "head_max_mm": ""},
         "width_mm 120 outside 10-100 mm"),
        ({"height_mm": "8"}, "height_mm 8 outside"),
        ({"head_min_mm": "37"}, "head_mm min 37 > max 36"),
        ({"head_min_mm": "", "head_max_mm": "46"}, "head_max_mm 46 outside the 45 mm frame"),
        ({"eye_from_bottom_min_mm": "20", "eye_from_bottom_max_mm": "47"},
         "eye_from_bottom_max_mm 47 outside"),
        ({"eye_from_bottom_min_mm": "30", "eye_from_bottom_max_mm": "25"},
         "eye_from_bottom_mm min 30 > max 25"),
        ({"file_min_kb": "50", "file_max_kb": "20"}, "file_kb min 50 > max 20"),
        ({"background": "#fffff"}, "background colour '#fffff'"),
        ({"background": "white"}, "background colour 'white'"),
        ({"country_code": "USA"}, "country_code 'USA'"),
        ({"country_code": "us"}, "country_code 'us'"),
        ({"width_mm": "abc"}, "width_mm 'abc' is not a number"),
        ({"width_mm": ""}, "width_mm and height_mm must be given together"),
        ({"width_mm": "", "height_mm": "", "width_px": "600", "height_px": "600"},
         "needs its frame in mm"),
        ({"width_px": "600", "height_px": "600"}, "have different shapes"),
        ({"print_or_digital": "paper"}, "print_or_digital 'paper'"),
        ({"source": "wikipedia"}, "source 'wikipedia'"),
        ({"format": "GIF"}, "format 'GIF'"),
        ({"head_min_mm": "40", "head_max_mm": "", "top_margin_min_mm": "6"},
         "exceed the 45 mm frame"),
        ({"id": "XX Passport"}, "not a lowercase slug"),
        ({"dpi": "5000"}, "dpi 5000 outside"),
        ({"dpi": "300", "width_px": "300", "height_px": "386"}, "does not match 35 mm at 300"),
        ({"width_mm": "", "height_mm": "", "head_min_mm": "", "head_max_mm": "",
          "top_margin_min_mm": "", "width_px": "400", "height_px": "500",
          "print_or_digital": "digital", "notes": "pixel-defined upload; idify: head >= 600 px"},
         "notes head px 600 outside the 500 px frame"),
    ],
)  # fmt: skip
def test_implausible_rows_are_rejected_naming_id_and_line(changes: dict[str, str], fragment: str) -> None:
    bad = _row(**{"id": "xx-bad", **changes})
    text = _csv(_row(id="xx-good"), bad)
    with pytest.raises(CatalogError) as err:
        parse_specs(text, "specs.csv")
    problems = err.value.problems
    assert len(problems) >= 1
    prefix = f"specs.csv line 3 (id {bad['id']!r})"
    assert all(p.startswith(prefix) for p in problems), problems
    assert any(fragment in p for p in problems), problems


def test_duplicate_id_names_both_lines() -> None:
    with pytest.raises(CatalogError) as err:
        parse_specs(_csv(_row(), _row(document="Visa")), "specs.csv")
    assert err.value.problems == ("specs.csv line 3 (id 'xx-passport'): duplicate id (first on line 2)",)


def test_every_problem_is_reported_not_just_the_first() -> None:
    text = _csv(_row(id="xx-a", background="red"), _row(id="xx-b", file_min_kb="9", file_max_kb="1"))
    with pytest.raises(CatalogError) as err:
        parse_specs(text)
    assert len(err.value.problems) == 2
    assert "xx-a" in str(err.value) and "xx-b" in str(err.value)


def test_digital_mm_compositions_may_be_postcard_sized() -> None:
    # Accommodation for in-neet-post-card-photo-4-25x6-5-inch (a 101.6x152.4 mm upload).
    row = _row(width_mm="101.6", height_mm="152.4", head_min_mm="107.2", head_max_mm="",
               top_margin_min_mm="16.5", print_or_digital="digital")  # fmt: skip
    (spec,) = parse_specs(_csv(row))
    assert spec.size_mm() == (101.6, 152.4)
    with pytest.raises(CatalogError, match="outside 10-100 mm for a print spec"):
        parse_specs(_csv({**row, "print_or_digital": "print"}))


def test_wrong_header_is_rejected() -> None:
    text = _csv(_row()).replace("head_min_mm", "head_minimum", 1)
    with pytest.raises(CatalogError, match="line 1: header"):
        parse_specs(text)


def test_paper_rows_are_validated() -> None:
    good = "id,name,width_mm,height_mm,notes\n4r,4R,101.6,152.4,\n"
    (paper,) = parse_papers(good)
    assert (paper.width_mm, paper.height_mm, paper.notes) == (101.6, 152.4, None)
    with pytest.raises(CatalogError, match=r"line 2 .*portrait orientation"):
        parse_papers("id,name,width_mm,height_mm,notes\nwide,Wide,152.4,101.6,\n")
    with pytest.raises(CatalogError, match="duplicate id"):
        parse_papers(good + "4r,4R again,100,150,\n")


# ------------------------------------------------------------------------------ lookup


def test_get_is_case_insensitive_and_unknown_ids_raise(catalog: Catalog) -> None:
    assert catalog.get(" US-Passport ").id == "us-passport"
    assert "us-passport" in catalog and "xx-nothing" not in catalog
    with pytest.raises(SpecNotFoundError, match="xx-nothing"):
        catalog.get("xx-nothing")


def test_search_by_country_code_or_name(catalog: Catalog) -> None:
    by_code = catalog.search(country="us")
    by_name = catalog.search(country="UNITED STATES")
    assert by_code and by_code == by_name
    assert all(s.country_code == "US" for s in by_code)


def test_search_by_document_and_text(catalog: Catalog) -> None:
    visas = catalog.search(country="US", document="VISA")
    assert {s.id for s in visas} >= {"us-visa", "us-visa-digital"}
    assert all("visa" in s.document.lower() for s in visas)
    hits = {s.id for s in catalog.search(text="US Passport")}
    assert "us-passport" in hits
    # Words match from the start of a word: "us" must not find Austria or Russia.
    assert "at-passport" not in hits and "ru-passport" not in hits
    assert [s.id for s in catalog.search(text="居民身份证")] == ["cn-resident-id"]
    assert catalog.search(text="GA 461-2004")[0].id == "cn-resident-id"
    assert catalog.search(text="no-such-words-anywhere") == ()


def test_countries(catalog: Catalog) -> None:
    countries = {c.code: c for c in catalog.countries()}
    assert countries["EU"].name == "European Union" and countries["EU"].spec_count == 2
    assert countries["intl"].spec_count == 1
    assert countries["CN"].name == "China"
    assert sum(c.spec_count for c in countries.values()) == len(SPEC_ROWS)


def test_papers(catalog: Catalog) -> None:
    paper = catalog.paper("4R")
    assert (paper.width_mm, paper.height_mm) == (101.6, 152.4)
    assert catalog.papers()[0].id == "wallet-2x3in"
    with pytest.raises(PaperNotFoundError):
        catalog.paper("b0")
