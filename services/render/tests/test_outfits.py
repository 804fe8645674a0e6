"""Outfits that fit: the pose model's checksum, garment materials and their anchors, the fitted
garment covering the person's own collar without being wider than the body, and the refusal of
photos that show too little torso. The collar and width are re-measured here with the test's own
means (the selfie model on the output, the cheeks' colour, colour change between photos)."""

from __future__ import annotations

import importlib.util
import io
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import matplotlib.cbook
import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image
from skimage import color, data

from likeness_platform.errors import InvalidArgument
from likeness_render.adapters import pose as pose_adapter
from likeness_render.adapters.model_files import ModelFileCorrupt, model_path
from likeness_render.adapters.pose import PoseEstimator
from likeness_render.adapters.segmenter import SelfieSegmenter
from likeness_render.domain import idphoto, matte, outfit_demo, outfits
from likeness_render.domain.spec_loading import load_catalog
from likeness_render.usecases.id_photo import frame_of
from likeness_render.usecases.outfits import Outfits, TooLittleTorso

from .landmarks import TestLandmarker

ROOT = Path(__file__).resolve().parents[3]


def _grace() -> npt.NDArray[np.uint8]:
    with Image.open(str(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))) as img:
        return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()


@pytest.fixture(scope="module")
def models() -> Iterator[tuple[PoseEstimator, SelfieSegmenter, TestLandmarker]]:
    with PoseEstimator() as pose, SelfieSegmenter() as seg, TestLandmarker() as marks:
        yield pose, seg, marks


@pytest.fixture(scope="module")
def garments(models: tuple[PoseEstimator, SelfieSegmenter, TestLandmarker]) -> dict[str, outfits.Garment]:
    pose, seg, _ = models
    return {g.id: g for g in outfit_demo.demo_garments(seg.mask, pose.body)}


def test_the_demo_set_has_a_photographic_garment_cut_from_a_package_portrait(garments: dict[str, outfits.Garment]) -> None:
    assert set(garments) == {"suit", "blazer", "white-shirt", "navy-uniform"}
    uniform = garments["navy-uniform"]
    alpha = uniform.rgba[..., 3]
    # Cut from the photo: the cloth below the chin is opaque, the head above and the neck opening are not.
    assert alpha[: round(uniform.neck[1]) - 40].max() == 0
    assert alpha[round(uniform.neck[1]), round(uniform.neck[0])] == 0
    for x, y in (uniform.left_shoulder, uniform.right_shoulder):
        assert alpha[round(y), round(x)] == 255
    # Her neck showed down to the tie: the lower part of that V is closed with the shirt's white, so
    # another wearer's top does not show there as a dark bib.
    span = uniform.left_shoulder[0] - uniform.right_shoulder[0]
    below = uniform.rgba[round(uniform.neck[1] + 0.12 * span), round(uniform.neck[0])]
    assert below[3] == 255 and below[:3].min() > 180
    # Photographic, not flat: the jacket's own light and weave vary.
    jacket = uniform.rgba[round(uniform.left_shoulder[1]) :, :, :3][alpha[round(uniform.left_shoulder[1]) :] == 255]
    assert jacket.astype(float).std() > 8


