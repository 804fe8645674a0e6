"""AI image generation through an OpenAI-compatible HTTP API (``/images/generations`` and
``/images/edits``, as SiliconFlow and others serve it).

Off unless an operator configures a base URL, a key and a model. What leaves the service is
the prompt and, for edits, only a bounded crop around the face (and, for a masked edit of the
hair or an outfit, the crop's mask), never the uploaded photo nor any id.
Neither the key nor any image, prompt or provider body is ever logged or put in an error.
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
from typing import Any, Protocol

import cv2
import httpx
import numpy as np
import numpy.typing as npt
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from likeness_platform.errors import FailedPrecondition, InvalidArgument, ResourceExhausted, Unavailable

log = logging.getLogger(__name__)

RgbImage = npt.NDArray[np.uint8]
Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in image pixels

_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"RIFF", b"GIF8")


class AiGenError(Unavailable):
    """The generation provider failed; the service can go on without it."""

    default_code = "AIGEN_UNAVAILABLE"


class AiGenDisabled(FailedPrecondition):
    default_code = "AIGEN_DISABLED"


class AiGenTimeout(AiGenError):
    default_code = "AIGEN_TIMEOUT"


class AiGenRateLimited(ResourceExhausted):
    default_code = "AIGEN_RATE_LIMITED"


class AiGenRejected(InvalidArgument):
    """The provider refused the request itself (content policy, bad size, ...)."""

    default_code = "AIGEN_REJECTED"


class AiGenBadResponse(AiGenError):
    default_code = "AIGEN_BAD_RESPONSE"


class AiGenSettings(BaseSettings):
    """``LIKENESS_AIGEN_*`` environment variables. Empty base URL, key or model: generation is off."""

    model_config = SettingsConfigDict(env_prefix="LIKENESS_AIGEN_", extra="ignore", frozen=True)

    base_url: str = ""
    api_key: str = Field(default="", repr=False)
    model: str = ""
    # Some providers serve edits with another model; empty: the generation model.
    edit_model: str = ""
    timeout_s: float = Field(default=60.0, gt=0)
    # The face crop sent for an edit is at most this many pixels on its longer side.
    max_crop_side: int = Field(default=512, ge=8)
    # Room around the face box, as a fraction of its size, so hair and chin come along.
    crop_margin: float = Field(default=0.35, ge=0)
    # Generated images larger than this are refused (a misbehaving provider or URL).
    max_result_bytes: int = Field(default=20 * 1024 * 1024, gt=0)

    @field_validator("base_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @property
    def enabled(self) -> bool:
        return bool(self.base_url and self.api_key and self.model)


class ImageGenerator(Protocol):
    """Makes images from a prompt, or from a prompt and the face of a photo."""

    async def generate(self, prompt: str, size: tuple[int, int] = (1024, 1024), n: int = 1) -> list[bytes]: ...

    async def edit_face(
        self, image_rgb: RgbImage, face_box: Box, prompt: str, size: tuple[int, int] = (1024, 1024), n: int = 1
    ) -> list[bytes]: ...

    async def edit_region(
        self,
        image_rgb: RgbImage,
        box: Box,
        region: npt.NDArray[np.floating],
        prompt: str,
        size: tuple[int, int] = (1024, 1024),
        n: int = 1,
        margin: float | None = None,
    ) -> list[bytes]: ...

    async def aclose(self) -> None: ...


def make_image_generator(settings: AiGenSettings, transport: httpx.AsyncBaseTransport | None = None) -> OpenAIImageGenerator | None:
    """The configured generator, or None when generation is off."""
    return OpenAIImageGenerator(settings, transport=transport) if settings.enabled else None


def crop_box(shape: tuple[int, ...], face_box: Box, margin: float) -> tuple[int, int, int, int]:
    """The area an edit request sends: the face box grown by ``margin`` of its size, clipped to the image."""
    h, w = shape[:2]
    x1, y1, x2, y2 = face_box
    if not (x2 > x1 and y2 > y1):
        raise InvalidArgument("face box is empty")
    mx, my = (x2 - x1) * margin, (y2 - y1) * margin
    return max(0, int(np.floor(x1 - mx))), max(0, int(np.floor(y1 - my))), min(w, int(np.ceil(x2 + mx))), min(h, int(np.ceil(y2 + my)))


def face_crop_png(image_rgb: RgbImage, face_box: Box, margin: float, max_side: int) -> bytes:
    """PNG of the face box (grown by ``margin`` of its size, clipped to the image), scaled
    down to ``max_side``: the only pixels an edit request carries."""
    if image_rgb.dtype != np.uint8 or image_rgb.ndim != 3 or image_rgb.shape[2] != 3:
        raise InvalidArgument("image must be an (H, W, 3) uint8 RGB array")
    cx0, cy0, cx1, cy1 = crop_box(image_rgb.shape, face_box, margin)
    if cx1 - cx0 < 8 or cy1 - cy0 < 8:
        raise InvalidArgument("face box lies outside the image or is too small")
    crop = image_rgb[cy0:cy1, cx0:cx1]
    scale = min(1.0, max_side / max(crop.shape[:2]))
    if scale < 1.0:
        size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
        crop = np.asarray(cv2.resize(crop, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
    if not ok:
        raise InvalidArgument("face crop could not be encoded")
    return buf.tobytes()


def region_mask_png(shape: tuple[int, ...], box: Box, region: npt.NDArray[np.floating], margin: float, max_side: int) -> bytes:
    """The edit mask for the crop ``face_crop_png`` sends, as the OpenAI edits API wants it:
    an RGBA PNG of the crop's size whose transparent pixels (alpha 0) are where the provider
    may paint (``region`` > 0.5, e.g. the hair or the outfit); everything else is opaque
    black, to be kept. No pixel of the photo is in it."""
    if np.shape(region) != tuple(shape[:2]):
        raise InvalidArgument(f"edit region is {np.shape(region)}, the image {tuple(shape[:2])}")
    cx0, cy0, cx1, cy1 = crop_box(shape, box, margin)
    if cx1 - cx0 < 8 or cy1 - cy0 < 8:
        raise InvalidArgument("edit box lies outside the image or is too small")
    crop = np.asarray(region[cy0:cy1, cx0:cx1], dtype=np.float32)
    scale = min(1.0, max_side / max(crop.shape[:2]))
    if scale < 1.0:
        size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
        crop = np.asarray(cv2.resize(crop, size, interpolation=cv2.INTER_AREA), dtype=np.float32)
    if not (crop > 0.5).any():
        raise InvalidArgument("the edit region is empty inside the crop")
    rgba = np.zeros((*crop.shape, 4), np.uint8)
    rgba[..., 3] = np.where(crop > 0.5, 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    if not ok:
        raise InvalidArgument("edit mask could not be encoded")
    return buf.tobytes()


class OpenAIImageGenerator:
    """``ImageGenerator`` over an OpenAI-compatible API with one pooled ``httpx.AsyncClient``."""

    def __init__(self, settings: AiGenSettings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        if not settings.enabled:
            raise AiGenDisabled("AI generation is not configured (set LIKENESS_AIGEN_BASE_URL, _API_KEY and _MODEL)")
        self._s = settings
        self.crop_margin = settings.crop_margin
        timeout = httpx.Timeout(settings.timeout_s, connect=min(10.0, settings.timeout_s))
        # Redirects are not followed: a redirect could carry the Authorization header to
        # another host.
        self._api = httpx.AsyncClient(
            base_url=settings.base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {settings.api_key}"},
            timeout=timeout,
            follow_redirects=False,
            transport=transport,
        )
        # Result URLs point at the provider's CDN: fetched with no credentials at all.
        self._fetch = httpx.AsyncClient(timeout=timeout, follow_redirects=True, transport=transport)

    async def generate(self, prompt: str, size: tuple[int, int] = (1024, 1024), n: int = 1) -> list[bytes]:
        _check_request(prompt, size, n)
        body = {
            "model": self._s.model,
            "prompt": prompt,
            "size": f"{size[0]}x{size[1]}",
            "n": n,
            "response_format": "b64_json",
        }
        payload = await self._post("/images/generations", json=body)
        return await self._images(payload, n)

    async def edit_face(
        self, image_rgb: RgbImage, face_box: Box, prompt: str, size: tuple[int, int] = (1024, 1024), n: int = 1
    ) -> list[bytes]:
        _check_request(prompt, size, n)
        png = face_crop_png(image_rgb, face_box, self._s.crop_margin, self._s.max_crop_side)
        data = {
            "model": self._s.edit_model or self._s.model,
            "prompt": prompt,
            "size": f"{size[0]}x{size[1]}",
            "n": str(n),
            "response_format": "b64_json",
        }
        payload = await self._post("/images/edits", data=data, files={"image": ("face.png", png, "image/png")})
        return await self._images(payload, n)

    async def edit_region(
        self,
        image_rgb: RgbImage,
        box: Box,
        region: npt.NDArray[np.floating],
        prompt: str,
        size: tuple[int, int] = (1024, 1024),
        n: int = 1,
        margin: float | None = None,
    ) -> list[bytes]:
        """An edit of the crop around ``box`` (grown by ``margin`` of its size; None: the
        configured crop margin) where ``region`` (H, W, 0..1, the image's size) is set: the
        crop and its mask are all that is sent (both at most max_crop_side)."""
        _check_request(prompt, size, n)
        m = self._s.crop_margin if margin is None else margin
        if m < 0:
            raise InvalidArgument("crop margin must not be negative")
        png = face_crop_png(image_rgb, box, m, self._s.max_crop_side)
        mask = region_mask_png(image_rgb.shape, box, region, m, self._s.max_crop_side)
        data = {
            "model": self._s.edit_model or self._s.model,
            "prompt": prompt,
            "size": f"{size[0]}x{size[1]}",
            "n": str(n),
            "response_format": "b64_json",
        }
        files = {"image": ("image.png", png, "image/png"), "mask": ("mask.png", mask, "image/png")}
        payload = await self._post("/images/edits", data=data, files=files)
        return await self._images(payload, n)

    async def aclose(self) -> None:
        await self._api.aclose()
        await self._fetch.aclose()

    async def _post(self, path: str, **kwargs: Any) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            resp = await self._api.post(path, **kwargs)
        except httpx.TimeoutException:
            log.warning("aigen %s timed out after %.1f s", path, self._s.timeout_s)
            raise AiGenTimeout(f"image generation timed out after {self._s.timeout_s:g} s") from None
        except httpx.HTTPError as exc:
            log.warning("aigen %s failed: %s", path, type(exc).__name__)
            raise AiGenError(f"image generation service unreachable ({type(exc).__name__})") from None
        log.info("aigen %s -> %d in %.0f ms", path, resp.status_code, (time.perf_counter() - started) * 1000)
        if resp.status_code == 429:
            raise AiGenRateLimited("image generation is rate-limited by the provider (HTTP 429); retry later")
        if resp.status_code in (401, 403):
            # The operator's key is wrong, not the client's request.
            raise AiGenError(f"image generation provider refused the service's credentials (HTTP {resp.status_code})")
        if 400 <= resp.status_code < 500:
            raise AiGenRejected(f"image generation provider rejected the request (HTTP {resp.status_code}{_error_code(resp)})")
        if resp.status_code != 200:
            raise AiGenError(f"image generation provider failed (HTTP {resp.status_code})")
        try:
            payload = resp.json()
        except ValueError:
            raise AiGenBadResponse("image generation provider answered with something other than JSON") from None
        if not isinstance(payload, dict):
            raise AiGenBadResponse("image generation provider answered with unexpected JSON")
        return payload

    async def _images(self, payload: dict[str, Any], n: int) -> list[bytes]:
        # OpenAI answers {"data": [...]}; SiliconFlow {"images": [...]}.
        items = payload.get("data", payload.get("images"))
        if not isinstance(items, list) or not items:
            raise AiGenBadResponse("image generation provider returned no images")
        out = []
        for item in items[:n]:
            if not isinstance(item, dict):
                raise AiGenBadResponse("image generation provider returned a malformed image entry")
            if isinstance(item.get("b64_json"), str):
                try:
                    raw = base64.b64decode(item["b64_json"], validate=True)
                except (binascii.Error, ValueError):
                    raise AiGenBadResponse("image generation provider returned invalid base64") from None
            elif isinstance(item.get("url"), str):
                raw = await self._download(item["url"])
            else:
                raise AiGenBadResponse("image generation provider returned an entry with neither b64_json nor url")
            if len(raw) > self._s.max_result_bytes:
                raise AiGenBadResponse(f"generated image exceeds {self._s.max_result_bytes} bytes")
            if not raw.startswith(_IMAGE_MAGIC):
                raise AiGenBadResponse("image generation provider returned bytes that are not an image")
            out.append(raw)
        return out

    async def _download(self, url: str) -> bytes:
        if not url.startswith(("https://", "http://")):
            raise AiGenBadResponse("image generation provider returned a non-HTTP image URL")
        try:
            async with self._fetch.stream("GET", url) as resp:
                if resp.status_code != 200:
                    raise AiGenError(f"fetching the generated image failed (HTTP {resp.status_code})")
                chunks, total = [], 0
                async for chunk in resp.aiter_bytes():
                    total += len(chunk)
                    if total > self._s.max_result_bytes:
                        raise AiGenBadResponse(f"generated image exceeds {self._s.max_result_bytes} bytes")
                    chunks.append(chunk)
        except httpx.TimeoutException:
            raise AiGenTimeout(f"fetching the generated image timed out after {self._s.timeout_s:g} s") from None
        except httpx.HTTPError as exc:
            raise AiGenError(f"fetching the generated image failed ({type(exc).__name__})") from None
        return b"".join(chunks)


def _check_request(prompt: str, size: tuple[int, int], n: int) -> None:
    if not prompt.strip():
        raise InvalidArgument("prompt is empty")
    if len(prompt) > 4000:
        raise InvalidArgument("prompt is longer than 4000 characters")
    if not (64 <= size[0] <= 4096 and 64 <= size[1] <= 4096):
        raise InvalidArgument(f"size must be 64..4096 px per side, got {size[0]}x{size[1]}")
    if not 1 <= n <= 4:
        raise InvalidArgument(f"n must be 1..4, got {n}")


def _error_code(resp: httpx.Response) -> str:
    """The provider's machine-readable error code, if any (never its message: it may echo
    the prompt)."""
    try:
        body = resp.json()
    except ValueError:
        return ""
    err = body.get("error") if isinstance(body, dict) else None
    code = err.get("code") or err.get("type") if isinstance(err, dict) else None
    if isinstance(code, str | int) and str(code).replace("_", "").replace("-", "").isalnum():
        return f", {str(code)[:40]}"
    return ""
