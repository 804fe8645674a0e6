"""How portraits and hairstyles look, in numbers (measures.py says how each is taken).

Users: the package-shipped public-domain portraits (Grace Hopper, Eileen Collins), a
darker-skinned rendering of each (Lab lightness 0.55x on the person, warmer: a skin-tone
change shows at once), Collins tilted 10 degrees and at 1024 px. Templates: the demo catalog (render's own, at material size) with meshes from
MediaPipe's landmarker, as the faces service would give them. Per template, user and strength:

- ``d_user`` / ``d_tmpl``: dlib distance of the output's face to the user's photo and to
  the template's source face (same-run baseline ``base``: the template itself to the user);
- ``skin``: ΔE00 of the output's cheek colour to the user's (``vs tmpl``: to the template's);
- ``seam``: colour step across the blend mask's edge, and the template's own step there.

Hairstyles, per user and style: the hairline's sharpness against the user's real hairline
(same run), and the share of ear skin kept (measures.ear_skin says what counts as ear; a
self-check paints the ears over with the backdrop and must score low).

    .venv/bin/python bench/portrait/quality.py [--out /tmp/portraits/bench] [--strengths 30,60,100]
    (bench/portrait/bench_portrait.py runs it first, then the latency numbers.)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import matplotlib.cbook
import mediapipe as mp
import numpy as np
import numpy.typing as npt
from mediapipe.tasks.python import BaseOptions, vision
from PIL import Image
from skimage import data
from skimage.color import deltaE_ciede2000, rgb2lab

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measures import Identity, ear_erasure, ear_preservation, ear_skin, hairline_sharpness, seam_step

from likeness_render.adapters.model_files import model_path
from likeness_render.adapters.segmenter import SelfieSegmenter
from likeness_render.domain import fusion, hair, templates
from likeness_render.domain.face import FaceGeometry

Rgb = npt.NDArray[np.uint8]
DEFAULT_STRENGTH = 60
CHEEKS = (50, 280, 205, 425)


class Landmarker:
    def __init__(self) -> None:
        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(model_path("face_landmarker.task"))),
            running_mode=vision.RunningMode.IMAGE,
            num_faces=4,
        )
        self._lm = vision.FaceLandmarker.create_from_options(options)

    def faces(self, rgb: Rgb) -> list[FaceGeometry]:
        h, w = rgb.shape[:2]
        res = self._lm.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb)))
        out = []
        for lms in res.face_landmarks:
            pts = np.array([[p.x * w, p.y * h] for p in lms], np.float64)
            lo, hi = pts.min(0), pts.max(0)
            out.append(FaceGeometry(box=(lo[0], lo[1], hi[0], hi[1]), mesh=pts))
        return sorted(out, key=lambda f: f.box[0])

    def close(self) -> None:
        self._lm.close()


def darker(rgb: Rgb, person: npt.NDArray[np.float32]) -> Rgb:
    lab = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    dark = lab.copy()
    dark[..., 0] *= 0.55
    dark[..., 1] += 4.0
    dark[..., 2] += 8.0
    a = person[..., None]
    mixed = lab * (1 - a) + dark * a
    return np.clip(cv2.cvtColor(mixed, cv2.COLOR_Lab2RGB) * 255 + 0.5, 0, 255).astype(np.uint8)


def tilted(rgb: Rgb, degrees: float) -> Rgb:
    h, w = rgb.shape[:2]
    rot = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return np.asarray(cv2.warpAffine(rgb, rot, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT), dtype=np.uint8)


def cheek_lab(rgb: Rgb, mesh: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    lab = rgb2lab(rgb)
    d = float(np.linalg.norm(mesh[468] - mesh[473])) if mesh.shape[0] > 473 else 60.0
    r = max(1, int(0.1 * d))
    vals = [lab[int(mesh[i, 1]) - r : int(mesh[i, 1]) + r, int(mesh[i, 0]) - r : int(mesh[i, 0]) + r].reshape(-1, 3) for i in CHEEKS]
    return np.median(np.concatenate(vals), axis=0)


def de(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> float:
    return float(deltaE_ciede2000(a[None], b[None])[0])


def pct(x: float) -> str:
    return "n/a" if np.isnan(x) else f"{x:.0%}"


def without_hat_check(rgb: Rgb, mesh: npt.NDArray[np.float64], person: npt.NDArray[np.float32], style: str) -> hair.HairResult:
    """``hair.restyle_hair`` as if no hat were seen (bench only: to measure ears under a hat)."""
    check = hair.wears_hat
    hair.wears_hat = lambda *_: False  # type: ignore[assignment]
    try:
        return hair.restyle_hair(rgb, mesh, person, style)
    finally:
        hair.wears_hat = check  # type: ignore[assignment]


def erase_ears(rgb: Rgb, ears: list[npt.NDArray[np.bool_]], person: npt.NDArray[np.float32]) -> Rgb:
    """What a hairstyle that erases the ears would leave: each ear's skin (grown by a pixel)
    painted over with the backdrop's median colour around it."""
    out = rgb.copy()
    for ear in ears:
        if not ear.any():
            continue
        grown = cv2.dilate(ear.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        around = (cv2.dilate(grown.astype(np.uint8), np.ones((41, 41), np.uint8)) > 0) & (person < 0.1)
        source = rgb[around] if around.any() else rgb[~grown]
        out[grown] = np.median(source, axis=0).astype(np.uint8)
    return out


def save(out: Path | None, name: str, *images: Rgb) -> None:
    if out is None:
        return
    h = max(i.shape[0] for i in images)
    row = [cv2.copyMakeBorder(i, 0, h - i.shape[0], 0, 4, cv2.BORDER_CONSTANT, value=(255, 255, 255)) for i in images]
    Image.fromarray(np.concatenate(row, axis=1)).save(out / f"{name}.png")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=None, help="write before/after PNGs here")
    ap.add_argument("--strengths", default="30,60,100")
    ap.add_argument("--no-hair", action="store_true")
    ap.add_argument("--no-portrait", action="store_true")
    args = ap.parse_args()
    run(args.out, [int(s) for s in args.strengths.split(",")], portraits=not args.no_portrait, hairstyles=not args.no_hair)


