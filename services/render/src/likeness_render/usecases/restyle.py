"""The AI restyle of a portrait: an image provider redraws the face crop, which is pasted back."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

import cv2
import numpy as np

from likeness_platform.errors import FailedPrecondition
from likeness_render.adapters.aigen import crop_box
from likeness_render.usecases.ports import RGB
from likeness_render.usecases.shared import decode

# The consent purpose (privacy's domain/rights.py) that sending a face to a third-party AI provider needs.
AI_PURPOSE = "ai_generation_third_party"


class ConsentPort(Protocol):
    async def require(self, subject_id: str, purpose: str) -> None: ...


class Restyler:
    def __init__(self, generator: Any = None, consent: ConsentPort | None = None) -> None:
        # AI image provider (adapters.aigen); None when not configured.
        self.generator = generator
        # Asked right before anything leaves for the provider; None: the provider is never called.
        self.consent = consent

    async def restyle(self, subject_id: str, image: RGB, box: tuple[float, float, float, float], prompt: str) -> RGB:
        """`image` with the face in `box` redrawn to `prompt`; the answer is kept like any result (never longer).

        The person's consent is checked at this moment (not cached), so a withdrawal stops the next call."""
        if self.generator is None:
            raise FailedPrecondition("AI generation is not configured on this server (LIKENESS_AIGEN_*)", "AIGEN_DISABLED")
        if self.consent is None:
            raise FailedPrecondition("no consent record is reachable from this server", "CONSENT_UNAVAILABLE")
        await self.consent.require(subject_id, AI_PURPOSE)
        answers = await self.generator.edit_face(image, box, prompt[:1000], (512, 512), 1)
        styled = await asyncio.to_thread(decode, answers[0])
        x0, y0, x1, y1 = crop_box(image.shape, box, self.generator.crop_margin)
        out = image.copy()
        out[y0:y1, x0:x1] = cv2.resize(styled, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
        return out

    async def restyle_region(
        self,
        subject_id: str,
        image: RGB,
        box: tuple[float, float, float, float],
        region: Any,
        prompt: str,
        margin: float | None = None,
    ) -> RGB:
        """`image` with the provider's masked edit of `region` (H, W, 0..1: the hair, an
        outfit) pasted back under that region only, feathered inward; the rest stays as it was.
        Only the crop around `box` (grown by `margin` of its size; None: the configured
        margin) and its mask are sent, after the person's consent is checked at this moment."""
        if self.generator is None:
            raise FailedPrecondition("AI generation is not configured on this server (LIKENESS_AIGEN_*)", "AIGEN_DISABLED")
        if self.consent is None:
            raise FailedPrecondition("no consent record is reachable from this server", "CONSENT_UNAVAILABLE")
        await self.consent.require(subject_id, AI_PURPOSE)
        answers = await self.generator.edit_region(image, box, region, prompt[:1000], (512, 512), 1, margin)
        styled = await asyncio.to_thread(decode, answers[0])
        m = self.generator.crop_margin if margin is None else margin
        x0, y0, x1, y1 = crop_box(image.shape, box, m)
        return await asyncio.to_thread(_paste_under, image, styled, (x0, y0, x1, y1), region)

    async def require_consent(self, subject_id: str) -> None:
        """Refuses early (before any work) when the AI step cannot or may not run for this person."""
        if self.generator is None:
            raise FailedPrecondition("AI generation is not configured on this server (LIKENESS_AIGEN_*)", "AIGEN_DISABLED")
        if self.consent is None:
            raise FailedPrecondition("no consent record is reachable from this server", "CONSENT_UNAVAILABLE")
        await self.consent.require(subject_id, AI_PURPOSE)


def _paste_under(image: RGB, styled: RGB, crop: tuple[int, int, int, int], region: Any) -> RGB:
    """The answer blended in under `region` only: the feathering runs inward (the soft edge is
    inside the region), so no pixel outside it changes."""
    x0, y0, x1, y1 = crop
    answer = cv2.resize(styled, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA).astype(np.float32)
    r = np.clip(np.asarray(region[y0:y1, x0:x1], dtype=np.float32), 0.0, 1.0)
    soft = np.asarray(cv2.GaussianBlur(r, (0, 0), max(1.0, 0.004 * max(x1 - x0, y1 - y0))), dtype=np.float32)
    r = np.minimum(r, soft)[..., None]
    out = image.copy()
    out[y0:y1, x0:x1] = np.clip(image[y0:y1, x0:x1].astype(np.float32) * (1.0 - r) + answer * r + 0.5, 0, 255).astype(np.uint8)
    return out
