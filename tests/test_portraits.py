"""Portraits and hairstyles through the render service, and the AI restyle against a local OpenAI-compatible server."""

from __future__ import annotations

import base64
import io
import json
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import numpy as np
import pytest
from matplotlib import cbook
from PIL import Image
from skimage import data

from likeness.common.v1 import common_pb2
from likeness.faces.v1 import faces_pb2, faces_pb2_grpc
from likeness.privacy.v1 import privacy_pb2, privacy_pb2_grpc, rights_pb2, rights_pb2_grpc
from likeness.render.v1 import render_pb2, render_pb2_grpc
from tests.support.pki import mesh_channel
from tests.support.services import Started, free_port, start_faces, start_ingestion, start_privacy, start_render

MAGENTA = (255, 0, 255)


class FakeProvider(BaseHTTPRequestHandler):
    """Answers /images/edits like an OpenAI-compatible provider: one magenta square."""

    seen: list[dict] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        images, pngs = [], []
        start = body.find(b"\x89PNG")
        while start >= 0:  # every PNG part of the multipart body (image, and mask when sent)
            with Image.open(io.BytesIO(body[start:])) as part:
                images.append(part.size)
            pngs.append(body[start : body.find(b"IEND", start) + 8])
            start = body.find(b"\x89PNG", start + 8)
        FakeProvider.seen.append(
            {
                "path": self.path,
                "auth": self.headers.get("Authorization", ""),
                "bytes": len(body),
                "images": images,
                "pngs": pngs,
                "body": body,
            }
        )
        out = io.BytesIO()
        Image.new("RGB", (512, 512), MAGENTA).save(out, format="PNG")
        payload = json.dumps({"created": 0, "data": [{"b64_json": base64.b64encode(out.getvalue()).decode()}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *_: object) -> None:
        return


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), FakeProvider)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()


