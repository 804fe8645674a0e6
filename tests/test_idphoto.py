"""ID photos on the real services: exact size, head and eye line re-measured on the output, plain
background, clean report; print sheets; file-size bands; compliance checks on unedited photos."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from matplotlib import cbook
from PIL import Image, ImageCms
from skimage import data

from likeness.common.v1 import common_pb2
from likeness.faces.v1 import faces_pb2, faces_pb2_grpc
from likeness.privacy.v1 import privacy_pb2, privacy_pb2_grpc
from likeness.render.v1 import render_pb2, render_pb2_grpc
from likeness_render.adapters.segmenter import SelfieSegmenter
from likeness_render.domain.spec_loading import load_catalog
from tests.support.pki import mesh_channel
from tests.support.services import Started, free_port, start_faces, start_ingestion, start_privacy, start_render

SPECS = [
    "us-passport",
    "gb-passport",
    "schengen-visa",
    "cn-resident-id",
    "jp-passport",
    "ca-passport",
    "in-passport",
    "de-passport",
    "au-passport",
    "us-visa-digital",
]
# Landmarks and the matte carry about a pixel of noise at 300 dpi (0.085 mm); 0.5 mm is well inside any band's width.
TOLERANCE_MM = 0.5


def _jpeg(rgb: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format="JPEG", quality=95)
    return out.getvalue()


def _grace() -> np.ndarray:
    with cbook.get_sample_data("grace_hopper.jpg") as fh:
        return np.asarray(Image.open(fh).convert("RGB"))


SOURCES = {"astronaut": _jpeg(np.asarray(data.astronaut())), "grace_hopper": _jpeg(_grace())}


@pytest.fixture(scope="module")
async def mesh(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> AsyncIterator[dict]:
    started = Started()
    tmp = tmp_path_factory.mktemp("idphoto")
    ingestion_port, faces_port, render_port = free_port(), free_port(), free_port()
    _, privacy_addr = await start_privacy(database_url, {"render": f"127.0.0.1:{render_port}"}, started)
    await start_ingestion(database_url, privacy_addr, tmp / "uploads", started, port=ingestion_port)
    await start_faces(started, f"127.0.0.1:{ingestion_port}", port=faces_port)
    addrs = {"privacy": privacy_addr, "ingestion": f"127.0.0.1:{ingestion_port}", "faces": f"127.0.0.1:{faces_port}"}
    await start_render(database_url, addrs, tmp / "results", started, port=render_port)
    options = [("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)]
    channels = [mesh_channel(a, options=options) for a in (f"127.0.0.1:{render_port}", addrs["faces"], privacy_addr)]
    subject = (
        await privacy_pb2_grpc.PrivacyStub(channels[2]).RegisterSubject(
            privacy_pb2.RegisterSubjectRequest(kind=privacy_pb2.SUBJECT_KIND_DEVICE)
        )
    ).subject.subject_id
    segmenter = SelfieSegmenter()
    try:
        yield {
            "render": render_pb2_grpc.RenderStub(channels[0]),
            "faces": faces_pb2_grpc.FacesStub(channels[1]),
            "subject": subject,
            "segmenter": segmenter,
            "blob_dir": tmp / "results",
        }
    finally:
        segmenter.close()
        for channel in channels:
            await channel.close()
        await started.close()


async def _make(m: dict, source: str, spec_id: str, **kwargs: object) -> render_pb2.CreateIdPhotoResponse:
    request = render_pb2.CreateIdPhotoRequest(
        subject_id=m["subject"], image=common_pb2.ImageRef(data=SOURCES[source]), spec_id=spec_id, **kwargs
    )
    return await m["render"].CreateIdPhoto(request, timeout=120)


async def _open(m: dict, result_id: str) -> bytes:
    parts = [
        r.chunk
        async for r in m["render"].OpenResult(render_pb2.OpenResultRequest(result_id=result_id, subject_id=m["subject"], purpose="test"))
    ]
    return b"".join(parts)


@pytest.mark.parametrize("spec_id", SPECS)
@pytest.mark.parametrize("source", list(SOURCES))
async def test_id_photo_meets_the_spec(mesh: dict, source: str, spec_id: str) -> None:
    spec = load_catalog().get(spec_id)
    reply = await _make(mesh, source, spec_id)
    errors = [(i.code, i.message) for i in reply.report.issues if i.severity == render_pb2.SEVERITY_ERROR]
    assert not errors, errors
    assert reply.report.passed
    photo = await _open(mesh, reply.photo.result_id)
    img = Image.open(io.BytesIO(photo))
    assert img.size == spec.size_px()
    rgb = np.asarray(img.convert("RGB"))

    # Re-measure on the output with the faces service and the matte: chin and eyes from the mesh, crown from the hair.
    faces = (
        await mesh["faces"].Analyze(
            faces_pb2.AnalyzeRequest(image=common_pb2.ImageRef(data=photo), options=faces_pb2.AnalyzeOptions(dense_landmarks=True))
        )
    ).faces
    assert len(faces) == 1
    pts = np.array([[p.x, p.y] for p in faces[0].mesh])
    alpha = mesh["segmenter"].mask(rgb)
    ppm = spec.px_per_mm()
    columns = slice(int(pts[:, 0].min() + 0.25 * np.ptp(pts[:, 0])), int(pts[:, 0].max() - 0.25 * np.ptp(pts[:, 0])))
    crown = int(np.flatnonzero((alpha[:, columns] > 0.5).any(axis=1))[0])
    head_mm = (pts[152, 1] - crown) / ppm
    eye_mm = (rgb.shape[0] - (pts[468, 1] + pts[473, 1]) / 2) / ppm
    head, eye = spec.head_band_mm(), spec.eye_band_mm()
    assert head.min - TOLERANCE_MM <= head_mm <= head.max + TOLERANCE_MM, (head_mm, head)
    assert eye.min - TOLERANCE_MM <= eye_mm <= eye.max + TOLERANCE_MM, (eye_mm, eye)

    # The border above and beside the head is the spec's plain colour.
    expected = np.array([int(spec.background[0][i : i + 2], 16) for i in (1, 3, 5)])
    top = rgb[: max(3, rgb.shape[0] // 40)].reshape(-1, 3).astype(int)
    assert np.abs(top.mean(axis=0) - expected).max() < 6 and top.std(axis=0).max() < 4
    # The encoded file says how large to print it.
    assert round(img.info["dpi"][0]) == 300 if spec.dpi is None else round(spec.dpi)


async def test_file_size_bands_hold(mesh: dict) -> None:
    cn = await _make(mesh, "grace_hopper", "cn-resident-id")
    assert 14 * 1024 <= cn.photo.size_bytes <= 20 * 1024, cn.photo.size_bytes
    visa = await _make(mesh, "astronaut", "us-visa-digital")
    assert visa.photo.size_bytes <= 240 * 1024
    assert not [i for i in visa.report.issues if i.code == "FILE_SIZE_OUT_OF_RANGE"]


async def test_sheet_holds_eight_35x45_photos_on_4x6(mesh: dict) -> None:
    layout = render_pb2.SheetLayout(paper_id="4r", dpi=300, margin_mm=3, gap_mm=2, cut_marks=True)
    reply = await _make(mesh, "astronaut", "schengen-visa", sheet=layout)
    assert reply.sheet_photo_count == 8
    sheet = Image.open(io.BytesIO(await _open(mesh, reply.sheet.result_id)))
    # 4x6 in at 300 dpi is 1200 x 1800 px; the packer may turn the paper when that fits as many.
    assert sorted(sheet.size) == [1200, 1800]
    # 35x45 mm at 300 dpi is 413x531 px; 2 columns and 4 rows need 2*413+2 mm gap+2*3 mm margins across.
    assert 2 * 413 + round(2 / 25.4 * 300) + 2 * round(3 / 25.4 * 300) <= 1200


async def test_default_us_passport_sheet_is_the_6_up_pdf_at_exact_size(mesh: dict) -> None:
    layout = render_pb2.SheetLayout(paper_id="4r", cut_marks=True, format=render_pb2.IMAGE_FORMAT_PDF)
    reply = await _make(mesh, "astronaut", "us-passport", sheet=layout)
    assert reply.sheet_photo_count == 6
    assert reply.sheet.content_type == "application/pdf"
    pdf = await _open(mesh, reply.sheet.result_id)
    assert pdf.startswith(b"%PDF-") and b"/MediaBox [0 0 288 432]" in pdf  # 4x6 in, exactly
    # The photo itself is a JPEG tagged sRGB.
    photo = Image.open(io.BytesIO(await _open(mesh, reply.photo.result_id)))
    assert ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(photo.info["icc_profile"]))).strip() == "sRGB built-in"
    # An ID photo itself is never a PDF.
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _make(mesh, "astronaut", "us-passport", output=render_pb2.OutputOptions(format=render_pb2.IMAGE_FORMAT_PDF))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_background_outfit_and_beauty_options(mesh: dict) -> None:
    blue = await _make(
        mesh,
        "grace_hopper",
        "cn-resident-id",
        background=render_pb2.Background(mode=render_pb2.BACKGROUND_MODE_SOLID, colors=["#438edb"]),
        outfit_id="suit",
        beauty=render_pb2.Beauty(smoothing=5, whitening=3),
    )
    rgb = np.asarray(Image.open(io.BytesIO(await _open(mesh, blue.photo.result_id))).convert("RGB"))
    assert np.abs(rgb[:8].reshape(-1, 3).mean(axis=0) - [0x43, 0x8E, 0xDB]).max() < 6
    bottom_centre = rgb[-6:, rgb.shape[1] // 2 - 3 : rgb.shape[1] // 2 + 3].reshape(-1, 3).mean(axis=0)
    assert bottom_centre.mean() > 150 or bottom_centre[0] > bottom_centre[2]  # shirt front or tie, not the original dark jacket
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await _make(mesh, "grace_hopper", "cn-resident-id", outfit_id="no-such-outfit")
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


async def test_an_outfit_needs_the_shoulders_in_the_photo(mesh: dict) -> None:
    SOURCES["grace_head"] = _jpeg(np.ascontiguousarray(_grace()[:330]))  # down to just under the chin
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await _make(mesh, "grace_head", "schengen-visa", outfit_id="suit")
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert dict(info.value.trailing_metadata())["likeness-error-code"] == "OUTFIT_TOO_LITTLE_TORSO"
    assert "shoulder" in info.value.details()
    # Without an outfit the same crop is not refused for its torso.
    reply = await _make(mesh, "grace_head", "schengen-visa")
    assert reply.photo.result_id


async def test_an_operator_registers_a_garment_material_and_photos_wear_it(mesh: dict) -> None:
    from likeness_render.domain import outfit_demo

    blazer = {g.id: g for g in outfit_demo.demo_garments()}["blazer"]
    rgba = np.array(blazer.rgba)
    rgba[..., :3] = (rgba[..., :3].astype(np.float32) * [0.6, 1.4, 0.6]).clip(0, 255).astype(np.uint8)  # a green blazer
    png = io.BytesIO()
    Image.fromarray(rgba).save(png, format="PNG")

    def point(p: tuple[float, float]) -> render_pb2.ImagePoint:
        return render_pb2.ImagePoint(x=p[0], y=p[1])

    request = render_pb2.RegisterOutfitRequest(
        name="Green Blazer", image=png.getvalue(), neck=point(blazer.neck),
        left_shoulder=point(blazer.left_shoulder), right_shoulder=point(blazer.right_shoulder),
    )  # fmt: skip
    reply = await mesh["render"].RegisterOutfit(request)
    assert (reply.outfit.outfit_id, reply.outfit.width) == ("green-blazer", rgba.shape[1])
    listed = (await mesh["render"].ListOutfits(render_pb2.ListOutfitsRequest())).outfits
    assert "green-blazer" in {o.outfit_id for o in listed}
    made = await _make(mesh, "astronaut", "schengen-visa", outfit_id="green-blazer")
    rgb = np.asarray(Image.open(io.BytesIO(await _open(mesh, made.photo.result_id))).convert("RGB")).astype(int)
    corner = rgb[-20:, :40].reshape(-1, 3).mean(axis=0)  # the shoulder at the bottom left: the green cloth
    assert corner[1] > corner[0] + 5 and corner[1] > corner[2] + 5
    bad = render_pb2.RegisterOutfitRequest(
        name="Bad", image=png.getvalue(), neck=point(blazer.neck),
        left_shoulder=point(blazer.right_shoulder), right_shoulder=point(blazer.left_shoulder),
    )  # fmt: skip
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await mesh["render"].RegisterOutfit(bad)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert dict(info.value.trailing_metadata())["likeness-error-code"] == "INVALID_OUTFIT"


async def test_no_face_and_unknown_spec_are_refused_clearly(mesh: dict) -> None:
    SOURCES["coffee"] = _jpeg(np.asarray(data.coffee()))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await _make(mesh, "coffee", "us-passport")
    assert dict(info.value.trailing_metadata())["likeness-error-code"] == "NO_FACE"
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await _make(mesh, "astronaut", "xx-nothing")
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


async def test_check_reports_problems_of_an_unedited_photo(mesh: dict) -> None:
    tilted = np.asarray(Image.fromarray(_grace()).rotate(20, expand=False, fillcolor=(255, 255, 255)))
    SOURCES["tilted"] = _jpeg(tilted)
    request = render_pb2.CheckIdPhotoRequest(
        subject_id=mesh["subject"], image=common_pb2.ImageRef(data=SOURCES["tilted"]), spec_id="us-passport"
    )
    report = (await mesh["render"].CheckIdPhoto(request, timeout=120)).report
    codes = {i.code for i in report.issues}
    assert "HEAD_TILTED" in codes and not report.passed
    tilt = next(i for i in report.issues if i.code == "HEAD_TILTED")
    assert abs(tilt.measured) > 15 and tilt.allowed.max > 0


async def test_results_are_encrypted_on_disk(mesh: dict) -> None:
    await _make(mesh, "astronaut", "de-passport")
    blobs = [p for p in Path(mesh["blob_dir"]).rglob("*") if p.is_file()]
    assert blobs and all(b"\xff\xd8\xff" not in p.read_bytes()[:64] for p in blobs)
