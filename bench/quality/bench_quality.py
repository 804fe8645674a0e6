"""How clean the ID photos look: the measures of issue 16's table on a set of public-domain portraits.

The set: Grace Hopper (matplotlib) and the astronaut (scikit-image) as they are (curtains, a
flag), and both cut out and composited onto busy and saturated backgrounds with a soft edge
and a rim of the backdrop's light on the person (spill). Each is made into a Schengen-visa
photo (white) by the render pipeline in-process; the measures are taken on the output with an
independent silhouette: the selfie model run again on the output, with the person in the source
(warped into the frame) added: the model's mask of the photo as taken, or for a composite the mask
it was made with (its truth). That keeps a white cap or a pale helmet ring that the model loses
against a light output. A synthetic halo painted on the first output checks
that the fringe measure still sees one (the run stops if it does not):

  islands   blobs > 15 px differing from the new background by > dE00 10, apart from the person
  fringe    share of the 3-15 px ring outside the silhouette differing by > dE00 10
  leftover  share of the background area (beyond 3 px) differing by > dE00 10
  spill     (green/magenta sources) share of the +-6 px edge band still of the old backdrop's hue
  beauty    skin chroma change at smoothing/whitening 5 and 10; the largest colour step (dE00)
            of the retouch's change (texture averaged out) between pixels 2 px apart

Also printed: whether the pipeline's own output check (compliance.measure_cutout) would
report BACKGROUND_LEFTOVER / OTHER_PERSON. Baseline in the same run: the cut-out's CPU time (process time: the machine is shared) next
to another revision's (--baseline, default git main), on the same framed crops. A contact sheet with zoomed edges goes to $TMPDIR/likeness-quality/contact.png.

    .venv/bin/python bench/quality/bench_quality.py [--quick] [--baseline REV]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
from matplotlib import cbook
from PIL import Image
from skimage import color, data

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "services" / "render" / "tests"))

from landmarks import TestLandmarker  # noqa: E402

from likeness_render.adapters.segmenter import SelfieSegmenter  # noqa: E402
from likeness_render.domain import compliance, idphoto, matte  # noqa: E402
from likeness_render.domain.spec_loading import load_catalog  # noqa: E402
from likeness_render.usecases.id_photo import frame_of  # noqa: E402

RGB = npt.NDArray[np.uint8]
SPEC = "schengen-visa"
DE = 10.0
BACKDROPS = {"green": (20, 200, 40), "magenta": (220, 30, 200)}


CUTOUT_CODES = {compliance.IssueCode.BACKGROUND_LEFTOVER, compliance.IssueCode.OTHER_PERSON}


def matte_module(rev: str) -> types.ModuleType:
    """Another revision's services/render/.../domain/matte.py (`rev`), loaded as the module old_matte."""
    source = subprocess.run(
        ["git", "show", f"{rev}:services/render/src/likeness_render/domain/matte.py"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    module = types.ModuleType("old_matte")
    sys.modules["old_matte"] = module  # dataclasses look their module up
    exec(compile(source, "old_matte.py", "exec"), module.__dict__)
    return module


def old_matte(rev: str) -> Callable[[RGB, npt.NDArray[np.float32], tuple[float, float]], object]:
    """The cut-out of another revision (`rev`:services/render/.../domain/matte.py), for timing on the same crops."""
    module = matte_module(rev)

    def run(image: RGB, coarse: npt.NDArray[np.float32], centre: tuple[float, float]) -> object:
        if hasattr(module, "cut_out"):
            cut = module.cut_out(image, coarse, centre)
            return module.composite(cut.foreground, cut.alpha, image)
        alpha = module.refine(image, coarse)  # the guided-filter matte of before
        return module.composite(image, alpha, image)

    return run


def grace() -> RGB:
    with cbook.get_sample_data("grace_hopper.jpg") as fh:
        return np.asarray(Image.open(fh).convert("RGB"))


def busy(h: int, w: int, seed: int) -> RGB:
    """Curtain-like stripes in pink and beige with a bright flag-pole strip and noise."""
    rng = np.random.default_rng(seed)
    x = np.arange(w, dtype=np.float32)[None, :, None]
    pink, beige = np.array([225, 150, 170], np.float32), np.array([210, 190, 150], np.float32)
    t = 0.5 + 0.5 * np.sin(x / 9.0 + np.arange(h, dtype=np.float32)[:, None, None] / 40.0)
    out = pink * t + beige * (1 - t)
    out[:, w // 5 : w // 5 + 8] = (240, 240, 235)
    coffee = cv2.resize(np.asarray(data.coffee()), (w // 3, h // 3))
    out[h - h // 3 :, w - w // 3 :] = coffee[: h // 3, : w // 3]
    return np.clip(out + rng.normal(0, 6, out.shape), 0, 255).astype(np.uint8)


def composite_source(person: RGB, mask: npt.NDArray[np.float32], backdrop: RGB | tuple[int, int, int]) -> RGB:
    """`person` onto `backdrop` with a 2 px soft edge and the backdrop's light on a 5 px rim inside it."""
    a = cv2.GaussianBlur((mask >= 0.5).astype(np.float32), (0, 0), 2.0)
    back = np.broadcast_to(np.array(backdrop, np.float32), person.shape) if isinstance(backdrop, tuple) else backdrop.astype(np.float32)
    inside = (mask >= 0.5).astype(np.uint8)
    rim = (inside > 0) & ~(cv2.erode(inside, np.ones((11, 11), np.uint8)) > 0)
    lit = person.astype(np.float32)
    lit[rim] = 0.72 * lit[rim] + 0.28 * back[rim]
    out = lit * a[..., None] + back * (1 - a[..., None])
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def silhouette(
    seg: SelfieSegmenter, image: RGB, seed: tuple[float, float], source: npt.NDArray[np.bool_] | None = None
) -> npt.NDArray[np.bool_]:
    """The selfie model's person on the output, with `source` (the person as the model sees them in
    the source photo, warped into the frame) added: a white cap or a pale helmet ring on a white or
    light grey output is lost to the model there but not on the photo as taken. Neither is the
    pipeline's own mask (that is the model on the framed crop, refined by the matte)."""
    own = matte.single_person(seg.mask(image), seed)
    if source is None:
        return own
    return matte.single_person(np.maximum(own, source).astype(np.float32), seed)


def source_silhouette(person: npt.NDArray[np.float32], affine: npt.NDArray[np.float64], size: tuple[int, int]) -> npt.NDArray[np.bool_]:
    """The person in the source's pixels (the model's mask of the photo as taken, or of the portrait a
    composite was made from: the composite's truth), warped into the output frame (`size`: w, h)."""
    warped = cv2.warpAffine(person, affine, size, flags=cv2.INTER_LINEAR, borderValue=0.0)
    return warped >= 0.5


def halo_check(seg: SelfieSegmenter, out: RGB, bg: tuple[int, int, int], seed: tuple[float, float], source: npt.NDArray[np.bool_]) -> float:
    """The fringe measure of `out` with a synthetic halo painted on it: the old curtains' pink at half
    strength 1-5 px outside the measured silhouette. The measure must score it far above target (the
    model run on the painted output must not take the halo for the person)."""
    halo = ring(silhouette(seg, out, seed, source), 1, 5)
    painted = out.copy()
    painted[halo] = (0.5 * out[halo] + 0.5 * np.array([225, 150, 170])).astype(np.uint8)
    return measures(seg, painted, bg, seed, None, source)["fringe_%"]


def ring(mask: npt.NDArray[np.bool_], inner: int, outer: int) -> npt.NDArray[np.bool_]:
    def grow(r: int) -> npt.NDArray[np.bool_]:
        if r == 0:
            return mask
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
        return cv2.dilate(mask.astype(np.uint8), k) > 0

    return grow(outer) & ~grow(inner)


def measures(
    seg: SelfieSegmenter,
    out: RGB,
    bg: tuple[int, int, int],
    seed: tuple[float, float],
    old: tuple[int, int, int] | None,
    source: npt.NDArray[np.bool_] | None = None,
) -> dict[str, float]:
    sil = silhouette(seg, out, seed, source)
    lab = color.rgb2lab(out)
    bg_lab = color.rgb2lab(np.array([[bg]], np.uint8))[0, 0]
    differs = color.deltaE_ciede2000(lab, np.broadcast_to(bg_lab, lab.shape)) > DE
    union = (differs | sil).astype(np.uint8)
    _, labels = cv2.connectedComponents(union, connectivity=8)
    main = labels == labels[round(seed[1]), round(seed[0])]
    count, _, stats, _ = cv2.connectedComponentsWithStats((differs & ~main).astype(np.uint8), connectivity=8)
    islands = int((stats[1:, cv2.CC_STAT_AREA] > 15).sum()) if count > 1 else 0
    fringe_band = ring(sil, 3, 15)
    background = ~ring(sil, 0, 3) & ~sil
    result = {
        "islands": float(islands),
        "fringe_%": 100.0 * float(differs[fringe_band].mean()),
        "leftover_%": 100.0 * float(differs[background].mean()),
    }
    if old is not None:
        old_h = np.degrees(np.arctan2(*color.rgb2lab(np.array([[old]], np.uint8))[0, 0, [2, 1]]))
        hue = np.degrees(np.arctan2(lab[..., 2], lab[..., 1]))
        chroma = np.hypot(lab[..., 1], lab[..., 2])
        d = np.abs((hue - old_h + 180) % 360 - 180)
        tinted = (d < 25) & (chroma > 15)
        edge = ring(sil, 0, 6) | (sil & ~(cv2.erode(sil.astype(np.uint8), np.ones((13, 13), np.uint8)) > 0))
        result["spill_%"] = 100.0 * float(tinted[edge].mean())
    return result


def beauty(out0: RGB, out: RGB, skin: npt.NDArray[np.bool_]) -> tuple[float, float]:
    """Relative skin chroma change (%) and the largest step (dE00, 99.9th pct) of the retouch's change."""
    lab0, lab1 = color.rgb2lab(out0), color.rgb2lab(out)
    c0 = np.hypot(lab0[..., 1], lab0[..., 2])[skin].mean()
    c1 = np.hypot(lab1[..., 1], lab1[..., 2])[skin].mean()
    # The retouch's change with skin texture averaged out (smoothing changes each pore
    # differently): what is left steps only where the retouched area ends.
    change = cv2.GaussianBlur((lab1 - lab0).astype(np.float32), (0, 0), 2.0).astype(np.float64)
    changed = np.linalg.norm(change, axis=-1) > 0.5
    region = cv2.dilate(changed.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    steps = []
    for dy, dx in ((0, 2), (2, 0)):
        q1 = lab0[dy:, dx:] + change[dy:, dx:]
        p_change = change[: change.shape[0] - dy, : change.shape[1] - dx]
        expected = lab0[dy:, dx:] + p_change
        de = color.deltaE_ciede2000(q1, expected)
        steps.append(de[region[dy:, dx:]])
    allsteps = np.concatenate(steps) if steps else np.zeros(1)
    return 100.0 * (c1 - c0) / c0, float(np.percentile(allsteps, 99.9)) if allsteps.size else 0.0


def skin_of(face: idphoto.FaceGeometry, shape: tuple[int, int]) -> npt.NDArray[np.bool_]:
    from likeness_imaging.face_mesh import FACE_OVAL, LEFT_EYE, LIPS, RIGHT_EYE

    mask = np.zeros(shape, np.uint8)
    assert face.mesh is not None
    cv2.fillPoly(mask, [np.round(face.mesh[list(FACE_OVAL)]).astype(np.int32)], 1)
    for part in (LEFT_EYE, RIGHT_EYE, LIPS):
        cv2.fillPoly(mask, [cv2.convexHull(np.round(face.mesh[list(part)]).astype(np.int32))], 0)
    return cv2.erode(mask, np.ones((9, 9), np.uint8)) > 0


def zoom(image: RGB, centre: tuple[float, float], side: int, size: int) -> RGB:
    h, w = image.shape[:2]
    x0 = int(min(max(0, centre[0] - side / 2), w - side))
    y0 = int(min(max(0, centre[1] - side / 2), h - side))
    return cv2.resize(image[y0 : y0 + side, x0 : x0 + side], (size, size), interpolation=cv2.INTER_NEAREST)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--baseline", default="main", help="git revision whose cut-out is timed beside this one (default: main)")
    args = parser.parse_args()
    rounds = 2 if args.quick else 5
    spec = load_catalog().get(SPEC)
    frame = frame_of(spec, 300.0)
    bg = matte.hex_rgb((spec.background or ("#ffffff",))[0])
    folder = Path(tempfile.gettempdir()) / "likeness-quality"
    folder.mkdir(exist_ok=True)
    with SelfieSegmenter() as seg, TestLandmarker() as marks:
        people = {"grace": grace(), "astronaut": np.asarray(data.astronaut())}
        # Each source with its old backdrop's colour (saturated ones) and the person in its pixels.
        sources: dict[str, tuple[RGB, tuple[int, int, int] | None, npt.NDArray[np.float32]]] = {
            name: (img, None, seg.mask(img)) for name, img in people.items()
        }
        for name, img in people.items():
            mask = seg.mask(img)
            h, w = img.shape[:2]
            sources[f"{name}+busy"] = (composite_source(img, mask, busy(h, w, 1)), None, mask)
            for bname, rgb in BACKDROPS.items():
                sources[f"{name}+{bname}"] = (composite_source(img, mask, rgb), rgb, mask)
        rows = []
        tiles = []
        outputs: dict[str, tuple[RGB, tuple[float, float], npt.NDArray[np.bool_]]] = {}
        halos: list[tuple[str, float]] = []
        times: list[float] = []
        for name, (img, old, person) in sources.items():
            face = marks.detect(img)[0]
            started = time.perf_counter()
            made = idphoto.compose(img, face, seg.mask, frame, spec.background, idphoto.Options())
            times.append(time.perf_counter() - started)
            centre = (float(made.face.eye_centre[0]), float(made.face.eye_centre[1]))
            size = (made.image.shape[1], made.image.shape[0])
            from_source = source_silhouette(person, made.placement.affine, size)
            m = measures(seg, made.image, bg, centre, old, from_source)
            if name in ("grace", "astronaut+busy"):
                halos.append((name, halo_check(seg, made.image, bg, centre, from_source)))
            outputs[name] = (made.image, centre, from_source)
            if old is not None:
                # The same hue measure on the person's output from the untouched photo: what
                # of that hue the person has anyway (a navy jacket is close to magenta).
                plain_out, plain_centre, plain_source = outputs[name.split("+")[0]]
                m["own_hue_%"] = measures(seg, plain_out, bg, plain_centre, old, plain_source)["spill_%"]
            assert made.background is not None and made.silhouette is not None
            own = compliance.measure_cutout(made.image, made.silhouette, made.background, made.others_removed)
            codes = compliance.check_compliance(compliance.PhotoMeasurements(1, *made.image.shape[1::-1], cutout=own), spec).codes
            flagged = ",".join(sorted(c for c in codes if c in CUTOUT_CODES)) or "-"
            m["codes"] = f"{flagged} ({own.islands}, {100 * own.fringe_fraction:.2f} %, {100 * own.leftover_fraction:.2f} %)"  # type: ignore[assignment]
            rows.append((name, m))
            x1, y1, x2, y2 = made.face.box
            crops = [
                zoom(made.image, (x1 - 0.1 * (x2 - x1), y1), 80, 240),  # hair at the side of the head
                zoom(made.image, ((x1 + x2) / 2, y1 - 0.35 * (y2 - y1)), 80, 240),  # crown
                zoom(made.image, (x2 + 0.05 * (x2 - x1), (y1 + y2) / 2), 80, 240),  # ear
                zoom(made.image, (x2 + 0.3 * (x2 - x1), y2 + 0.5 * (y2 - y1)), 80, 240),  # collar / shoulder
            ]
            small = cv2.resize(img, (round(img.shape[1] * 531 / img.shape[0]), 531))[:, :413]
            small = np.pad(small, ((0, 0), (0, 413 - small.shape[1]), (0, 0)), constant_values=128)
            crops_col = np.concatenate([np.concatenate(crops[:2], axis=0), np.concatenate(crops[2:], axis=0)], axis=1)
            crops_col = cv2.resize(crops_col, (round(crops_col.shape[1] * 531 / crops_col.shape[0]), 531))
            tiles.append(np.concatenate([small, made.image, crops_col], axis=1))
        face = marks.detect(people["grace"])[0]
        plain = idphoto.compose(people["grace"], face, seg.mask, frame, spec.background, idphoto.Options())
        skin = skin_of(plain.face, plain.image.shape[:2])
        beauty_rows = []
        for level in (5, 10):
            made = idphoto.compose(
                people["grace"], face, seg.mask, frame, spec.background, idphoto.Options(smoothing=level, whitening=level)
            )
            beauty_rows.append((level, *beauty(plain.image, made.image, skin)))
            tiles.append(np.concatenate([plain.image, made.image, np.full((531, tiles[0].shape[1] - 826, 3), 255, np.uint8)], axis=1))
        # The cut-out against the matte it replaced, on the same framed crops, interleaved.
        crops = []
        real = matte.cut_out
        for name in ("grace", "astronaut+busy"):

            def spy(image: RGB, coarse: npt.NDArray[np.float32], centre: tuple[float, float]) -> matte.CutOut:
                crops.append((image, coarse, centre))
                return real(image, coarse, centre)

            matte.cut_out = spy
            img = sources[name][0]
            idphoto.compose(img, marks.detect(img)[0], seg.mask, frame, spec.background, idphoto.Options())
            matte.cut_out = real
        old_refine = old_matte(args.baseline)
        new_t, old_t = [], []
        for _ in range(rounds):
            for image, coarse, centre in crops:
                started = time.process_time()
                cut = matte.cut_out(image, coarse, centre)
                matte.composite(cut.foreground, cut.alpha, image)
                new_t.append(time.process_time() - started)
                started = time.process_time()
                old_refine(image, coarse, centre)
                old_t.append(time.process_time() - started)
    print(f"{'source':<20} {'islands':>8} {'fringe %':>9} {'leftover %':>11} {'spill %':>15}  own check (islands, fringe, leftover)")
    for name, m in rows:
        spill = f"{m['spill_%']:6.2f} ({m['own_hue_%']:5.2f})" if "spill_%" in m else f"{'-':>15}"
        print(f"{name:<20} {m['islands']:8.0f} {m['fringe_%']:9.2f} {m['leftover_%']:11.2f} {spill}  {m['codes']}")
    print(
        "targets: islands 0, fringe <= 0.2 %, leftover <= 0.2 %, spill <= 1 % (in brackets: the same hue in the untouched photo's output)"
    )
    for name, halo in halos:
        print(f"self-check: {name} with a synthetic halo (pink, half strength, 1-5 px out) scores fringe {halo:.1f} %")
        if halo < 10.0:
            raise SystemExit("the fringe measure no longer sees a halo")
    for level, chroma, step in beauty_rows:
        print(f"beauty level {level:>2}: skin chroma {chroma:+6.1f} % (target within +-15 %), largest step dE00 {step:5.2f} (target <= 4)")
    new_p50, old_p50 = statistics.median(new_t), statistics.median(old_t)
    print(
        f"cut-out + composite CPU p50 {1000 * new_p50:.1f} ms, {args.baseline}'s p50 {1000 * old_p50:.1f} ms "
        f"(413x531, same run): {1000 * (new_p50 - old_p50):+.1f} ms"
    )
    sheet = np.concatenate(tiles, axis=0)
    path = folder / "contact.png"
    Image.fromarray(sheet).save(path)
    print(f"contact sheet: {path}")


if __name__ == "__main__":
    main()
