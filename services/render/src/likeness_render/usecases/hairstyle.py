"""Hairstyles: the hair of a photo replaced by one of the catalog's styles."""

from __future__ import annotations

import asyncio
from typing import Any

from likeness_platform.errors import FailedPrecondition, InvalidArgument, NotFound
from likeness_render.domain import hair
from likeness_render.domain.results import StoredResult
from likeness_render.usecases.shared import Shared


class Hairstyles:
    def __init__(self, shared: Shared) -> None:
        self.shared = shared

    async def change_hairstyle(self, subject_id: str, ref: Any, hairstyle_id: str) -> tuple[StoredResult, bytes]:
        if hairstyle_id not in hair.HAIRSTYLES:
            raise NotFound(f"no hairstyle {hairstyle_id!r}; list them with GET /v1/hairstyles", "HAIRSTYLE_NOT_FOUND")
        image, mesh = await self.shared.face_mesh(ref, subject_id, "hairstyle", "no face was found in the photo")
        mask = await asyncio.to_thread(self.shared.segment, image)
        try:
            result = await asyncio.to_thread(hair.change_hairstyle, image, mesh, mask, hairstyle_id)
        except hair.HatPresent as exc:
            raise FailedPrecondition(str(exc), "HAT_PRESENT") from None
        except hair.HairError as exc:
            raise InvalidArgument(str(exc), "HAIRSTYLE_FAILED") from None
        return await self.shared.save_jpeg(subject_id, "hairstyle", result, {"hairstyle_id": hairstyle_id})
