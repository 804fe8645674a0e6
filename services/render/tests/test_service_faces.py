"""Render gets everything it knows of a face from the faces service: the compliance report
judges faces' pose, eye/mouth state and quality (never a re-measurement of the pixels), and
template meshes come from faces too, also when faces starts after render. An ID photo decodes
its source once and faces sees a reduced copy of it, with its answer mapped back to the source;
the pixel work of ID photos is bounded (the rest wait their turn)."""

from __future__ import annotations

import asyncio
import io
import threading
import time
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from likeness.common.v1 import common_pb2
from likeness.faces.v1 import faces_pb2
from likeness_platform.errors import Unavailable
from likeness_render.domain import templates
from likeness_render.domain.spec_loading import load_catalog
from likeness_render.usecases import PhotoRequest, RenderUseCases, Shared, build_use_cases, id_photo, shared
from likeness_render.usecases import templates as template_cases
from likeness_render.usecases.shared import ANALYSIS_SIDE, analysis_copy

W, H = 600, 800
BOX = (200.0, 250.0, 400.0, 500.0)


def _mesh(box: tuple[float, float, float, float]) -> list[faces_pb2.Point3]:
    """478 points spread over the box: enough for geometry, not a real face."""
    x1, y1, x2, y2 = box
    rng = np.random.default_rng(1)
    pts = np.column_stack([rng.uniform(x1, x2, 478), rng.uniform(y1, y2, 478)])
    pts[152] = ((x1 + x2) / 2, y2)  # chin
    pts[468], pts[473] = (x1 + 0.3 * (x2 - x1), y1 + 0.4 * (y2 - y1)), (x1 + 0.7 * (x2 - x1), y1 + 0.4 * (y2 - y1))
    return [faces_pb2.Point3(x=float(x), y=float(y), z=0.0) for x, y in pts]


def _face(box: tuple[float, float, float, float] = BOX, **fields: Any) -> faces_pb2.Face:
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    five = [(0.3, 0.4), (0.7, 0.4), (0.5, 0.6), (0.35, 0.8), (0.65, 0.8)]
    quality = faces_pb2.Quality(
        sharpness=0.9, exposure=0.5, shadow_clipped_fraction=0.0, highlight_clipped_fraction=0.0, lighting_ratio=1.0
    )
    quality.MergeFrom(fields.pop("quality", faces_pb2.Quality()))
    return faces_pb2.Face(
        box=faces_pb2.Box(x1=x1, y1=y1, x2=x2, y2=y2),
        score=0.99,
        landmarks5=[faces_pb2.Point(x=x1 + a * w, y=y1 + b * h) for a, b in five],
        mesh=_mesh(box),
        pose=fields.pop("pose", faces_pb2.Pose(yaw=0.0, pitch=0.0, roll=0.0)),
        quality=quality,
        **fields,
    )


class FakeFaces:
    """Answers Analyze with prepared faces; can be 'down' for the first calls."""

    def __init__(self, faces: list[faces_pb2.Face], down_for: int = 0) -> None:
        self.faces = faces
        self.down_for = down_for
        self.calls: list[tuple[int, int]] = []

    async def analyze(self, image: bytes, dense: bool = True, min_face_fraction: float = 0.0) -> faces_pb2.AnalyzeResponse:
        if self.down_for > 0:
            self.down_for -= 1
            raise Unavailable("the faces service is not available; try again")
        size = Image.open(io.BytesIO(image)).size
        self.calls.append(size)
        return faces_pb2.AnalyzeResponse(width=size[0], height=size[1], faces=self.faces)


class InlineImages:
    def __init__(self, rgb: npt.NDArray[np.uint8]) -> None:
        out = io.BytesIO()
        Image.fromarray(rgb).save(out, format="PNG")
        self.data = out.getvalue()

    async def read(self, ref: Any, subject_id: str, purpose: str) -> bytes:
        return self.data


