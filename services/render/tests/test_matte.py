"""The cut-out: one person, no holes, a solved soft edge, no spill; and the output's own cut-out check.

A synthetic subject with a known soft edge on a saturated backdrop gives exact ground truth.
"""

from __future__ import annotations

import io

import cv2
import numpy as np
import numpy.typing as npt
import pytest
import skimage.data
from PIL import Image
from pymatting import estimate_alpha_cf

from likeness_render.adapters.segmenter import SelfieSegmenter
from likeness_render.domain import compliance, idphoto, matte
from likeness_render.domain.spec_loading import load_catalog

GREEN = np.array([20, 200, 40], np.float32)
SUBJECT = np.array([200, 170, 150], np.float32)
WHITE = np.array([255, 255, 255], np.uint8)
N = 240


def _scene(hole: bool = True, neighbour: bool = True) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """(image, true alpha, coarse mask): a head-and-shoulders blob with a wavy soft edge on green.

    The coarse mask is the truth seen through a 5x coarser grid and shifted 2 px, with a hole
    inside the person and a neighbour's shoulder at the side, as the selfie model gives them.
    """
    yy, xx = np.mgrid[0:N, 0:N].astype(np.float32) + 0.5
    head = np.hypot(xx - N / 2, (yy - N * 0.4) * 1.1)
    wave = 3.0 * np.sin(np.arctan2(yy - N * 0.4, xx - N / 2) * 31)
    alpha = np.clip((60 + wave - head) / 4.0, 0.0, 1.0)
    body = ((yy > N * 0.8) & (np.abs(xx - N / 2) < 90)) | ((yy > N * 0.5) & (np.abs(xx - N / 2) < 30))
    alpha = np.maximum(alpha, body.astype(np.float32))
    grain = np.random.default_rng(3).normal(0.0, 5.0, (N, N, 1)).astype(np.float32)
    a = alpha[..., None]
    image = np.clip(a * (SUBJECT + grain) + (1 - a) * GREEN, 0, 255).astype(np.uint8)
    small = cv2.resize(alpha, (N // 5, N // 5), interpolation=cv2.INTER_AREA)
    coarse = np.roll(cv2.resize(small, (N, N), interpolation=cv2.INTER_LINEAR), 2, axis=1)
    if hole:
        coarse[120:130, 110:122] = 0.0  # an ear rim / hair gap the model missed
    if neighbour:
        coarse[150:, 225:] = 1.0  # a neighbour's shoulder at the frame's edge, not touching the person
        coarse[150:, 212:225] = 0.0
    return image, alpha.astype(np.float32), coarse.astype(np.float32)


def test_the_band_solver_matches_pymattings_closed_form_solution() -> None:
    image, _, coarse = _scene(hole=False, neighbour=False)
    tri = matte.trimap(coarse >= 0.5, 5)
    ours = matte.closed_form_alpha(image, tri)
    reference = estimate_alpha_cf(image.astype(np.float64) / 255.0, tri, laplacian_kwargs={"epsilon": 1e-6})
    band = tri == 0.5
    assert band.sum() > 1000
    assert float(np.abs(ours - reference)[band].mean()) < 0.01


def test_cut_out_keeps_one_person_fills_holes_and_follows_the_true_edge() -> None:
    image, truth, coarse = _scene()
    cut = matte.cut_out(image, coarse, (N / 2, N * 0.4))
    assert cut.others_removed == 1
    assert cut.alpha[150:, 228:].max() == 0.0  # the neighbour is gone
    assert cut.alpha[120:130, 110:122].min() == 1.0  # the hole is filled
    edge = (truth > 0.02) & (truth < 0.98)
    err = np.abs(cut.alpha - truth)
    # The coarse mask alone (thresholded) is further off on the same pixels, in value and in where the edge lies.
    assert float(err[edge].mean()) < 0.65 * float(np.abs((coarse >= 0.5) - truth)[edge].mean())
    inside = ((cut.alpha >= 0.5) != (truth >= 0.5))[edge].mean()
    assert inside < 0.7 * ((coarse >= 0.5) != (truth >= 0.5))[edge].mean()
    # The edge stays soft, but its faint outer tail is cut (no veil of old background on a plain new one).
    assert ((cut.alpha > 0) & (cut.alpha < 1))[edge].mean() > 0.3
    assert float(cut.alpha[edge & (truth < 0.2)].mean()) < 0.03


def test_an_undecided_mask_over_the_person_does_not_cut_a_notch() -> None:
    # The model hovers just under 0.5 over a stretch of the shoulder (a black collar, a pale
    # helmet ring): the trimap leaves it to the solve, which follows the colours.
    image, truth, coarse = _scene(hole=False, neighbour=False)
    coarse[192:200, 44:64] = 0.45
    assert truth[192:200, 44:64].min() == 1.0
    cut = matte.cut_out(image, coarse, (N / 2, N * 0.4))
    assert float(cut.alpha[193:200, 44:64].min()) > 0.9


def test_a_shoulder_the_model_doubts_at_the_frames_edge_is_not_left_half_transparent() -> None:
    # The astronaut framed as a us-visa-digital photo (600x600), placed as a faces run put her:
    # the selfie model hovers around 0.5 over her suit's shoulder in the bottom-right corner,
    # partly under it beside the helmet ring. Started from the band's ramp there, the solve
    # left that stretch half background (ghosted wall through the suit: fringe 1.2 %).
    buf = io.BytesIO()
    Image.fromarray(np.asarray(skimage.data.astronaut())).save(buf, format="JPEG", quality=95)
    source = np.asarray(Image.open(buf).convert("RGB"))
    affine = np.array([[2.17228498, 0.122208326, -203.285966], [-0.122208326, 2.17228498, 50.1669109]])
    framed = cv2.warpAffine(source, affine, (600, 600), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    inside = idphoto._inside(source.shape[:2], affine, (600, 600))
    with SelfieSegmenter() as segmenter:
        coarse = segmenter.mask(framed) * inside
    doubted = (coarse[480:, 480:] > matte.DOUBT) & (coarse[480:, 480:] < 1.0 - matte.DOUBT)
    assert doubted.mean() > 0.3  # the model does doubt the corner
    cut = matte.cut_out(framed, coarse, (298.8, 244.9))
    background = matte.solid(600, 600, "#ffffff")
    out = matte.composite(cut.foreground, cut.alpha, background)
    m = compliance.measure_cutout(out, (cut.person & inside) | (cut.alpha >= 0.5), background)
    assert m.fringe_fraction < 0.002
    # The suit (orange, unlike the pale wall) is solid, not a veil.
    suit = (framed[..., 0].astype(int) - framed[..., 2] > 80) & (np.arange(600)[:, None] > 480) & (np.arange(600)[None, :] > 480)
    assert suit.sum() > 2000
    assert float(np.median(cut.alpha[suit])) == 1.0
    assert float((cut.alpha[suit] < 0.5).mean()) < 0.05


def test_the_distance_to_the_backgrounds_colours_ignores_stray_pixels() -> None:
    rng = np.random.default_rng(1)
    wall = np.clip(np.array([215.0, 205.0, 200.0]) + rng.normal(0, 3, (500, 3)), 0, 255).astype(np.float32)
    stray = np.array([[225.0, 115.0, 80.0]] * (matte.BACKGROUND_MIN_PX - 1), np.float32)  # a hair's orange
    colours = np.array([[214, 206, 199], [225, 115, 80], [205, 195, 190]], np.uint8)
    near_wall, orange, shade = matte._background_distance(np.concatenate([wall, stray]), colours)
    assert near_wall == 0.0 and shade <= matte.RGB_CELL * 1.5
    assert orange > matte.UNLIKE_BACK[1]  # a colour the wall does not have, however many stray pixels
    assert np.isinf(matte._background_distance(np.zeros((0, 3), np.float32), colours)).all()


def test_the_green_backdrop_does_not_show_on_white() -> None:
    image, _, coarse = _scene()
    cut = matte.cut_out(image, coarse, (N / 2, N * 0.4))
    out = matte.composite(cut.foreground, cut.alpha, np.broadcast_to(WHITE, image.shape))
    naive = matte.composite(image, cut.alpha, np.broadcast_to(WHITE, image.shape))
    rim = (cut.alpha > 0) & (cut.alpha < 1)

    def green_excess(rgb: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        f = rgb.astype(np.float32)
        return f[..., 1] - (f[..., 0] + f[..., 2]) / 2

    assert float((green_excess(naive)[rim] > 15).mean()) > 0.3  # without the solved colours it would show
    assert float((green_excess(out)[rim] > 15).mean()) < 0.01


MAGENTA = np.array([220, 30, 200], np.float32)
DARK_HAIR = np.array([70, 55, 45], np.float32)


def test_a_magenta_lit_rim_takes_the_persons_colour_not_the_backdrops() -> None:
    """Dark hair before magenta, its outer 6 px lit by the backdrop (30 % of its light): no magenta cast, no pale stripe."""
    yy, xx = np.mgrid[0:N, 0:N].astype(np.float32) + 0.5
    dist = 60.0 - np.hypot(xx - N / 2, (yy - N * 0.45) * 1.1)  # > 0 inside the head
    body = (yy > N * 0.8) & (np.abs(xx - N / 2) < 90)
    alpha = np.maximum(np.clip(dist / 2.0, 0.0, 1.0), body.astype(np.float32))
    lit = ((dist > 0) & (dist < 6) & ~body)[..., None]
    grain = np.random.default_rng(5).normal(0.0, 4.0, (N, N, 1)).astype(np.float32)
    person = np.where(lit, 0.7 * DARK_HAIR + 0.3 * MAGENTA, DARK_HAIR) + grain
    a = alpha[..., None]
    image = np.clip(a * person + (1 - a) * MAGENTA, 0, 255).astype(np.uint8)
    coarse = cv2.resize(cv2.resize(alpha, (N // 5, N // 5), interpolation=cv2.INTER_AREA), (N, N), interpolation=cv2.INTER_LINEAR)
    cut = matte.cut_out(image, coarse.astype(np.float32), (N / 2, N * 0.45))
    out = matte.composite(cut.foreground, cut.alpha, np.broadcast_to(WHITE, image.shape)).astype(np.float32)
    rim = lit[..., 0] & (cut.alpha >= 1.0)
    assert rim.sum() > 300

    def cast(rgb: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        return (rgb[..., 0] + rgb[..., 2]) / 2 - rgb[..., 1]  # magenta: red and blue over green

    hair_cast = float(cast(DARK_HAIR[None, None])[0, 0])
    assert float((cast(image.astype(np.float32))[rim] > hair_cast + 12).mean()) > 0.9  # the photo has it
    assert float((cast(out)[rim] > hair_cast + 12).mean()) < 0.01
    # Its lightness is the hair's, not the lit rim's.
    assert abs(float(out[rim].mean()) - float(DARK_HAIR.mean())) < 12
    assert float(image[rim].mean()) - float(DARK_HAIR.mean()) > 25


def test_skin_beside_a_black_collar_stays_warm_before_a_pink_wall() -> None:
    # A rim pixel of skin in shadow, a pink-beige wall behind, the interior nearby mostly a black
    # collar: its mean alone would call the skin's warmth the wall's light and leave it green-grey.
    skin = np.array([[150.0, 110.0, 90.0]], np.float32)
    wall = np.array([[225.0, 150.0, 170.0]], np.float32)
    collar = np.array([[25.0, 25.0, 28.0]], np.float32)
    kept = matte.remove_spill(skin, wall, collar, hues=np.array([[200.0, 150.0, 120.0]], np.float32))[0]
    assert kept[0] > kept[1] > kept[2]  # still warm (red over green over blue)
    assert float(np.abs(kept - skin[0]).max()) < 12.0
    # Without the interior's coloured part the same pixel turns toward green: what the split is for.
    lost = matte.remove_spill(skin, wall, collar)[0]
    assert lost[1] >= lost[0] - 5.0


def test_no_person_in_the_mask_leaves_nothing() -> None:
    image, _, _ = _scene()
    cut = matte.cut_out(image, np.zeros((N, N), np.float32), (N / 2, N / 2))
    assert not cut.alpha.any()
    with pytest.raises(ValueError, match="differ in size"):
        matte.cut_out(image, np.zeros((N, N + 1), np.float32), (N / 2, N / 2))


def _clean_output() -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float32], npt.NDArray[np.uint8]]:
    image, _, coarse = _scene()
    cut = matte.cut_out(image, coarse, (N / 2, N * 0.4))
    background = np.ascontiguousarray(np.broadcast_to(WHITE, image.shape))
    return matte.composite(cut.foreground, cut.alpha, background), cut.alpha, background


def test_a_clean_cut_out_measures_clean_and_passes() -> None:
    out, alpha, background = _clean_output()
    m = compliance.measure_cutout(out, alpha >= 0.5, background)
    assert m.islands == 0
    assert m.fringe_fraction <= 0.002 and m.leftover_fraction <= 0.002
    spec = load_catalog().get("schengen-visa")
    report = compliance.check_compliance(compliance.PhotoMeasurements(1, 413, 531, cutout=m), spec)
    assert compliance.IssueCode.BACKGROUND_LEFTOVER not in report.codes


def test_a_blotch_of_old_background_is_a_leftover_to_retake() -> None:
    out, alpha, background = _clean_output()
    out = out.copy()
    out[10:16, 10:16] = (225, 150, 170)  # 36 px of pink curtain, far from the person
    m = compliance.measure_cutout(out, alpha >= 0.5, background)
    assert m.islands == 1
    spec = load_catalog().get("schengen-visa")
    report = compliance.check_compliance(compliance.PhotoMeasurements(1, 413, 531, cutout=m), spec)
    issue = next(i for i in report.issues if i.code is compliance.IssueCode.BACKGROUND_LEFTOVER)
    assert issue.remedy is compliance.Remedy.RETAKE and issue.severity is compliance.Severity.ERROR
    assert "plain" in issue.message and not report.passed


def test_a_halo_is_a_leftover_even_without_islands() -> None:
    out, alpha, background = _clean_output()
    ring = (cv2.dilate((alpha >= 0.5).astype(np.uint8), np.ones((13, 13), np.uint8)) > 0) & (alpha < 0.5)
    halo = out.copy()
    halo[ring] = (150, 210, 160)
    m = compliance.measure_cutout(halo, alpha >= 0.5, background)
    assert m.islands == 0 and m.fringe_fraction > 0.2
    report = compliance.check_compliance(compliance.PhotoMeasurements(1, 413, 531, cutout=m), load_catalog().get("schengen-visa"))
    assert compliance.IssueCode.BACKGROUND_LEFTOVER in report.codes and not report.passed


def test_a_removed_neighbour_is_reported_as_fixed_and_still_passes() -> None:
    spec = load_catalog().get("schengen-visa")
    m = compliance.CutoutMeasurements(islands=0, fringe_fraction=0.0, leftover_fraction=0.0, others_removed=1)
    report = compliance.check_compliance(compliance.PhotoMeasurements(1, 413, 531, cutout=m), spec)
    issue = next(i for i in report.issues if i.code is compliance.IssueCode.OTHER_PERSON)
    assert issue.remedy is compliance.Remedy.FIXED and issue.severity is compliance.Severity.WARNING
    assert report.passed


def test_measure_cutout_refuses_mismatched_sizes() -> None:
    out, alpha, background = _clean_output()
    with pytest.raises(ValueError, match="differ in size"):
        compliance.measure_cutout(out, alpha[:-1] >= 0.5, background)


@pytest.mark.parametrize(("width", "height"), [(600, 600), (413, 531), (1, 1), (7, 1)])
def test_a_solid_background_is_its_colour_everywhere(width: int, height: int) -> None:
    plain = matte.solid(width, height, "#1a2b3c")
    assert plain.shape == (height, width, 3) and plain.dtype == np.uint8 and plain.flags.c_contiguous
    assert (plain.reshape(-1, 3) == (0x1A, 0x2B, 0x3C)).all()
    with pytest.raises(ValueError, match="not a hex colour"):
        matte.solid(width, height, "#12345")
