"""The faces service over gRPC: Analyze, AnalyzeStream, and its empty DataHolder."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import grpc
import numpy as np
import pytest
from PIL import Image
from skimage import data

from likeness.common.v1 import common_pb2
from likeness.faces.v1 import faces_pb2, faces_pb2_grpc
from likeness.privacy.v1 import dataholder_pb2, dataholder_pb2_grpc
from tests.support.pki import mesh_channel
from tests.support.services import Started, start_faces


def _jpeg(rgb: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format="JPEG", quality=92)
    return out.getvalue()


@pytest.fixture(scope="module")
async def faces() -> AsyncIterator[grpc.aio.Channel]:
    started = Started()
    _, addr = await start_faces(started)
    channel = mesh_channel(addr, options=[("grpc.max_send_message_length", 64 << 20)])
    try:
        yield channel
    finally:
        await channel.close()
        await started.close()


async def test_analyze_returns_one_face_with_mesh_in_original_pixels(faces: grpc.aio.Channel) -> None:
    stub = faces_pb2_grpc.FacesStub(faces)
    reply = await stub.Analyze(
        faces_pb2.AnalyzeRequest(
            image=common_pb2.ImageRef(data=_jpeg(data.astronaut())), options=faces_pb2.AnalyzeOptions(dense_landmarks=True)
        )
    )
    assert (reply.width, reply.height) == (512, 512)
    assert len(reply.faces) == 1
    face = reply.faces[0]
    assert len(face.mesh) == 478 and len(face.landmarks5) == 5
    assert all(face.box.x1 - 20 <= p.x <= face.box.x2 + 20 and face.box.y1 - 40 <= p.y <= face.box.y2 + 20 for p in face.landmarks5)
    assert abs(face.pose.yaw) < 15 and face.quality.inter_eye_px > 20
    # Everything faces computed is present (explicit presence: 0 would be a measured 0).
    assert all(face.pose.HasField(n) for n in ("yaw", "pitch", "roll"))
    assert all(face.HasField(n) for n in ("left_eye_openness", "right_eye_openness", "mouth_openness"))
    assert face.left_eye_openness > 0.35 and face.mouth_openness < 0.45
    quality = ("sharpness", "exposure", "clipped_fraction", "shadow_clipped_fraction", "highlight_clipped_fraction")
    assert all(face.quality.HasField(n) for n in (*quality, "lighting_ratio", "face_size_px", "inter_eye_px"))
    assert face.quality.sharpness > 0.8 and 0.3 < face.quality.exposure < 0.8 and 0.8 < face.quality.lighting_ratio < 1.25


async def test_no_face_is_an_empty_list_and_garbage_is_refused(faces: grpc.aio.Channel) -> None:
    stub = faces_pb2_grpc.FacesStub(faces)
    reply = await stub.Analyze(faces_pb2.AnalyzeRequest(image=common_pb2.ImageRef(data=_jpeg(data.coffee()))))
    assert list(reply.faces) == []
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Analyze(faces_pb2.AnalyzeRequest(image=common_pb2.ImageRef(data=b"not an image")))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_stream_answers_every_id_including_bad_ones(faces: grpc.aio.Channel) -> None:
    stub = faces_pb2_grpc.FacesStub(faces)
    images = {"a": _jpeg(data.astronaut()), "b": _jpeg(data.chelsea()), "c": b"broken"}

    async def requests() -> AsyncIterator[faces_pb2.AnalyzeStreamRequest]:
        for key, blob in images.items():
            yield faces_pb2.AnalyzeStreamRequest(id=key, image=common_pb2.ImageRef(data=blob))

    answers = {r.id: r async for r in stub.AnalyzeStream(requests())}
    assert set(answers) == {"a", "b", "c"}
    assert len(answers["a"].result.faces) == 1 and len(answers["b"].result.faces) == 0
    assert answers["a"].WhichOneof("outcome") == "result" and answers["c"].WhichOneof("outcome") == "error"
    assert answers["c"].error.code == faces_pb2.ANALYZE_ERROR_CODE_CORRUPT_IMAGE and answers["c"].error.message


async def test_faces_holds_nothing(faces: grpc.aio.Channel) -> None:
    holder = dataholder_pb2_grpc.DataHolderStub(faces)
    inventory = await holder.Inventory(dataholder_pb2.InventoryRequest(subject_id="7f1c2d3e-4b5a-4c6d-8e9f-0a1b2c3d4e5f"))
    assert all(c.count == 0 for c in inventory.counts)


async def test_min_face_fraction_skips_faces_smaller_than_asked(faces: grpc.aio.Channel) -> None:
    stub = faces_pb2_grpc.FacesStub(faces)
    canvas = np.full((2000, 2000, 3), 200, np.uint8)
    canvas[100:612, 100:612] = data.astronaut()  # a face about 1/12 of the long side
    image = common_pb2.ImageRef(data=_jpeg(canvas))
    found = await stub.Analyze(faces_pb2.AnalyzeRequest(image=image))
    assert len(found.faces) == 1
    skipped = await stub.Analyze(faces_pb2.AnalyzeRequest(image=image, options=faces_pb2.AnalyzeOptions(min_face_fraction=0.3)))
    assert len(skipped.faces) == 0
