"""An operator's ONNX matting model through the real services: render started with
LIKENESS_MATTING_MODEL_PATH/_SHA256 cuts the person out of an ID photo with that model's alpha.

The model is built here with the `onnx` package: a fixed 64x64 input that answers a known alpha
map (a head and a narrow neck-and-body band, a speck apart from them), whatever the photo. Grace
Hopper's photo shows her navy jacket across the whole width at the bottom; with the model, the
new background shows beside the band there, exactly as the map says.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from matplotlib import cbook
from onnx import TensorProto, helper
from PIL import Image

from likeness.common.v1 import common_pb2
from likeness.privacy.v1 import privacy_pb2, privacy_pb2_grpc
from likeness.render.v1 import render_pb2, render_pb2_grpc
from likeness_imaging.model_backend import sha256_hex
from likeness_render.domain.spec_loading import load_catalog
from tests.support.pki import mesh_channel
from tests.support.services import Started, free_port, start_faces, start_ingestion, start_privacy, start_render

S = 64


def person_map() -> np.ndarray:
    yy, xx = np.mgrid[0:S, 0:S].astype(np.float32) + 0.5
    head = np.clip((1.0 - np.hypot((xx - S / 2) / (0.22 * S), (yy - 0.45 * S) / (0.3 * S))) * 8, 0, 1)
    band = ((np.abs(xx - S / 2) < 0.12 * S) & (yy > 0.6 * S)).astype(np.float32)
    alpha = np.maximum(head, band)
    alpha[2:6, 2:6] = 1.0  # a speck apart from the person
    return alpha.astype(np.float32)


def constant_alpha_model(path: Path, alpha: np.ndarray) -> str:
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["image"], ["grey"], axes=[1], keepdims=1),
            helper.make_node("Mul", ["grey", "zero"], ["nothing"]),
            helper.make_node("Add", ["nothing", "map"], ["alpha"]),
        ],
        "constant_alpha",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, S, S])],
        [helper.make_tensor_value_info("alpha", TensorProto.FLOAT, [1, 1, S, S])],
        initializer=[
            helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
            helper.make_tensor("map", TensorProto.FLOAT, [1, 1, S, S], alpha.ravel().tolist()),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 10
    data = model.SerializeToString()
    path.write_bytes(data)
    return sha256_hex(data)


@pytest.fixture(scope="module")
async def mesh(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> AsyncIterator[dict]:
    started = Started()
    tmp = tmp_path_factory.mktemp("matting")
    model = tmp / "matting.onnx"
    sha = constant_alpha_model(model, person_map())
    ingestion_port, faces_port, render_port = free_port(), free_port(), free_port()
    _, privacy_addr = await start_privacy(database_url, {"render": f"127.0.0.1:{render_port}"}, started)
    await start_ingestion(database_url, privacy_addr, tmp / "uploads", started, port=ingestion_port)
    await start_faces(started, f"127.0.0.1:{ingestion_port}", port=faces_port)
    addrs = {"privacy": privacy_addr, "ingestion": f"127.0.0.1:{ingestion_port}", "faces": f"127.0.0.1:{faces_port}"}
    await start_render(
        database_url, addrs, tmp / "results", started, port=render_port, matting_model_path=str(model), matting_model_sha256=sha
    )
    channels = [mesh_channel(a) for a in (f"127.0.0.1:{render_port}", privacy_addr)]
    subject = (
        await privacy_pb2_grpc.PrivacyStub(channels[1]).RegisterSubject(
            privacy_pb2.RegisterSubjectRequest(kind=privacy_pb2.SUBJECT_KIND_DEVICE)
        )
    ).subject.subject_id
    try:
        yield {"render": render_pb2_grpc.RenderStub(channels[0]), "subject": subject}
    finally:
        for channel in channels:
            await channel.close()
        await started.close()


async def test_the_id_photo_is_cut_out_with_the_operators_model(mesh: dict) -> None:
    with cbook.get_sample_data("grace_hopper.jpg") as fh:
        source = fh.read()
    spec = load_catalog().get("schengen-visa")
    reply = await mesh["render"].CreateIdPhoto(
        render_pb2.CreateIdPhotoRequest(
            subject_id=mesh["subject"],
            image=common_pb2.ImageRef(data=source),
            spec_id=spec.id,
            output=render_pb2.OutputOptions(format=render_pb2.IMAGE_FORMAT_PNG),
        ),
        timeout=120,
    )
    chunks = [
        r.chunk
        async for r in mesh["render"].OpenResult(
            render_pb2.OpenResultRequest(result_id=reply.photo.result_id, subject_id=mesh["subject"], purpose="test")
        )
    ]
    rgb = np.asarray(Image.open(io.BytesIO(b"".join(chunks))).convert("RGB")).astype(int)
    h, w = rgb.shape[:2]
    assert (w, h) == spec.size_px()
    background = np.array([int(spec.background[0][i : i + 2], 16) for i in (1, 3, 5)])
    # Beside the model's band at the bottom, where the photo has her jacket: the new background.
    for x0, x1 in ((0, int(0.3 * w)), (int(0.7 * w), w)):
        beside = rgb[int(0.85 * h) :, x0:x1].reshape(-1, 3)
        assert np.abs(beside - background).max() <= 1
    # In the band: the photo (her dark jacket).
    band = rgb[int(0.9 * h) :, int(0.45 * w) : int(0.55 * w)].reshape(-1, 3)
    assert float(np.abs(band - background).sum(axis=1).mean()) > 150
    # The speck the model drew apart from the person was left out.
    speck = rgb[: int(8 * h / S), : int(8 * w / S)].reshape(-1, 3)
    assert np.abs(speck - background).max() <= 1