@pytest.fixture(scope="module")
async def mesh(tmp_path_factory: pytest.TempPathFactory, database_url: str, provider: str) -> AsyncIterator[dict]:
    started = Started()
    tmp = tmp_path_factory.mktemp("portraits")
    ingestion_port, faces_port = free_port(), free_port()
    _, privacy_addr = await start_privacy(database_url, {}, started)
    await start_ingestion(database_url, privacy_addr, tmp / "uploads", started, port=ingestion_port)
    await start_faces(started, f"127.0.0.1:{ingestion_port}", port=faces_port)
    addrs = {"privacy": privacy_addr, "ingestion": f"127.0.0.1:{ingestion_port}", "faces": f"127.0.0.1:{faces_port}"}
    aigen = {"BASE_URL": provider, "API_KEY": "sk-test-secret", "MODEL": "fake-image-1", "TIMEOUT_S": "10"}
    with pytest.MonkeyPatch.context() as env:  # the AI provider is configured the way operators do it
        for key, value in aigen.items():
            env.setenv(f"LIKENESS_AIGEN_{key}", value)
        _, render_addr = await start_render(database_url, addrs, tmp / "results", started)
    options = [("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)]
    render, faces, privacy = (mesh_channel(a, options=options) for a in (render_addr, addrs["faces"], privacy_addr))
    subject = (
        await privacy_pb2_grpc.PrivacyStub(privacy).RegisterSubject(
            privacy_pb2.RegisterSubjectRequest(kind=privacy_pb2.SUBJECT_KIND_DEVICE)
        )
    ).subject.subject_id
    try:
        yield {
            "render": render_pb2_grpc.RenderStub(render),
            "faces": faces_pb2_grpc.FacesStub(faces),
            "rights": rights_pb2_grpc.RightsStub(privacy),
            "subject": subject,
        }
    finally:
        for channel in (render, faces, privacy):
            await channel.close()
        await started.close()


def _grace() -> bytes:
    with cbook.get_sample_data("grace_hopper.jpg") as fh:
        return fh.read()


async def _image(m: dict, result_id: str) -> np.ndarray:
    parts = [
        r.chunk
        async for r in m["render"].OpenResult(render_pb2.OpenResultRequest(result_id=result_id, subject_id=m["subject"], purpose="test"))
    ]
    return np.asarray(Image.open(io.BytesIO(b"".join(parts))).convert("RGB"))


async def _faces(m: dict, rgb: np.ndarray) -> list:
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format="JPEG", quality=95)
    return list((await m["faces"].Analyze(faces_pb2.AnalyzeRequest(image=common_pb2.ImageRef(data=out.getvalue())))).faces)


async def test_catalogs_list_templates_hairstyles_and_outfits(mesh: dict) -> None:
    templates = (await mesh["render"].ListTemplates(render_pb2.ListTemplatesRequest())).templates
    assert len(templates) >= 4 and any(t.face_count == 2 for t in templates)
    assert len((await mesh["render"].ListHairstyles(render_pb2.ListHairstylesRequest())).hairstyles) >= 4
    assert {o.outfit_id for o in (await mesh["render"].ListOutfits(render_pb2.ListOutfitsRequest())).outfits} >= {
        "suit",
        "blazer",
        "white-shirt",
        "navy-uniform",
    }


async def test_demo_templates_have_their_faces_from_the_faces_service(mesh: dict) -> None:
    demo = {"documentary": 1, "official": 1, "studio": 1, "duo": 2}
    # Other tests in the session may register templates of their own: only the demo styles are checked.
    templates = {t.style: t for t in (await mesh["render"].ListTemplates(render_pb2.ListTemplatesRequest())).templates if t.style in demo}
    assert {style: t.face_count for style, t in templates.items()} == demo


async def test_register_template_finds_its_faces_through_faces(mesh: dict) -> None:
    out = io.BytesIO()
    wide = np.concatenate([data.astronaut(), np.asarray(Image.open(io.BytesIO(_grace())).convert("RGB").resize((437, 512)))], axis=1)
    Image.fromarray(wide).save(out, format="PNG")
    reply = await mesh["render"].RegisterTemplate(
        render_pb2.RegisterTemplateRequest(name="Two Pioneers", style="duo", image=out.getvalue())
    )
    assert (reply.template.template_id, reply.template.face_count, reply.template.width) == (
        "two-pioneers",
        2,
        1024,
    )  # upscaled to the material size
    listed = (await mesh["render"].ListTemplates(render_pb2.ListTemplatesRequest())).templates
    assert any(t.template_id == "two-pioneers" and t.face_count == 2 for t in listed)
    portrait = await mesh["render"].CreatePortrait(
        render_pb2.CreatePortraitRequest(
            subject_id=mesh["subject"], images=[common_pb2.ImageRef(data=_grace())], template_id="two-pioneers", face_index=1
        ),
        timeout=120,
    )
    assert portrait.result.kind == render_pb2.RESULT_KIND_PORTRAIT
    no_face = io.BytesIO()
    Image.fromarray(data.coffee()).save(no_face, format="PNG")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await mesh["render"].RegisterTemplate(render_pb2.RegisterTemplateRequest(name="Coffee", style="still", image=no_face.getvalue()))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert dict(info.value.trailing_metadata())["likeness-error-code"] == "INVALID_TEMPLATE"


async def test_portrait_and_two_face_template(mesh: dict) -> None:
    user = common_pb2.ImageRef(data=_grace())
    reply = await mesh["render"].CreatePortrait(
        render_pb2.CreatePortraitRequest(subject_id=mesh["subject"], images=[user], template_id="studio-blue", strength=80), timeout=120
    )
    portrait = await _image(mesh, reply.result.result_id)
    assert len(await _faces(mesh, portrait)) == 1
    pair = await mesh["render"].CreatePortrait(
        render_pb2.CreatePortraitRequest(subject_id=mesh["subject"], images=[user, user], template_id="side-by-side", strength=100),
        timeout=120,
    )
    assert len(await _faces(mesh, await _image(mesh, pair.result.result_id))) == 2
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await mesh["render"].CreatePortrait(
            render_pb2.CreatePortraitRequest(subject_id=mesh["subject"], images=[user, user], template_id="studio-blue")
        )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def _collins() -> bytes:
    out = io.BytesIO()
    Image.fromarray(data.astronaut()).save(out, format="PNG")
    return out.getvalue()


async def test_hairstyle_changes_hair_and_keeps_the_face(mesh: dict) -> None:
    reply = await mesh["render"].ChangeHairstyle(
        render_pb2.ChangeHairstyleRequest(subject_id=mesh["subject"], image=common_pb2.ImageRef(data=_collins()), hairstyle_id="bob_black"),
        timeout=120,
    )
    out = await _image(mesh, reply.result.result_id)
    original = data.astronaut()
    assert out.shape == original.shape
    faces = await _faces(mesh, out)
    assert len(faces) == 1
    b = faces[0].box
    inner = (
        slice(int(b.y1 + 0.45 * (b.y2 - b.y1)), int(b.y2 - 0.1 * (b.y2 - b.y1))),
        slice(int(b.x1 + 0.2 * (b.x2 - b.x1)), int(b.x2 - 0.2 * (b.x2 - b.x1))),
    )
    assert np.abs(out[inner].astype(int) - original[inner].astype(int)).mean() < 6  # the lower face is the user's
    top = (slice(0, int(b.y1)), slice(int(b.x1), int(b.x2)))
    assert np.abs(out[top].astype(int) - original[top].astype(int)).mean() > 15  # above it, new (black) hair
    # Grace Hopper wears her cap: the hat is not erased, the style is refused with a code.
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await mesh["render"].ChangeHairstyle(
            render_pb2.ChangeHairstyleRequest(
                subject_id=mesh["subject"], image=common_pb2.ImageRef(data=_grace()), hairstyle_id="bob_black"
            ),
            timeout=120,
        )
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert dict(info.value.trailing_metadata())["likeness-error-code"] == "HAT_PRESENT"


async def _consent(m: dict, granted: bool) -> None:
    change = rights_pb2.ConsentChange(purpose="ai_generation_third_party", granted=granted)
    await m["rights"].SetConsents(rights_pb2.SetConsentsRequest(subject_id=m["subject"], changes=[change], policy_version="2026-11"))


def _ai_portrait(m: dict) -> render_pb2.CreatePortraitRequest:
    return render_pb2.CreatePortraitRequest(
        subject_id=m["subject"],
        images=[common_pb2.ImageRef(data=_grace())],
        template_id="studio-blue",
        strength=60,
        ai_prompt="oil painting",
    )


async def test_ai_restyle_sends_only_a_crop_and_keeps_the_answer_as_a_result(mesh: dict) -> None:
    await _consent(mesh, True)
    FakeProvider.seen.clear()
    reply = await mesh["render"].CreatePortrait(_ai_portrait(mesh), timeout=120)
    assert len(FakeProvider.seen) == 1
    call = FakeProvider.seen[0]
    assert call["path"].endswith("/images/edits") and call["auth"] == "Bearer sk-test-secret"
    # The crop (at most 512 px), not the 1024 px portrait, and nothing that names the subject.
    assert call["images"] and all(max(size) <= 512 for size in call["images"])
    assert mesh["subject"].encode() not in call["body"]
    out = await _image(mesh, reply.result.result_id)
    magenta = (out[..., 0] > 200) & (out[..., 1] < 60) & (out[..., 2] > 200)
    assert 0.05 < magenta.mean() < 0.9  # the provider's answer replaced the face area, not the whole picture
    assert reply.result.persisted and reply.result.expires_at.seconds - reply.result.created_at.seconds <= 86400


async def test_withdrawing_consent_stops_ai_generation_at_once(mesh: dict) -> None:
    await _consent(mesh, True)
    FakeProvider.seen.clear()
    await mesh["render"].CreatePortrait(_ai_portrait(mesh), timeout=120)
    assert len(FakeProvider.seen) == 1
    await _consent(mesh, False)
    # The very next call is refused, with its code, and nothing reaches the provider.
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await mesh["render"].CreatePortrait(_ai_portrait(mesh), timeout=120)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert dict(refused.value.trailing_metadata())["likeness-error-code"] == "CONSENT_REQUIRED"
    assert len(FakeProvider.seen) == 1
    # A portrait without the AI step needs no such consent.
    plain = _ai_portrait(mesh)
    plain.ai_prompt = ""
    assert (await mesh["render"].CreatePortrait(plain, timeout=120)).result.result_id
    assert len(FakeProvider.seen) == 1


async def test_ai_hair_refinement_sends_only_the_head_crop_and_the_hair_mask(mesh: dict) -> None:
    await _consent(mesh, True)
    FakeProvider.seen.clear()
    reply = await mesh["render"].ChangeHairstyle(
        render_pb2.ChangeHairstyleRequest(
            subject_id=mesh["subject"], image=common_pb2.ImageRef(data=_collins()), hairstyle_id="bob_auburn", ai_prompt="wavy"
        ),
        timeout=120,
    )
    assert len(FakeProvider.seen) == 1
    call = FakeProvider.seen[0]
    assert call["path"].endswith("/images/edits")
    # The head crop and its mask, the same size, at most 512 px; no subject id.
    assert len(call["images"]) == 2 and call["images"][0] == call["images"][1] and max(call["images"][0]) <= 512
    assert mesh["subject"].encode() not in call["body"]
    out = await _image(mesh, reply.result.result_id)
    magenta = (out[..., 0] > 200) & (out[..., 1] < 60) & (out[..., 2] > 200)
    faces = await _faces(mesh, data.astronaut())
    b = faces[0].box
    lower_face = magenta[int(b.y1 + 0.5 * (b.y2 - b.y1)) : int(b.y2), int(b.x1 + 0.2 * (b.x2 - b.x1)) : int(b.x2 - 0.2 * (b.x2 - b.x1))]
    # The answer went in where the hair is (above the face), not over the face.
    assert magenta[: int(b.y1)].mean() > 0.05 and lower_face.mean() < 0.01


def _outfit_photo(m: dict, prompt: str, outfit_id: str = "suit") -> render_pb2.CreateIdPhotoRequest:
    return render_pb2.CreateIdPhotoRequest(
        subject_id=m["subject"],
        image=common_pb2.ImageRef(data=_grace()),
        spec_id="cn-resident-id",
        outfit_id=outfit_id,
        outfit_ai_prompt=prompt,
        output=render_pb2.OutputOptions(format=render_pb2.IMAGE_FORMAT_PNG),
    )


def _magenta(rgb: np.ndarray) -> np.ndarray:
    return (rgb[..., 0] > 200) & (rgb[..., 1] < 60) & (rgb[..., 2] > 200)


async def test_ai_outfit_refinement_sends_only_the_torso_crop_and_the_garment_mask(mesh: dict) -> None:
    await _consent(mesh, True)
    plain = await _image(mesh, (await mesh["render"].CreateIdPhoto(_outfit_photo(mesh, ""), timeout=120)).photo.result_id)
    FakeProvider.seen.clear()
    reply = await mesh["render"].CreateIdPhoto(_outfit_photo(mesh, "navy linen suit"), timeout=120)
    assert len(FakeProvider.seen) == 1
    call = FakeProvider.seen[0]
    assert call["path"].endswith("/images/edits") and call["auth"] == "Bearer sk-test-secret"
    # The torso crop and its mask, the same size, at most 512 px; no subject id, no face.
    assert len(call["images"]) == 2 and call["images"][0] == call["images"][1] and max(call["images"][0]) <= 512
    assert mesh["subject"].encode() not in call["body"]
    crop = np.asarray(Image.open(io.BytesIO(call["pngs"][0])).convert("RGB"))
    assert await _faces(mesh, crop) == []
    with Image.open(io.BytesIO(call["pngs"][1])) as mask_png:
        paint = np.asarray(mask_png.convert("RGBA"))[..., 3] == 0
    assert 0.2 < paint.mean() < 1.0  # the garment may be repainted, the rest of the crop not
    out = await _image(mesh, reply.photo.result_id)
    assert out.shape == plain.shape
    changed = np.abs(out.astype(int) - plain.astype(int)).max(axis=2) > 2
    magenta = _magenta(out)
    assert magenta.mean() > 0.05 and not _magenta(plain).any()
    # The answer came back under the garment only: the head, and the photo's upper half, are as without the AI step.
    face = (await _faces(mesh, plain))[0].box
    assert not changed[: int(face.y2)].any()
    assert changed.any() and (changed & ~magenta).mean() < 0.5 * changed.mean()


async def test_ai_outfit_refinement_needs_consent_and_an_outfit(mesh: dict) -> None:
    await _consent(mesh, False)
    FakeProvider.seen.clear()
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await mesh["render"].CreateIdPhoto(_outfit_photo(mesh, "navy linen suit"), timeout=120)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert dict(refused.value.trailing_metadata())["likeness-error-code"] == "CONSENT_REQUIRED"
    await _consent(mesh, True)
    with pytest.raises(grpc.aio.AioRpcError) as alone:
        await mesh["render"].CreateIdPhoto(_outfit_photo(mesh, "navy linen suit", outfit_id=""), timeout=120)
    assert alone.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert dict(alone.value.trailing_metadata())["likeness-error-code"] == "OUTFIT_AI_WITHOUT_OUTFIT"
    assert FakeProvider.seen == []  # nothing reached the provider
    # The outfit without the AI step needs no such consent.
    await _consent(mesh, False)
    assert (await mesh["render"].CreateIdPhoto(_outfit_photo(mesh, ""), timeout=120)).photo.result_id
    assert FakeProvider.seen == []
