"""Template materials for portraits: an RGBA image (the person's clean matte as alpha) with
one or more faces whose dense landmarks (the anchor meshes) are computed once, when the
template is registered (by the faces service: the caller passes the faces it found), and a
catalog to keep them in. Materials are kept at least MIN_LONG_SIDE px on the long side: a
smaller picture is upscaled once at registration, so every portrait comes out at that size.

The demo catalog is made in code from public-domain photographs that ship inside packages
(``skimage.data.astronaut()``: NASA, Eileen Collins; matplotlib's ``grace_hopper.jpg``:
U.S. Navy, Grace Hopper): each photograph as it is, and compositions of their clean
cut-outs (render's matting) on a studio sweep. No filter pretends to be a style.
"""

from __future__ import annotations

import dataclasses
import io
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image

from likeness_render.domain.face import FaceGeometry

RgbImage = npt.NDArray[np.uint8]
FloatMask = npt.NDArray[np.float32]
# A person matte for an image: (H, W) float in 0..1 (1 = person), the size of the image.
PersonSegmenter = Callable[[RgbImage], FloatMask]

MIN_SIDE = 64
# Every material is at least this long on its long side (portraits come out at the material's size).
MIN_LONG_SIDE = 1024


class TemplateError(ValueError):
    """A template cannot be registered; the message says why."""


class TemplateNotFound(LookupError):
    """No template with that id."""


@dataclass(frozen=True)
class Template:
    """A template material. ``meshes``: one (478, 2) array per face, in image pixels, ordered
    left to right (face i of a fusion request is ``meshes[i]``). Arrays are read-only."""

    id: str
    name: str
    style: str
    image: RgbImage
    meshes: tuple[npt.NDArray[np.float64], ...]
    width: int
    height: int
    description: str = field(default="")
    # The person's matte, (H, W) float 0..1, read-only; None for a material without one.
    alpha: FloatMask | None = field(default=None)

    @property
    def face_count(self) -> int:
        return len(self.meshes)


class TemplateStore(Protocol):
    """Where registered templates are kept (in memory here; a persistent store can follow the
    same protocol)."""

    def put(self, template: Template) -> None: ...

    def get(self, template_id: str) -> Template: ...

    def list_templates(self) -> list[Template]: ...

    def delete(self, template_id: str) -> bool: ...


class InMemoryTemplateStore:
    """Thread-safe dict-backed store; ``list_templates`` keeps registration order."""

    def __init__(self, templates: list[Template] | None = None) -> None:
        self._items: dict[str, Template] = {}
        self._lock = threading.Lock()
        for t in templates or []:
            self.put(t)

    def put(self, template: Template) -> None:
        with self._lock:
            self._items[template.id] = template

    def get(self, template_id: str) -> Template:
        with self._lock:
            found = self._items.get(template_id)
        if found is None:
            raise TemplateNotFound(f"no template with id {template_id!r}")
        return found

    def list_templates(self) -> list[Template]:
        with self._lock:
            return list(self._items.values())

    def delete(self, template_id: str) -> bool:
        with self._lock:
            return self._items.pop(template_id, None) is not None


