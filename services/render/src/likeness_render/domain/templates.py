"""Template materials for portraits: an image with one or more faces whose dense landmarks
are computed once, when the template is registered (by the faces service: the caller
passes the faces it found), and a catalog to keep them in.

The demo catalog is made in code from public-domain images that ship inside packages
(``skimage.data.astronaut()``, matplotlib's ``grace_hopper.jpg``): the backdrops and looks
(studio gradient, painterly sepia, vintage film, high-key mono, a two-person diptych) are
generated here, so no third-party artwork is redistributed.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import cv2
import numpy as np
import numpy.typing as npt

from likeness_render.domain.face import FaceGeometry

RgbImage = npt.NDArray[np.uint8]
FloatMask = npt.NDArray[np.float32]
# A person matte for an image: (H, W) float in 0..1 (1 = person), the size of the image.
PersonSegmenter = Callable[[RgbImage], FloatMask]

MIN_SIDE = 64


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
    return Template(
        id=template_id or slug(name),
        name=name,
        style=style,
        image=frozen,
        meshes=tuple(meshes),
        width=w,
        height=h,
        description=description,
    )


def slug(name: str) -> str:
    s = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    if not s:
        raise TemplateError(f"template name {name!r} gives an empty id")
    return s


# --- looks generated in code -------------------------------------------------------------


def studio_backdrop(image: RgbImage, person: FloatMask, top: tuple[int, int, int], bottom: tuple[int, int, int]) -> RgbImage:
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


def painterly_sepia(image: RgbImage) -> RgbImage:
    """Edge-preserving "oil" simplification, a sepia gradient map and a canvas weave."""
    painted = cv2.stylization(image, sigma_s=25, sigma_r=0.25)
    soft = cv2.edgePreservingFilter(image, flags=cv2.RECURS_FILTER, sigma_s=30, sigma_r=0.3)
    # Half photograph, half painting: a face must stay a face for face analysis.
    mixed = cv2.addWeighted(painted, 0.5, soft, 0.5, 0)
    lum = cv2.cvtColor(mixed, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    dark, mid, light = np.array([48, 28, 14], np.float32), np.array([158, 112, 68], np.float32), np.array([246, 226, 190], np.float32)
    l3 = lum[..., None]
    toned = np.where(l3 < 0.5, dark + (mid - dark) * (l3 / 0.5), mid + (light - mid) * ((l3 - 0.5) / 0.5))
    h, w = image.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    weave = np.sin(xx * 1.9) * np.sin(yy * 1.9) * 0.5 + np.random.default_rng(11).normal(0.0, 0.5, (h, w))
    weave = cv2.GaussianBlur(weave.astype(np.float32), (0, 0), 0.7)
    toned *= (1.0 + 0.035 * weave)[..., None]
    return np.clip(toned + 0.5, 0, 255).astype(np.uint8)


def vintage_film(image: RgbImage) -> RgbImage:
    """Faded 1970s print: lifted blacks, soft highlights, warm-highlight / teal-shadow split
    toning, less saturation, grain, vignette and a light leak at one edge."""
    h, w = image.shape[:2]
    f = image.astype(np.float32) / 255.0
    grey = f.mean(axis=2, keepdims=True)
    f = grey + (f - grey) * 0.7
    f = 0.08 + 0.84 * f - 0.12 * (f - 0.5) ** 3
    lum = f.mean(axis=2, keepdims=True)
    warm, teal = np.array([1.0, 0.55, 0.2], np.float32), np.array([0.1, 0.45, 0.55], np.float32)
    f = f + 0.06 * (lum * warm + (1.0 - lum) * teal) - 0.03
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = np.hypot((xx - w / 2) / (w / 2), (yy - h / 2) / (h / 2))
    f *= (1.0 - 0.28 * np.clip(r - 0.45, 0, None) ** 1.5)[..., None]
    leak = np.exp(-(((xx - w * 1.02) / (0.25 * w)) ** 2 + ((yy - h * 0.15) / (0.5 * h)) ** 2))
    f += leak[..., None] * np.array([0.22, 0.08, 0.0], np.float32)
    grain = np.random.default_rng(3).normal(0.0, 1.0, (h, w)).astype(np.float32)
    f += cv2.GaussianBlur(grain, (0, 0), 0.8)[..., None] * 0.035
    return np.clip(f * 255.0 + 0.5, 0, 255).astype(np.uint8)


def high_key_mono(image: RgbImage, person: FloatMask) -> RgbImage:
    """Black-and-white fashion look: red-filter mono, brightened skin, white seamless."""
    f = image.astype(np.float32) / 255.0
    mono = 0.6 * f[..., 0] + 0.3 * f[..., 1] + 0.1 * f[..., 2]  # a red filter lightens skin
    mono = np.clip((mono - 0.05) / 0.9, 0, 1) ** 0.85
    person_rgb = np.repeat(mono[..., None] * 255.0, 3, axis=2)
    h, w = image.shape[:2]
    yy = np.mgrid[0:h, 0:w][0].astype(np.float32) / max(1, h - 1)
    back = np.repeat((246.0 - 18.0 * yy)[..., None], 3, axis=2)
    return _over(np.clip(person_rgb, 0, 255).astype(np.uint8), back, person)


def diptych(
    left: RgbImage,
    left_eyes: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]],
    right: RgbImage,
    right_eyes: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]],
    pane: tuple[int, int] = (400, 500),
    eye_iod: float = 70.0,
    eye_y: float = 0.36,
    margin: int = 16,
    paper: tuple[int, int, int] = (236, 230, 220),
) -> RgbImage:
    """Two portraits side by side, each scaled and shifted so both faces are the same size
    with the eyes on one line, framed on a paper mount."""
    pw, ph = pane
    canvas = np.empty((ph + 2 * margin, 2 * pw + 3 * margin, 3), np.uint8)
    canvas[:] = paper
    for k, (img, (eye_r, eye_l)) in enumerate(((left, left_eyes), (right, right_eyes))):
        iod = float(np.linalg.norm(eye_l - eye_r))
        s = eye_iod / max(iod, 1e-6)
        centre = (eye_r + eye_l) / 2.0
        affine = np.array([[s, 0.0, pw / 2.0 - s * centre[0]], [0.0, s, ph * eye_y - s * centre[1]]])
        panel = cv2.warpAffine(img, affine, (pw, ph), flags=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
        x0 = margin + k * (pw + margin)
        canvas[margin : margin + ph, x0 : x0 + pw] = panel
    return canvas


def _over(fg: RgbImage, back: npt.NDArray[np.float32], person: FloatMask) -> RgbImage:
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
    """A demo template before its faces are found."""

    name: str
    style: str
    image: RgbImage
    description: str


@dataclass(frozen=True)
class DemoPlan:
    """The single-portrait demo looks, and what the two-person one is made from once the
    faces of the two sources are known (see ``diptych_look``)."""

    looks: tuple[DemoLook, ...]
    astronaut: RgbImage
    hopper: RgbImage
    duo_left: RgbImage  # the sources on the diptych's backdrop
    duo_right: RgbImage
    duo_description: str


def plan_demo(segmenter: PersonSegmenter) -> DemoPlan:
    """Four demo looks generated in code from the package-shipped portraits (CPU work, no
    face analysis)."""
    src = demo_sources()
    astro, hopper = src["astronaut"].image, src["hopper"].image
    astro_mask, hopper_mask = segmenter(astro), segmenter(hopper)

    def look(name: str, style: str, image: RgbImage, what: str, credit: str) -> DemoLook:
        return DemoLook(name, style, image, f"{what}. Source: {credit}.")

    looks = (
        look("Studio Blue", "studio", studio_backdrop(astro, astro_mask, top=(92, 110, 132), bottom=(28, 34, 44)),
             "Studio sweep, cool gradient backdrop", src["astronaut"].credit),
        look("Sepia Oil", "painterly", painterly_sepia(hopper), "Painterly sepia with canvas texture", src["hopper"].credit),
        look("Seventies Film", "vintage", vintage_film(astro), "Faded film print: split toning, grain, light leak", src["astronaut"].credit),
        look("High Key Mono", "mono", high_key_mono(hopper, hopper_mask), "Black-and-white on white seamless", src["hopper"].credit),
    )  # fmt: skip
    return DemoPlan(
        looks=looks,
        astronaut=astro,
        hopper=hopper,
        duo_left=studio_backdrop(astro, astro_mask, top=(210, 196, 172), bottom=(150, 128, 100)),
        duo_right=studio_backdrop(hopper, hopper_mask, top=(210, 196, 172), bottom=(150, 128, 100)),
        duo_description=f"Two-person diptych on a paper mount. Source: {src['astronaut'].credit}; {src['hopper'].credit}.",
    )


def diptych_look(plan: DemoPlan, astronaut_face: FaceGeometry, hopper_face: FaceGeometry) -> DemoLook:
    """The two-person demo look: both sources side by side, faces the same size."""
    duo = diptych(
        plan.duo_left,
        (astronaut_face.right_eye, astronaut_face.left_eye),
        plan.duo_right,
        (hopper_face.right_eye, hopper_face.left_eye),
    )
    return DemoLook("Side by Side", "duo", duo, plan.duo_description)
