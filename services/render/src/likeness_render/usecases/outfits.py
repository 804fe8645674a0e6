"""Outfits: the garment catalog (demo set made at start, operators' materials), and what a photo needs to wear one."""

from __future__ import annotations

import asyncio
import io
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image

from likeness_platform.errors import FailedPrecondition, InvalidArgument, NotFound
from likeness_render.domain import outfits
from likeness_render.domain.face import FaceGeometry
from likeness_render.domain.outfits import Body, Garment, GarmentStore, Point
from likeness_render.usecases.ports import RGB

# Shoulders are looked for by one photo at a time (the model holds a lock anyway); more wait here,
# off the event loop, rather than piling threads up.
POSE_CONCURRENCY = 1
MAX_OUTFIT_PIXELS = outfits.MAX_SIDE * outfits.MAX_SIDE


class TooLittleTorso(FailedPrecondition):
    default_code = "OUTFIT_TOO_LITTLE_TORSO"


class Outfits:
    def __init__(self, store: GarmentStore, pose: Callable[[RGB], Body | None] | None, repo: Any = None) -> None:
        self.store = store
        self.pose = pose
        self.repo = repo
        self._pose_slots = asyncio.Semaphore(POSE_CONCURRENCY)

    def list_garments(self) -> list[Garment]:
        return self.store.list_garments()

    def get(self, outfit_id: str) -> Garment:
        found = self.store.get(outfit_id)
        if found is None:
            raise NotFound(f"no outfit {outfit_id!r}; list them with GET /v1/outfits", "OUTFIT_NOT_FOUND")
        return found

    async def wear(self, outfit_id: str, preview: RGB, source_size: tuple[int, int], face: FaceGeometry) -> outfits.Wear:
        """The garment and the person's shoulders in the source's pixels (found on `preview`, a smaller
        copy); TooLittleTorso when the photo does not show enough of the shoulders."""
        garment = self.get(outfit_id)
        if self.pose is None:
            raise FailedPrecondition("outfits are not available: the pose model is not loaded", "OUTFITS_UNAVAILABLE")
        async with self._pose_slots:
            body = await asyncio.to_thread(self.pose, preview)
        k = source_size[0] / preview.shape[1]
        body = body.scaled(k) if body is not None else None
        problem = outfits.torso_problem(body, source_size, face)
        if problem is not None or body is None:
            raise TooLittleTorso(problem or "no shoulders were found in the photo")
        return outfits.Wear(garment, body)

    async def register(
        self, name: str, png: bytes, neck: Point, left_shoulder: Point, right_shoulder: Point, description: str = ""
    ) -> Garment:
        """A garment material from an RGBA PNG and its anchors, checked, kept and put in the catalog."""
        rgba = await asyncio.to_thread(_decode_rgba, png)
        try:
            garment = await asyncio.to_thread(outfits.make_garment, name, rgba, neck, left_shoulder, right_shoulder, None, description)
        except outfits.OutfitError as exc:
            raise InvalidArgument(str(exc), "INVALID_OUTFIT") from None
        if self.repo is not None:
            await self.repo.save(garment)
        self.store.put(garment)
        return garment


def _decode_rgba(data: bytes) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                if img.format != "PNG":
                    raise InvalidArgument("an outfit image must be a PNG with transparency", "INVALID_OUTFIT")
                if img.width * img.height > MAX_OUTFIT_PIXELS:
                    raise InvalidArgument(
                        f"the outfit image is {img.width}x{img.height}; at most {outfits.MAX_SIDE} px a side", "INVALID_OUTFIT"
                    )
                if "A" not in img.getbands() and "transparency" not in img.info:
                    raise InvalidArgument("the outfit image has no transparency; use an RGBA PNG", "INVALID_OUTFIT")
                return np.asarray(img.convert("RGBA"), dtype=np.uint8).copy()
    except (OSError, ValueError, Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise InvalidArgument("the outfit image cannot be decoded", "CORRUPT_IMAGE") from None