def check_template_image(name: str, image: RgbImage) -> None:
    """Refuses what cannot become a template before anyone looks for its faces."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise TemplateError(f"template image must be (H, W, 3) uint8 RGB, got {image.dtype} {image.shape}")
    h, w = image.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise TemplateError(f"template image is {w}x{h}; both sides must be at least {MIN_SIDE} px")
    if not name.strip():
        raise TemplateError("template name is empty")


def register_template(
    name: str,
    style: str,
    image: RgbImage,
    faces: Sequence[FaceGeometry],
    template_id: str | None = None,
    description: str = "",
    alpha: FloatMask | None = None,
) -> Template:
    """A template from its image and the faces found in it (with their 478-point meshes;
    faces without a mesh are left out), ordered left to right."""
    check_template_image(name, image)
    h, w = image.shape[:2]
    meshed = sorted((f for f in faces if f.mesh is not None), key=lambda f: (f.box[0] + f.box[2]) / 2.0)
    if not meshed:
        raise TemplateError(f"no face found in template {name!r}")
    meshes = []
    for f in meshed:
        assert f.mesh is not None
        mesh = np.array(f.mesh[:, :2], dtype=np.float64)
        mesh.setflags(write=False)
        meshes.append(mesh)
    frozen = np.array(image, dtype=np.uint8)
    frozen.setflags(write=False)
    matte = None
    if alpha is not None:
        if alpha.shape != (h, w):
            raise TemplateError(f"template matte is {alpha.shape}, the image {(h, w)}")
        matte = np.clip(np.asarray(alpha, dtype=np.float32), 0.0, 1.0)
        matte.setflags(write=False)
    return Template(
        id=template_id or slug(name),
        name=name,
        style=style,
        image=frozen,
        meshes=tuple(meshes),
        width=w,
        height=h,
        description=description,
        alpha=matte,
    )


def png_alpha(data: bytes) -> npt.NDArray[np.float32] | None:
    """The alpha channel of a PNG (or WebP) with one, as float 0..1; None without one."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.mode not in ("RGBA", "LA", "PA") and "transparency" not in img.info:
                return None
            return np.asarray(img.convert("RGBA"), dtype=np.float32)[..., 3] / 255.0
    except (OSError, ValueError):
        return None


def clean_matte(alpha: FloatMask, min_share: float = 0.002) -> FloatMask:
    """``alpha`` without specks: pieces of the matte (alpha > 0.5 and their soft edges)
    smaller than ``min_share`` of the largest are dropped (a fleck of the old backdrop that
    matting kept would show on every portrait made from the material)."""
    hard = (alpha > 0.5).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(hard, connectivity=8)
    if n <= 2:
        return alpha
    areas = stats[1:, cv2.CC_STAT_AREA]
    small = [i + 1 for i, area in enumerate(areas) if area < min_share * areas.max()]
    if not small:
        return alpha
    specks = np.isin(labels, small)
    # The specks' soft rims go with them, but not the rim of a kept piece next to one.
    rims = cv2.dilate(specks.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    kept = (hard > 0) & ~specks
    out = alpha.copy()
    out[rims & ~kept] = 0.0
    return out


def at_material_size(image: RgbImage, alpha: FloatMask | None = None) -> tuple[RgbImage, FloatMask | None]:
    """``image`` (and its matte) upscaled so the long side is at least MIN_LONG_SIDE px
    (Lanczos); unchanged when it already is."""
    h, w = image.shape[:2]
    k = MIN_LONG_SIDE / max(h, w)
    if k <= 1.0:
        return image, alpha
    size = (round(w * k), round(h * k))
    big = np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_LANCZOS4), dtype=np.uint8)
    if alpha is None:
        return big, None
    return big, np.clip(cv2.resize(alpha.astype(np.float32), size, interpolation=cv2.INTER_LINEAR), 0.0, 1.0)


def slug(name: str) -> str:
    s = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    if not s:
        raise TemplateError(f"template name {name!r} gives an empty id")
    return s


# --- looks generated in code -------------------------------------------------------------


def studio_backdrop(
    image: RgbImage | npt.NDArray[np.float32], person: FloatMask, top: tuple[int, int, int], bottom: tuple[int, int, int]
) -> RgbImage:
    """The person on a studio paper backdrop: a vertical gradient with a soft light pool
    behind the head and darker corners, as a single flash on a sweep gives."""
    h, w = image.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    t = (yy / max(1, h - 1))[..., None]
    back = np.array(top, np.float32) * (1.0 - t) + np.array(bottom, np.float32) * t
    cx, cy = w * 0.5, h * 0.35
    r = np.hypot((xx - cx) / (0.6 * w), (yy - cy) / (0.6 * h))
    pool = np.exp(-(r**2) * 1.2)[..., None]
    back = back * (0.78 + 0.32 * pool)
    # Film-like dither so an 8-bit gradient shows no bands.
    back += np.random.default_rng(7).normal(0.0, 1.2, back.shape).astype(np.float32)
    return _over(image, back, person)