def test_the_pose_model_is_refused_when_its_checksum_is_wrong(tmp_path: Path) -> None:
    for name in (pose_adapter.POSE_DETECTOR[0], pose_adapter.POSE_LANDMARKS[0]):
        shutil.copy(model_path(name), tmp_path / name)
    # The right files load and find shoulders.
    with PoseEstimator(tmp_path) as pose:
        assert pose.body(_grace()) is not None
    damaged = bytearray((tmp_path / pose_adapter.POSE_LANDMARKS[0]).read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    (tmp_path / pose_adapter.POSE_LANDMARKS[0]).write_bytes(bytes(damaged))
    with pytest.raises(ModelFileCorrupt, match=r"pose_landmark_full\.tflite .* is corrupt"):
        PoseEstimator(tmp_path)


def test_the_adapter_pins_the_digests_fetch_models_installs() -> None:
    spec = importlib.util.spec_from_file_location("fetch_models", ROOT / "scripts" / "fetch_models.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["fetch_models"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    pinned = {m.name: m.sha256 for m in module.MODELS}
    for name, digest in (pose_adapter.POSE_DETECTOR, pose_adapter.POSE_LANDMARKS):
        assert pinned[name] == digest


def _clothes(
    image: npt.NDArray[np.uint8], person: npt.NDArray[np.bool_], mesh: npt.NDArray[np.float64], face_width: float
) -> npt.NDArray[np.bool_]:
    """The test's own finding of the person's clothes: person pixels under the chin whose colour is far from
    the cheeks' (a*b* distance > 18, or much darker/lighter), connected to the bottom of the photo."""
    from likeness_imaging.face_mesh import FACE_OVAL

    h, w = image.shape[:2]
    lab = color.rgb2lab(image)
    oval = np.zeros((h, w), np.uint8)
    cv2.fillPoly(oval, [np.round(mesh[list(FACE_OVAL)]).astype(np.int32)], 1)
    ref = np.median(lab[cv2.erode(oval, np.ones((15, 15), np.uint8)) > 0], axis=0)
    far = (np.hypot(lab[..., 1] - ref[1], lab[..., 2] - ref[2]) > 18) | (lab[..., 0] < ref[0] - 50) | (lab[..., 0] > ref[0] + 30)
    ys, xs = np.arange(h)[:, None], np.arange(w)[None, :]
    beside = (np.abs(xs - mesh[152, 0]) > 0.6 * face_width) & (ys > mesh[13, 1])
    found = (person & ((ys > mesh[152, 1] + 4) | beside) & (oval == 0) & far).astype(np.uint8)
    _, labels = cv2.connectedComponents(found, connectivity=8)
    return np.isin(labels, list(set(np.unique(labels[-1]).tolist()) - {0}))


@pytest.mark.parametrize(
    ("source", "outfit_id"), [("grace", "blazer"), ("astronaut", "suit"), ("astronaut", "white-shirt"), ("astronaut", "navy-uniform")]
)
def test_the_outfit_covers_the_collar_and_is_not_wider_than_the_body(
    models: tuple[PoseEstimator, SelfieSegmenter, TestLandmarker], garments: dict[str, outfits.Garment], source: str, outfit_id: str
) -> None:
    pose, seg, marks = models
    img = _grace() if source == "grace" else np.asarray(data.astronaut())
    spec = load_catalog().get("schengen-visa")
    frame = frame_of(spec, 300.0)
    face = marks.detect(img)[0]
    body = pose.body(img)
    assert body is not None
    plain = idphoto.compose(img, face, seg.mask, frame, spec.background, idphoto.Options())
    garment = garments[outfit_id]
    if outfit_id == "navy-uniform":
        # The photographic uniform's deep neck opening is filled with its dark jacket cloth over the
        # astronaut's black top: covered, but the same colour, which a colour-change measure cannot see.
        # Its shape is measured in flat magenta instead.
        rgba = np.array(garment.rgba)
        rgba[..., :3] = (255, 0, 255)
        garment = outfits.Garment(garment.id, garment.name, rgba, garment.neck, garment.left_shoulder, garment.right_shoulder)
    made = idphoto.compose(
        img, face, seg.mask, frame, spec.background, idphoto.Options(outfit_id=outfit_id), wear=outfits.Wear(garment, body)
    )
    out_face = marks.detect(plain.image)[0]
    assert out_face.mesh is not None
    person = matte.single_person(seg.mask(plain.image), (float(out_face.eye_centre[0]), float(out_face.eye_centre[1])))
    clothes = _clothes(plain.image, person, out_face.mesh, out_face.width)
    assert clothes.sum() > 0.05 * clothes.size  # the photo shows the person's own clothes to cover
    changed = color.deltaE_ciede2000(color.rgb2lab(plain.image), color.rgb2lab(made.image)) >= 4
    # Two collars: the share of the person's own clothes still showing unchanged.
    assert (clothes & ~changed).sum() / clothes.sum() <= 0.02
    # Not wider than the body: what the garment changed below the chin lies within the silhouette (3 px slack).
    garment = changed & (np.arange(changed.shape[0])[:, None] > out_face.mesh[152, 1])
    wide = cv2.dilate(person.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))) > 0
    assert (garment & ~wide).sum() <= 0.005 * garment.sum()
    # The face is never covered.
    assert not (changed & outfits.face_region(out_face, changed.shape)).sum() > 0.002 * changed.size


