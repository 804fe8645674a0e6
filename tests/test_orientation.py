"""Phone photos stored sideways (EXIF orientation 2-8) end to end: upload to ingestion, which keeps the
pixels as stored with only the orientation, then faces and render read the upload by id. Every
orientation must give the same face geometry and the same ID photo as the upright upload."""

from __future__ import annotations

import importlib.util
import io
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from matplotlib import cbook
from PIL import Image

from likeness.common.v1 import common_pb2
from likeness.faces.v1 import faces_pb2, faces_pb2_grpc
from likeness.ingestion.v1 import ingestion_pb2, ingestion_pb2_grpc
from likeness.privacy.v1 import privacy_pb2, privacy_pb2_grpc
from likeness.render.v1 import render_pb2, render_pb2_grpc
from tests.support.pki import mesh_channel
from tests.support.services import Started, free_port, start_faces, start_ingestion, start_privacy, start_render

_spec = importlib.util.spec_from_file_location(
    "ingestion_test_images", Path(__file__).resolve().parents[1] / "services" / "ingestion" / "tests" / "images.py"
)
assert _spec and _spec.loader
images = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(images)


def _grace() -> np.ndarray:
    with cbook.get_sample_data("grace_hopper.jpg") as fh:
        return np.asarray(Image.open(fh).convert("RGB"))


@pytest.fixture(scope="module")
async def mesh(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> AsyncIterator[dict]:
    started = Started()
    tmp = tmp_path_factory.mktemp("orientation")
    ingestion_port, faces_port, render_port = free_port(), free_port(), free_port()
    holders = {"ingestion": f"127.0.0.1:{ingestion_port}", "render": f"127.0.0.1:{render_port}"}
    _, privacy_addr = await start_privacy(database_url, holders, started)
    await start_ingestion(database_url, privacy_addr, tmp / "uploads", started, port=ingestion_port)
    await start_faces(started, holders["ingestion"], port=faces_port)
    addrs = {"privacy": privacy_addr, "ingestion": holders["ingestion"], "faces": f"127.0.0.1:{faces_port}"}
    await start_render(database_url, addrs, tmp / "results", started, port=render_port)
    options = [("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)]
    channels = [mesh_channel(a, options=options) for a in (holders["ingestion"], addrs["faces"], holders["render"], privacy_addr)]
    subject = (
        await privacy_pb2_grpc.PrivacyStub(channels[3]).RegisterSubject(
            privacy_pb2.RegisterSubjectRequest(kind=privacy_pb2.SUBJECT_KIND_DEVICE)
        )
    ).subject.subject_id
    try:
        yield {
            "ingestion": ingestion_pb2_grpc.IngestionStub(channels[0]),
            "faces": faces_pb2_grpc.FacesStub(channels[1]),
            "render": render_pb2_grpc.RenderStub(channels[2]),
            "subject": subject,
            "results": {},
        }
    finally:
        for channel in channels:
            await channel.close()
        await started.close()


def _upload_requests(subject: str, data: bytes):
    yield ingestion_pb2.UploadRequest(
        metadata=ingestion_pb2.UploadMetadata(subject_id=subject, content_type="image/jpeg", purpose="id_photo")
    )
    yield ingestion_pb2.UploadRequest(chunk=data)


async def _id_photo(
    m: dict, orientation: int
) -> tuple[ingestion_pb2.UploadInfo, faces_pb2.Face, render_pb2.CreateIdPhotoResponse, np.ndarray]:
    data, upright = images.rotated_with_exif(orientation, _grace())
    upload = (await m["ingestion"].Upload(_upload_requests(m["subject"], data))).upload
    assert (upload.width, upload.height) == (upright.shape[1], upright.shape[0])
    ref = common_pb2.ImageRef(upload_id=upload.upload_id)
    faces = (await m["faces"].Analyze(faces_pb2.AnalyzeRequest(image=ref, subject_id=m["subject"]), timeout=120)).faces
    assert len(faces) == 1
    reply = await m["render"].CreateIdPhoto(
        render_pb2.CreateIdPhotoRequest(subject_id=m["subject"], image=ref, spec_id="us-passport"), timeout=120
    )
    parts = [
        r.chunk
        async for r in m["render"].OpenResult(
            render_pb2.OpenResultRequest(result_id=reply.photo.result_id, subject_id=m["subject"], purpose="test")
        )
    ]
    photo = np.asarray(Image.open(io.BytesIO(b"".join(parts))).convert("RGB"), dtype=np.int16)
    return upload, faces[0], reply, photo


@pytest.mark.parametrize("orientation", range(1, 9))
async def test_every_orientation_gives_the_upright_id_photo(mesh: dict, orientation: int) -> None:
    if 1 not in mesh["results"]:
        mesh["results"][1] = await _id_photo(mesh, 1)
    _, face1, _, photo1 = mesh["results"][1]
    _, face, reply, photo = mesh["results"][1] if orientation == 1 else await _id_photo(mesh, orientation)
    assert reply.report.passed, [(i.code, i.message) for i in reply.report.issues]
    # The face is found at the same place of the upright picture, whatever way the sensor stored it.
    box, box1 = face.box, face1.box
    assert max(abs(box.x1 - box1.x1), abs(box.y1 - box1.y1), abs(box.x2 - box1.x2), abs(box.y2 - box1.y2)) < 4, (box, box1)
    # And the ID photo is the upright one: same size, same pixels up to JPEG noise of the stored copy.
    # (compared on 10x10 block means: the matte's edge may move by a pixel between two JPEG copies).
    assert photo.shape == photo1.shape
    same = np.abs(_blocks(photo) - _blocks(photo1)).mean()
    mirrored = np.abs(_blocks(photo[:, ::-1]) - _blocks(photo1)).mean()
    assert same < 3 and mirrored > 3 * same, (same, mirrored)


def _blocks(rgb: np.ndarray, size: int = 10) -> np.ndarray:
    h, w = rgb.shape[0] // size * size, rgb.shape[1] // size * size
    return rgb[:h, :w].reshape(h // size, size, w // size, size, 3).mean(axis=(1, 3))