Eyes = tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]
# The diptych's panes: at the material size (two panes and the mount make 1048 px across).
PANE = (500, 640)
PANE_IOD = 100.0


def _pane_affine(eyes: Eyes, pane: tuple[int, int], eye_iod: float, eye_y: float) -> npt.NDArray[np.float64]:
    eye_r, eye_l = eyes
    pw, ph = pane
    s = eye_iod / max(float(np.linalg.norm(eye_l - eye_r)), 1e-6)
    centre = (eye_r + eye_l) / 2.0
    return np.array([[s, 0.0, pw / 2.0 - s * centre[0]], [0.0, s, ph * eye_y - s * centre[1]]])


def diptych(
    left: RgbImage,
    left_eyes: Eyes,
    right: RgbImage,
    right_eyes: Eyes,
    pane: tuple[int, int] = PANE,
    eye_iod: float = PANE_IOD,
    eye_y: float = 0.36,
    margin: int = 16,
    paper: tuple[int, int, int] = (236, 230, 220),
) -> RgbImage:
    """Two portraits side by side, each scaled and shifted so both faces are the same size
    with the eyes on one line, framed on a paper mount."""
    pw, ph = pane
    canvas = np.empty((ph + 2 * margin, 2 * pw + 3 * margin, 3), np.uint8)
    canvas[:] = paper
    for k, (img, eyes) in enumerate(((left, left_eyes), (right, right_eyes))):
        affine = _pane_affine(eyes, pane, eye_iod, eye_y)
        flags = cv2.INTER_AREA if affine[0, 0] < 1 else cv2.INTER_CUBIC
        panel = cv2.warpAffine(img, affine, (pw, ph), flags=flags, borderMode=cv2.BORDER_REFLECT)
        x0 = margin + k * (pw + margin)
        canvas[margin : margin + ph, x0 : x0 + pw] = panel
    return canvas


def diptych_matte(
    left: FloatMask, left_eyes: Eyes, right: FloatMask, right_eyes: Eyes, pane: tuple[int, int] = PANE, eye_iod: float = PANE_IOD,
    eye_y: float = 0.36, margin: int = 16,
) -> FloatMask:  # fmt: skip
    """The person mattes laid out as ``diptych`` lays out the pictures (the mount is not a person)."""
    pw, ph = pane
    canvas = np.zeros((ph + 2 * margin, 2 * pw + 3 * margin), np.float32)
    for k, (alpha, eyes) in enumerate(((left, left_eyes), (right, right_eyes))):
        affine = _pane_affine(eyes, pane, eye_iod, eye_y)
        panel = cv2.warpAffine(alpha.astype(np.float32), affine, (pw, ph), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        x0 = margin + k * (pw + margin)
        canvas[margin : margin + ph, x0 : x0 + pw] = np.clip(panel, 0.0, 1.0)
    return canvas


def _over(fg: RgbImage | npt.NDArray[np.float32], back: npt.NDArray[np.float32], person: FloatMask) -> RgbImage:
    a = np.clip(person.astype(np.float32), 0.0, 1.0)[..., None]
    out = fg.astype(np.float32) * a + back * (1.0 - a)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


# --- the demo catalog ----------------------------------------------------------------------


@dataclass(frozen=True)
class DemoSource:
    """A public-domain portrait shipped in a package, with its provenance."""

    key: str
    image: RgbImage
    credit: str


def demo_sources() -> dict[str, DemoSource]:
    """The package-shipped portraits the demo templates are made from."""
    # Imported here: only building the demo catalog needs them, not the service's hot path.
    import matplotlib.cbook
    from PIL import Image
    from skimage import data

    with Image.open(str(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))) as img:
        hopper = np.asarray(img.convert("RGB"), dtype=np.uint8).copy()
    return {
        "astronaut": DemoSource("astronaut", data.astronaut(), "NASA, Eileen Collins (public domain), via scikit-image"),
        "hopper": DemoSource("hopper", hopper, "U.S. Navy, Grace Hopper (public domain), via matplotlib"),
    }