def _person(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """A head-and-shoulders matte scaled to the image: crown at 25 % of the height."""
    h, w = image.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    head = ((xx - w / 2) / (0.2 * w)) ** 2 + ((yy - 0.47 * h) / (0.22 * h)) ** 2 <= 1
    return (head | (yy > 0.75 * h)).astype(np.float32)


def _service(faces: FakeFaces, image: npt.NDArray[np.uint8] | None = None) -> RenderUseCases:
    pixels = image if image is not None else np.full((H, W, 3), 200, np.uint8)
    ports = Shared(load_catalog(), InlineImages(pixels), faces, _person, results=None, memory_only=True)  # type: ignore[arg-type]
    return build_use_cases(ports, templates.InMemoryTemplateStore(), access=None)  # type: ignore[arg-type]


async def _check(faces: FakeFaces, image: npt.NDArray[np.uint8] | None = None) -> set[str]:
    report, _ = await _service(faces, image).checks.check_id_photo("s", common_pb2.ImageRef(data=b"x"), "us-passport")
    return {str(i.code) for i in report.issues}


async def test_compliance_judges_the_quality_faces_measured() -> None:
    # The pixels are evenly lit mid-grey; faces says the face is dark, blurred and lit from one side.
    dark = faces_pb2.Quality(sharpness=0.2, exposure=0.08, shadow_clipped_fraction=0.3, lighting_ratio=2.0)
    codes = await _check(FakeFaces([_face(quality=dark)]))
    assert {"UNDEREXPOSED", "BLURRY", "UNEVEN_LIGHTING"} <= codes
    # The same pixels pass those rules when faces says the face is fine.
    assert not {"UNDEREXPOSED", "BLURRY", "UNEVEN_LIGHTING", "OVEREXPOSED"} & await _check(FakeFaces([_face()]))
    # And a face faces calls blown out is judged so, whatever render would have measured.
    blown = faces_pb2.Quality(exposure=0.95, highlight_clipped_fraction=0.4)
    assert "OVEREXPOSED" in await _check(FakeFaces([_face(quality=blown)]), np.full((H, W, 3), 60, np.uint8))


async def test_eye_and_mouth_rules_follow_faces_presence() -> None:
    # Unset (faces did not compute them): no rule fires, 0 is not taken for "shut".
    assert not {"EYES_CLOSED", "MOUTH_OPEN"} & await _check(FakeFaces([_face()]))
    # Measured 0: the eyes are shut.
    shut = _face(left_eye_openness=0.0, right_eye_openness=0.0, mouth_openness=0.0)
    assert "EYES_CLOSED" in await _check(FakeFaces([shut])) and "MOUTH_OPEN" not in await _check(FakeFaces([shut]))
    # Pose angles faces could not determine are skipped; a measured one is judged.
    unknown = _face(pose=faces_pb2.Pose(roll=0.0))
    assert not {"HEAD_TURNED", "HEAD_PITCHED"} & await _check(FakeFaces([unknown]))
    assert "HEAD_TURNED" in await _check(FakeFaces([_face(pose=faces_pb2.Pose(yaw=25.0, pitch=0.0, roll=0.0))]))


async def test_template_registration_gets_its_meshes_from_faces() -> None:
    left, right = (40.0, 60.0, 160.0, 220.0), (260.0, 60.0, 380.0, 220.0)
    faces = FakeFaces([_face(right), _face(left)])  # faces answers largest first, not left to right
    svc = _service(faces).templates
    image = np.full((300, 420, 3), 128, np.uint8)
    template = await svc.register_template("Two Friends", "duo", image)
    assert faces.calls == [(1024, 731)]  # the whole template image, at material size, went to faces, once
    assert (template.width, template.height) == (1024, 731) and template.alpha is not None
    assert template.face_count == 2 and template.meshes[0].shape == (478, 2)
    assert template.meshes[0][:, 0].mean() < template.meshes[1][:, 0].mean()  # left to right
    assert svc.store.get("two-friends") is template
    with pytest.raises(templates.TemplateError, match="no face"):
        await _service(FakeFaces([])).templates.register_template("Empty", "still", image)
    with pytest.raises(templates.TemplateError, match="at least"):
        await svc.register_template("Tiny", "still", np.zeros((32, 32, 3), np.uint8))
    assert len(faces.calls) == 1  # refused before asking faces


async def test_demo_templates_wait_for_faces_to_come_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(template_cases, "DEMO_RETRY_FIRST_S", 0.01)
    faces = FakeFaces([_face((150.0, 100.0, 330.0, 330.0))], down_for=3)
    svc = _service(faces).templates
    svc.start_demo_templates()
    listed = await svc.list_templates()  # waits for the build, which retried while faces was down
    assert faces.down_for == 0 and {t.style for t in listed} == {"documentary", "official", "studio", "duo"}
    assert all(t.face_count >= 1 for t in listed)
    await svc.stop()


async def test_demo_templates_give_up_after_the_deadline_then_retry_on_demand(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(template_cases, "DEMO_RETRY_FIRST_S", 0.01)
    faces = FakeFaces([_face((150.0, 100.0, 330.0, 330.0))], down_for=1_000_000)
    svc = _service(faces).templates
    svc.start_demo_templates(deadline_s=0.05)
    with pytest.raises(Unavailable):
        await svc.list_templates()
    await asyncio.sleep(0.1)
    faces.down_for = 0  # faces is up now: the next request starts a new build and gets the templates
    assert len(await svc.list_templates()) == 4
    await svc.stop()


def test_the_analysis_copy_is_whole_blocks_of_the_source_when_that_is_large_enough() -> None:
    rng = np.random.default_rng(2)
    big = rng.integers(0, 256, (2017, 1513, 3), dtype=np.uint8)  # odd sides: the last row and column are left out
    copy, scale = analysis_copy(big)
    assert copy.shape == (1008, 756, 3) and scale == 0.5
    blocks = big[:2016, :1512].reshape(1008, 2, 756, 2, 3).astype(np.float64).mean(axis=(1, 3))
    assert np.abs(copy.astype(np.float64) - blocks).max() <= 0.5 + 1e-9  # each pixel is its 2x2 block's mean
    # 1100 px: halving would leave 550 (less than 2/3 of 1024), so it is resized to 1024 instead.
    copy, scale = analysis_copy(np.zeros((1100, 800, 3), np.uint8))
    assert copy.shape[0] == ANALYSIS_SIDE and scale == copy.shape[1] / 800
    small = np.zeros((800, 600, 3), np.uint8)
    copy, scale = analysis_copy(small)
    assert copy is small and scale == 1.0


async def test_an_id_photo_decodes_its_source_once_and_maps_faces_answer_to_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # A 1200x1600 source: faces sees its 600x800 analysis copy and answers in those pixels.
    source = np.full((1600, 1200, 3), 200, np.uint8)
    decodes: list[int] = []

    def counting_decode(data: bytes, min_side: int = 1500) -> npt.NDArray[np.uint8]:
        decodes.append(min_side)
        return shared.decode(data, min_side)

    monkeypatch.setattr(id_photo, "decode", counting_decode)
    faces = FakeFaces([_face()])
    service = _service(faces, source)
    made = await service.id_photos.create_id_photo(PhotoRequest("s", "us-passport"), common_pb2.ImageRef(data=b"x"))
    assert len(decodes) == 1 and faces.calls == [(600, 800)]
    # In source pixels the chin faces reported at y=500 is at y=1000 and the person's crown (the matte's, at
    # 25 % of the height) at 400: a 600 px head, framed to the spec's 1-1 3/8 in.
    assert 25.4 <= made.measurements["head_height_mm"] <= 35.0
    analysis = await service.shared.analyze(source)  # no copy given: analyze makes it, and maps back the same way
    assert analysis.faces[0].box == (400.0, 500.0, 800.0, 1000.0)


async def test_pixel_work_is_bounded_to_the_slots_and_the_rest_wait_their_turn() -> None:
    class CountingFaces(FakeFaces):
        inside = 0
        most = 0

        async def analyze(self, image: bytes, dense: bool = True, min_face_fraction: float = 0.0) -> faces_pb2.AnalyzeResponse:
            CountingFaces.inside += 1
            CountingFaces.most = max(CountingFaces.most, CountingFaces.inside)
            await asyncio.sleep(0.05)
            CountingFaces.inside -= 1
            return await super().analyze(image, dense, min_face_fraction)

    for slots in (1, 2):
        CountingFaces.most = 0
        pixels = np.full((H, W, 3), 200, np.uint8)
        shared_ports = Shared(
            load_catalog(), InlineImages(pixels), CountingFaces([_face()]), _person, None, True, max_concurrent_work=slots
        )  # type: ignore[arg-type]
        service = build_use_cases(shared_ports, templates.InMemoryTemplateStore(), access=None)  # type: ignore[arg-type]
        request = PhotoRequest("s", "us-passport")
        made = await asyncio.gather(*(service.id_photos.create_id_photo(request, common_pb2.ImageRef(data=b"x")) for _ in range(4)))
        assert len(made) == 4 and CountingFaces.most == slots


async def test_pixel_work_runs_on_the_bounded_threads_only() -> None:
    """Four ID photos in flight share `cpu_workers` threads: never more segmentations at once than
    threads, all on render's own pixel-work threads (not the event loop, not asyncio's default pool)."""
    lock = threading.Lock()
    state = {"inside": 0, "most": 0}
    names: set[str] = set()

    def counting_person(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        with lock:
            state["inside"] += 1
            state["most"] = max(state["most"], state["inside"])
            names.add(threading.current_thread().name)
        time.sleep(0.02)  # holds its thread, as a model call does
        with lock:
            state["inside"] -= 1
        return _person(image)

    for workers in (1, 2):
        state["most"] = 0
        names.clear()
        pixels = np.full((H, W, 3), 200, np.uint8)
        shared_ports = Shared(
            load_catalog(),
            InlineImages(pixels),
            FakeFaces([_face()]),
            counting_person,
            None,
            True,
            max_concurrent_work=4,
            cpu_workers=workers,
        )  # type: ignore[arg-type]
        service = build_use_cases(shared_ports, templates.InMemoryTemplateStore(), access=None)  # type: ignore[arg-type]
        made = await asyncio.gather(
            *(service.id_photos.create_id_photo(PhotoRequest("s", "us-passport"), common_pb2.ImageRef(data=b"x")) for _ in range(4))
        )
        shared_ports.close()
        assert len(made) == 4 and all(m.photo.result_id for m in made)
        assert 1 <= state["most"] <= workers
        assert names and all(name.startswith("render-cpu") for name in names), names