def run(out_dir: Path | None, strengths: list[int], portraits: bool = True, hairstyles: bool = True) -> None:
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
    cv2.setNumThreads(2)
    ident = Identity()
    lm = Landmarker()
    seg = SelfieSegmenter()
    with Image.open(str(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))) as im:
        hopper = np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    astro = data.astronaut()
    users: dict[str, tuple[Rgb, str]] = {
        "hopper": (hopper, "hopper"),
        "collins": (astro, "astronaut"),
        "hopper-dark": (darker(hopper, seg.mask(hopper)), "hopper"),
        "collins-dark": (darker(astro, seg.mask(astro)), "astronaut"),
        "collins-tilt": (tilted(astro, 10.0), "astronaut"),
        "collins-1k": (cv2.resize(astro, (1024, 1024), interpolation=cv2.INTER_CUBIC), "astronaut"),
    }
    user_mesh: dict[str, npt.NDArray[np.float64]] = {}
    user_desc = {}
    for name, (img, _) in users.items():
        faces = lm.faces(img)
        assert faces and faces[0].mesh is not None, name
        user_mesh[name] = faces[0].mesh
        user_desc[name] = ident.descriptor(img)

    if portraits:
        plan = templates.plan_demo(seg.mask)
        a_face, h_face = lm.faces(plan.astronaut)[0], lm.faces(plan.hopper)[0]
        looks = list(templates.demo_looks(plan, a_face, h_face))
        source_of = {"documentary": ["astronaut"], "official": ["hopper"], "studio": ["astronaut"], "duo": ["astronaut", "hopper"]}
        print(f"portraits: {len(users)} users x {len(looks)} templates x strengths {strengths}; d = dlib distance (same person < 0.6)")
        print(
            f" {'template':<15}{'user':<14}{'s':>4}{'base':>7}{'d_user':>8}{'d_tmpl':>8}{'skin':>7}{'vs tmpl':>8}{'seam':>7}{'tmpl':>6}{'px':>6}{'ms':>6}"
        )
        at_default = []
        for look in looks:
            tmpl = templates.register_template(look.name, look.style, look.image, lm.faces(look.image), alpha=look.alpha)
            for uname, (uimg, usrc) in users.items():
                for face_i, src in enumerate(source_of[look.style]):
                    t_mesh = tmpl.meshes[face_i]
                    centre = (float(t_mesh[:, 0].mean()), float(t_mesh[:, 1].mean()))
                    t_desc = ident.descriptor_near(tmpl.image, centre)
                    base = ident.distance(t_desc, user_desc[uname])
                    same_source = src == usrc
                    for s in strengths:
                        t0 = time.perf_counter()
                        fused = fusion.fuse(tmpl.image, list(tmpl.meshes), [(uimg, user_mesh[uname])], s, face_i, tmpl.alpha)
                        ms = (time.perf_counter() - t0) * 1000
                        out = fused.image
                        od = ident.descriptor_near(out, centre)
                        d_user = ident.distance(od, user_desc[uname])
                        d_tmpl = ident.distance(od, t_desc)
                        mask = fused.masks[face_i]
                        # The output's mesh is where the face now is; cheeks measured there.
                        out_faces = lm.faces(out)
                        near = min(out_faces, key=lambda f: abs((f.box[0] + f.box[2]) / 2 - centre[0])) if out_faces else None
                        o_mesh = near.mesh if near is not None and near.mesh is not None else t_mesh
                        skin_u = de(cheek_lab(out, o_mesh), cheek_lab(uimg, user_mesh[uname]))
                        skin_t = de(cheek_lab(out, o_mesh), cheek_lab(tmpl.image, t_mesh))
                        seam, seam_t = seam_step(out, mask), seam_step(tmpl.image, mask)
                        flag = "" if not same_source else " (same person as template)"
                        print(
                            f" {tmpl.id[:14]:<15}{uname:<14}{s:>4}{base:>7.3f}{d_user:>8.3f}{d_tmpl:>8.3f}{skin_u:>7.1f}{skin_t:>8.1f}"
                            f"{seam:>7.1f}{seam_t:>6.1f}{max(out.shape[:2]):>6}{ms:>6.0f}{flag}"
                        )
                        if s == DEFAULT_STRENGTH and not same_source:
                            at_default.append((d_user, d_tmpl))
                        if out_dir is not None:
                            save(out_dir, f"portrait_{tmpl.id}_{face_i}_{uname}_{s}", uimg, tmpl.image, out)
        if at_default:
            du = np.array([a for a, _ in at_default])
            dt = np.array([b for _, b in at_default])
            print(
                f" strength {DEFAULT_STRENGTH}, {len(du)} outputs (user not the template's person): d_user median {np.nanmedian(du):.3f} "
                f"max {np.nanmax(du):.3f}; < 0.5: {int((du < 0.5).sum())}/{len(du)}; closer to user than template: {int((du < dt).sum())}/{len(du)}"
            )

    if hairstyles:
        print("hairstyles: sharpness = max slope / contrast across the hairline, per IOD (real hairline = the user's photo, same run)")
        print(
            " ears = the least-kept ear's share of its visible skin unchanged or under the new hair (> 50 %); erased = the most-erased"
            " ear's share changed with no new hair over it; ear px = skin pixels shown per ear"
        )
        print(f" {'user':<14}{'style':<16}{'real':>7}{'new':>7}{'ratio':>7}{'ears':>7}{'erased':>7}{'ear px':>10}{'ms':>6}")
        ratios, ears, erased = [], [], []
        for uname, (uimg, _) in users.items():
            mesh = user_mesh[uname]
            person = seg.mask(uimg)
            real = hairline_sharpness(uimg, mesh)
            shown = ear_skin(uimg, mesh, person)
            ear_px = "/".join(str(int(e.sum())) for e in shown)
            erased_score = ear_preservation(uimg, erase_ears(uimg, shown, person), mesh, person)
            # Self-check: the measure must catch a hairstyle that erases the ears.
            if not np.isnan(erased_score):
                assert erased_score < 0.2, f"{uname}: ears painted over with the backdrop still score {erased_score:.0%}"
            for style in hair.hairstyles():
                t0 = time.perf_counter()
                try:
                    res = hair.restyle_hair(uimg, mesh, person, style.id)
                except hair.HatPresent:
                    # Refused, as it should be. Grace Hopper's ears show below her cap (Collins'
                    # bob hides all but an earlobe): the hair change is still run with the hat
                    # check off, for the ear number only (the cap is erased in that picture).
                    res = without_hat_check(uimg, mesh, person, style.id)
                    kept = ear_preservation(uimg, res.image, mesh, person, res.coverage)
                    gone = ear_erasure(uimg, res.image, mesh, person, res.coverage)
                    ears.append(kept)
                    erased.append(gone)
                    print(f" {uname:<14}{style.id:<16} refused: HAT_PRESENT{pct(kept):>7}{pct(gone):>7}{ear_px:>10}  (ears: hat check off)")
                    if out_dir is not None:
                        save(out_dir, f"hair_{uname}_{style.id}_hat_check_off", uimg, res.image)
                    continue
                out = res.image
                ms = (time.perf_counter() - t0) * 1000
                new = hairline_sharpness(out, mesh)
                ratio = new.sharpness / real.sharpness if real.sharpness > 0 else float("nan")
                kept = ear_preservation(uimg, out, mesh, person, res.coverage)
                gone = ear_erasure(uimg, out, mesh, person, res.coverage)
                ratios.append(ratio)
                ears.append(kept)
                erased.append(gone)
                print(
                    f" {uname:<14}{style.id:<16}{real.sharpness:>7.2f}{new.sharpness:>7.2f}{ratio:>7.2f}{pct(kept):>7}{pct(gone):>7}{ear_px:>10}{ms:>6.0f}"
                )
                if out_dir is not None:
                    save(out_dir, f"hair_{uname}_{style.id}", uimg, out)
            if not np.isnan(erased_score):
                print(f" {uname:<14}{'(ears erased)':<16}{'':>21}{pct(erased_score):>7}{'':>7}{ear_px:>10}  self-check: must be low")
        r, e = np.array(ratios), np.array(ears)
        print(
            f" hairline sharpness ratio median {np.nanmedian(r):.2f} max {np.nanmax(r):.2f} (target <= 2); "
            f"ears kept median {np.nanmedian(e):.0%} min {np.nanmin(e):.0%} (target >= 90%); "
            f"erased (changed, no new hair over it) max {np.nanmax(np.array(erased)):.0%}"
        )
    lm.close()
    seg.close()


if __name__ == "__main__":
    main()