@dataclass(frozen=True)
class DemoLook:
    """A demo template before its faces are found: the image and its person's matte."""

    name: str
    style: str
    image: RgbImage
    description: str
    alpha: FloatMask


@dataclass(frozen=True)
class DemoPlan:
    """The package-shipped portraits at material size with their coarse person masks; the
    looks are made from them once their faces are known (``demo_looks``)."""

    astronaut: RgbImage
    hopper: RgbImage
    astronaut_person: FloatMask
    hopper_person: FloatMask
    credits: dict[str, str]


def plan_demo(segmenter: PersonSegmenter) -> DemoPlan:
    """The demo sources, upscaled to material size, and their coarse person masks."""
    src = demo_sources()
    astro, _ = at_material_size(src["astronaut"].image)
    hopper, _ = at_material_size(src["hopper"].image)
    return DemoPlan(
        astronaut=astro,
        hopper=hopper,
        astronaut_person=segmenter(astro),
        hopper_person=segmenter(hopper),
        credits={k: v.credit for k, v in src.items()},
    )


def _face_centre(face: FaceGeometry) -> tuple[float, float]:
    return ((face.box[0] + face.box[2]) / 2.0, (face.box[1] + face.box[3]) / 2.0)


def demo_looks(plan: DemoPlan, astronaut_face: FaceGeometry, hopper_face: FaceGeometry) -> tuple[DemoLook, ...]:
    """The demo catalog: the two photographs as they are (with their clean mattes), the
    astronaut's cut-out on a cool studio sweep, and both cut-outs side by side on a warm one."""
    from likeness_render.domain import matte  # the ID-photo matting: only the demo build needs it here

    astro_cut = matte.cut_out(plan.astronaut, plan.astronaut_person, _face_centre(astronaut_face))
    hopper_cut = matte.cut_out(plan.hopper, plan.hopper_person, _face_centre(hopper_face))
    astro_cut = dataclasses.replace(astro_cut, alpha=clean_matte(astro_cut.alpha))
    hopper_cut = dataclasses.replace(hopper_cut, alpha=clean_matte(hopper_cut.alpha))
    nasa, navy = plan.credits["astronaut"], plan.credits["hopper"]

    def studio(cut: matte.CutOut, top: tuple[int, int, int], bottom: tuple[int, int, int]) -> RgbImage:
        return studio_backdrop(cut.foreground, cut.alpha, top, bottom)

    warm_top, warm_bottom = (210, 196, 172), (150, 128, 100)
    left, right = studio(astro_cut, warm_top, warm_bottom), studio(hopper_cut, warm_top, warm_bottom)
    eyes = (astronaut_face.right_eye, astronaut_face.left_eye), (hopper_face.right_eye, hopper_face.left_eye)
    duo = diptych(left, eyes[0], right, eyes[1])
    duo_alpha = diptych_matte(astro_cut.alpha, eyes[0], hopper_cut.alpha, eyes[1])
    return (
        DemoLook("NASA Portrait", "documentary", plan.astronaut, f"Official NASA portrait. Source: {nasa}.", astro_cut.alpha),
        DemoLook("Navy Portrait", "official", plan.hopper, f"Official U.S. Navy portrait. Source: {navy}.", hopper_cut.alpha),
        DemoLook(
            "Studio Blue", "studio", studio(astro_cut, (92, 110, 132), (28, 34, 44)),
            f"Studio sweep, cool gradient backdrop. Source: {nasa}.", astro_cut.alpha,
        ),
        DemoLook("Side by Side", "duo", duo, f"Two-person diptych on a paper mount. Source: {nasa}; {navy}.", duo_alpha),
    )  # fmt: skip
