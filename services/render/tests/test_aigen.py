"""The OpenAI-compatible image-generation client against a local server that speaks the API
(stdlib http.server on a free loopback port, in a thread)."""

from __future__ import annotations

import base64
import email.parser
import email.policy
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import aclosing
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import cv2
import numpy as np
import pytest

from likeness_render.adapters import aigen

API_KEY = "sk-test-7f3a9c"  # a recognisable string: it must never show in logs or errors
PROMPT = "oil portrait of Jane Roe, 1 Main St"  # stands for personal text in a prompt


def _png(w: int, h: int, value: int = 128) -> bytes:
    ok, buf = cv2.imencode(".png", np.full((h, w, 3), value, np.uint8))
    assert ok
    return buf.tobytes()


RESULT_PNG = _png(64, 48, 200)


@dataclass
class _Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class _Provider:
    """What the fake provider answers; every request it gets is recorded."""

    url: str = ""
    mode: str = "b64"
    status: int = 200
    delay_s: float = 0.0
    seen: list[_Seen] = field(default_factory=list)


def _handler(state: _Provider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            state.seen.append(_Seen("GET", self.path, dict(self.headers), b""))
            self._send(200, RESULT_PNG, "image/png")

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.seen.append(_Seen("POST", self.path, dict(self.headers), body))
            if state.delay_s:
                time.sleep(state.delay_s)  # a slow provider, so the client's timeout fires
            if state.status != 200:
                err = {"error": {"message": f"content policy: {PROMPT}", "code": "content_policy_violation"}}
                self._send(state.status, json.dumps(err).encode())
                return
            if state.mode == "b64":
                self._send(200, json.dumps({"data": [{"b64_json": base64.b64encode(RESULT_PNG).decode()}]}).encode())
            elif state.mode == "url":
                self._send(200, json.dumps({"images": [{"url": f"{state.url}/cdn/result.png"}]}).encode())
            elif state.mode == "not_image":
                self._send(200, json.dumps({"data": [{"b64_json": base64.b64encode(b"<html>").decode()}]}).encode())
            else:
                self._send(200, b"<html>oops</html>", "text/html")

    return Handler


@pytest.fixture
def provider() -> Iterator[_Provider]:
    state = _Provider()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    # A short poll keeps teardown quick (shutdown waits for the loop to look).
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join()


def _settings(provider: _Provider, **kw: Any) -> aigen.AiGenSettings:
    base: dict[str, Any] = {"base_url": f"{provider.url}/v1", "api_key": API_KEY, "model": "flux-dev", "timeout_s": 5.0}
    base.update(kw)
    return aigen.AiGenSettings(**base)


def _the_request(provider: _Provider, path: str) -> _Seen:
    """The one request the provider saw: to `path`, with the key."""
    (req,) = provider.seen
    assert req.path == path
    assert req.headers["Authorization"] == f"Bearer {API_KEY}"
    return req


def _multipart(seen: _Seen) -> dict[str, bytes]:
    raw = b"Content-Type: " + seen.headers["Content-Type"].encode() + b"\r\n\r\n" + seen.body
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
    parts: dict[str, bytes] = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        parts[str(name)] = payload
    return parts


def test_off_unless_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BASE_URL", "API_KEY", "MODEL", "EDIT_MODEL", "TIMEOUT_S", "MAX_CROP_SIDE"):
        monkeypatch.delenv(f"LIKENESS_AIGEN_{name}", raising=False)
    assert aigen.make_image_generator(aigen.AiGenSettings()) is None
    monkeypatch.setenv("LIKENESS_AIGEN_BASE_URL", "https://api.example/v1/")
    monkeypatch.setenv("LIKENESS_AIGEN_MODEL", "m")
    partial = aigen.AiGenSettings()
    assert not partial.enabled
    with pytest.raises(aigen.AiGenDisabled):
        aigen.OpenAIImageGenerator(partial)
    monkeypatch.setenv("LIKENESS_AIGEN_API_KEY", API_KEY)
    monkeypatch.setenv("LIKENESS_AIGEN_TIMEOUT_S", "12.5")
    monkeypatch.setenv("LIKENESS_AIGEN_MAX_CROP_SIDE", "256")
    full = aigen.AiGenSettings()
    assert full.enabled and full.base_url == "https://api.example/v1"
    assert (full.timeout_s, full.max_crop_side) == (12.5, 256)
    assert API_KEY not in repr(full) and API_KEY not in str(full)


def test_bad_settings_are_refused_with_the_variable_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIKENESS_AIGEN_TIMEOUT_S", "soon")
    with pytest.raises(ValueError, match="timeout_s"):
        aigen.AiGenSettings()


async def test_generate_sends_prompt_and_key_and_returns_the_image(provider: _Provider) -> None:
    gen = aigen.make_image_generator(_settings(provider))
    assert gen is not None
    async with aclosing(gen):
        images = await gen.generate(PROMPT, size=(768, 1024), n=1)
    assert images == [RESULT_PNG]
    req = _the_request(provider, "/v1/images/generations")
    assert json.loads(req.body) == {
        "model": "flux-dev",
        "prompt": PROMPT,
        "size": "768x1024",
        "n": 1,
        "response_format": "b64_json",
    }


async def test_edit_sends_only_a_bounded_face_crop(provider: _Provider) -> None:
    rng = np.random.default_rng(1)
    photo = rng.integers(0, 256, (3000, 4000, 3), dtype=np.uint8)  # a 12 MP upload
    box = (1800.0, 1000.0, 2400.0, 1800.0)  # the face: 600 x 800 px
    photo[1000:1800, 1800:2400] = (210, 160, 140)  # skin-coloured, unlike the noise around
    async with aclosing(aigen.OpenAIImageGenerator(_settings(provider, max_crop_side=512, crop_margin=0.25))) as gen:
        images = await gen.edit_face(photo, box, PROMPT, size=(512, 512))
    assert images == [RESULT_PNG]
    req = _the_request(provider, "/v1/images/edits")
    parts = _multipart(req)
    assert set(parts) == {"model", "prompt", "size", "n", "response_format", "image"}
    sent = cv2.imdecode(np.frombuffer(parts["image"], np.uint8), cv2.IMREAD_COLOR)
    assert sent is not None
    # The box grown by 25 % (900 x 1200) and scaled to 512 on its long side: 384 x 512.
    assert sent.shape[:2] == (512, 384)
    # Its middle is the face, not the surrounding photo.
    centre = sent[156:356, 92:292].reshape(-1, 3).mean(axis=0)[::-1]  # BGR -> RGB
    np.testing.assert_allclose(centre, (210, 160, 140), atol=2)
    # Far smaller than the photo itself (36 MB raw): only the crop left the service.
    assert len(req.body) < 1_000_000


async def test_url_results_are_fetched_without_the_key(provider: _Provider) -> None:
    provider.mode = "url"
    async with aclosing(aigen.OpenAIImageGenerator(_settings(provider))) as gen:
        images = await gen.generate(PROMPT)
    assert images == [RESULT_PNG]
    _post, get = provider.seen
    assert get.method == "GET" and get.path == "/cdn/result.png"
    assert "Authorization" not in get.headers


async def test_timeout_becomes_a_clear_error(provider: _Provider, caplog: pytest.LogCaptureFixture) -> None:
    provider.delay_s = 1.5
    caplog.set_level(logging.DEBUG)
    async with aclosing(aigen.OpenAIImageGenerator(_settings(provider, timeout_s=0.3))) as gen:
        with pytest.raises(aigen.AiGenTimeout, match=r"timed out after 0\.3 s") as info:
            await gen.generate(PROMPT)
    assert info.value.code == "AIGEN_TIMEOUT"
    assert API_KEY not in caplog.text and PROMPT not in caplog.text


@pytest.mark.parametrize(
    ("status", "error", "code"),
    [
        (429, aigen.AiGenRateLimited, "AIGEN_RATE_LIMITED"),
        (401, aigen.AiGenError, "AIGEN_UNAVAILABLE"),
        (400, aigen.AiGenRejected, "AIGEN_REJECTED"),
        (503, aigen.AiGenError, "AIGEN_UNAVAILABLE"),
    ],
)
async def test_provider_errors_map_to_domain_errors(
    provider: _Provider, caplog: pytest.LogCaptureFixture, status: int, error: type[Exception], code: str
) -> None:
    provider.status = status
    caplog.set_level(logging.DEBUG)
    async with aclosing(aigen.OpenAIImageGenerator(_settings(provider))) as gen:
        with pytest.raises(error) as info:
            await gen.generate(PROMPT)
    assert info.value.code == code  # type: ignore[attr-defined]
    assert str(status) in str(info.value)
    # The provider echoed the prompt in its error message: neither it nor the key leaks.
    for text in (str(info.value), caplog.text):
        assert API_KEY not in text and PROMPT not in text
    if status == 400:
        assert "content_policy_violation" in str(info.value)


@pytest.mark.parametrize("mode", ["not_image", "html"])
async def test_malformed_answers_are_refused(provider: _Provider, mode: str) -> None:
    provider.mode = mode
    async with aclosing(aigen.OpenAIImageGenerator(_settings(provider))) as gen:
        with pytest.raises(aigen.AiGenBadResponse):
            await gen.generate(PROMPT)


async def test_unreachable_provider() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connections are refused
        async with aclosing(
            aigen.OpenAIImageGenerator(aigen.AiGenSettings(base_url=f"http://127.0.0.1:{port}/v1", api_key=API_KEY, model="m"))
        ) as gen:
            with pytest.raises(aigen.AiGenError, match="unreachable"):
                await gen.generate(PROMPT)


async def test_requests_are_checked_before_anything_is_sent(provider: _Provider) -> None:
    photo = np.zeros((100, 100, 3), np.uint8)
    async with aclosing(aigen.OpenAIImageGenerator(_settings(provider))) as gen:
        with pytest.raises(aigen.InvalidArgument):
            await gen.generate("  ")
        with pytest.raises(aigen.InvalidArgument):
            await gen.generate(PROMPT, n=9)
        with pytest.raises(aigen.InvalidArgument):
            await gen.edit_face(photo, (500.0, 500.0, 600.0, 600.0), PROMPT)
    assert provider.seen == []


async def test_masked_edit_sends_the_crop_and_its_mask_only(provider: _Provider) -> None:
    rng = np.random.default_rng(2)
    photo = rng.integers(0, 256, (3000, 4000, 3), dtype=np.uint8)  # a 12 MP photo
    box = (1600.0, 600.0, 2600.0, 1600.0)  # the head: 1000 x 1000 px
    region = np.zeros(photo.shape[:2], np.float32)
    region[600:1000, 1600:2600] = 1.0  # the hair: the top 40 % of the head box
    async with aclosing(aigen.OpenAIImageGenerator(_settings(provider, max_crop_side=512, crop_margin=0.0))) as gen:
        images = await gen.edit_region(photo, box, region, PROMPT, size=(512, 512))
    assert images == [RESULT_PNG]
    parts = _multipart(_the_request(provider, "/v1/images/edits"))
    assert set(parts) == {"model", "prompt", "size", "n", "response_format", "image", "mask"}
    sent = cv2.imdecode(np.frombuffer(parts["image"], np.uint8), cv2.IMREAD_COLOR)
    mask = cv2.imdecode(np.frombuffer(parts["mask"], np.uint8), cv2.IMREAD_UNCHANGED)
    assert sent is not None and mask is not None
    assert sent.shape[:2] == mask.shape[:2] == (512, 512)  # the head box, scaled to 512
    assert mask.shape[2] == 4 and not mask[..., :3].any()  # no photo pixel in the mask
    # Transparent (to be painted) over the hair, opaque (kept) below it.
    assert (mask[:200, :, 3] == 0).all() and (mask[210:, :, 3] == 255).all()
    async with aclosing(aigen.OpenAIImageGenerator(_settings(provider))) as gen:
        with pytest.raises(aigen.InvalidArgument, match="region"):
            await gen.edit_region(photo, box, region[:10], PROMPT)
        with pytest.raises(aigen.InvalidArgument, match="empty"):
            await gen.edit_region(photo, box, np.zeros_like(region), PROMPT)
    assert len(provider.seen) == 1  # refused before anything was sent


async def test_masked_edit_takes_a_margin_per_call(provider: _Provider) -> None:
    # An outfit's edit sends exactly its torso box (margin 0), whatever margin the face crops use.
    photo = np.zeros((400, 300, 3), np.uint8)
    box = (50.0, 250.0, 250.0, 400.0)
    region = np.zeros(photo.shape[:2], np.float32)
    region[260:400, 60:240] = 1.0
    async with aclosing(aigen.OpenAIImageGenerator(_settings(provider, crop_margin=0.35))) as gen:
        await gen.edit_region(photo, box, region, PROMPT, margin=0.0)
        with pytest.raises(aigen.InvalidArgument, match="margin"):
            await gen.edit_region(photo, box, region, PROMPT, margin=-0.1)
    parts = _multipart(_the_request(provider, "/v1/images/edits"))
    sent = cv2.imdecode(np.frombuffer(parts["image"], np.uint8), cv2.IMREAD_COLOR)
    assert sent.shape[:2] == (150, 200)  # the box itself, not grown by 35 %
    assert len(provider.seen) == 1