async def test_a_head_only_crop_is_refused_with_a_clear_code(
    models: tuple[PoseEstimator, SelfieSegmenter, TestLandmarker], garments: dict[str, outfits.Garment]
) -> None:
    pose, _, marks = models
    img = _grace()
    cases = Outfits(outfits.InMemoryGarmentStore(list(garments.values())), pose.body)
    whole = await cases.wear("suit", img, img.shape[1::-1], marks.detect(img)[0])
    assert whole.body.visibility > 0.5
    head = np.ascontiguousarray(img[:330])  # down to just under the chin
    with pytest.raises(TooLittleTorso) as info:
        await cases.wear("suit", head, head.shape[1::-1], marks.detect(head)[0])
    assert info.value.code == "OUTFIT_TOO_LITTLE_TORSO"
    assert "shoulder" in str(info.value)


def _png(rgba: npt.NDArray[np.uint8]) -> bytes:
    out = io.BytesIO()
    Image.fromarray(rgba).save(out, format="PNG")
    return out.getvalue()


async def test_a_garment_material_is_registered_with_its_anchors_and_bad_anchors_are_refused(
    garments: dict[str, outfits.Garment],
) -> None:
    suit = garments["suit"]
    rgba = np.array(suit.rgba)
    store = outfits.InMemoryGarmentStore()
    cases = Outfits(store, None)
    made = await cases.register("Office Suit", _png(rgba), suit.neck, suit.left_shoulder, suit.right_shoulder, "a test")
    assert made.id == "office-suit" and [g.id for g in cases.list_garments()] == ["office-suit"]
    assert (made.width, made.height) == (rgba.shape[1], rgba.shape[0]) and made.neck == suit.neck
    w = rgba.shape[1]
    bad = {
        "swapped shoulders": (suit.neck, suit.right_shoulder, suit.left_shoulder),
        "neck below the shoulders": ((suit.neck[0], suit.left_shoulder[1] + 20), suit.left_shoulder, suit.right_shoulder),
        "neck on the cloth": ((suit.neck[0], suit.neck[1] + 0.4 * outfit_demo.UNIT), suit.left_shoulder, suit.right_shoulder),
        "outside the image": (suit.neck, (w + 5.0, suit.left_shoulder[1]), suit.right_shoulder),
        "shoulders on nothing": (suit.neck, (suit.left_shoulder[0], 2.0), (suit.right_shoulder[0], 2.0)),
    }
    for why, (neck, left, right) in bad.items():
        with pytest.raises(InvalidArgument) as info:
            await cases.register("Bad", _png(rgba), neck, left, right)
        assert info.value.code == "INVALID_OUTFIT", why
    for why, payload in {"no transparency": _png(np.ascontiguousarray(rgba[..., :3])), "not an image": b"not a png"}.items():
        with pytest.raises(InvalidArgument) as info:
            await cases.register("Bad", payload, suit.neck, suit.left_shoulder, suit.right_shoulder)
        assert info.value.code in {"INVALID_OUTFIT", "CORRUPT_IMAGE"}, why
    assert [g.id for g in cases.list_garments()] == ["office-suit"]
