"""Hairstyles: the hair of a photo replaced by one of the catalog's styles."""

from __future__ import annotations

from typing import Any

import numpy as np

from likeness_platform.errors import FailedPrecondition, InvalidArgument, NotFound
from likeness_render.domain import hair
from likeness_render.domain.results import StoredResult
from likeness_render.usecases.restyle import Restyler
from likeness_render.usecases.shared import Shared


class Hairstyles:
    def __init__(self, shared: Shared, restyler: Restyler | None = None) -> None:
        self.shared = shared
        self.restyler = restyler or Restyler()

    async def change_hairstyle(self, subject_id: str, ref: Any, hairstyle_id: str, ai_prompt: str = "") -> tuple[StoredResult, bytes]:
        if hairstyle_id not in hair.HAIRSTYLES:
            raise NotFound(f"no hairstyle {hairstyle_id!r}; list them with GET /v1/hairstyles", "HAIRSTYLE_NOT_FOUND")
        if ai_prompt:
            # Refuse before any work when the AI step may not run; checked again right before the provider call.
            await self.restyler.require_consent(subject_id)
        image, mesh = await self.shared.face_mesh(ref, subject_id, "hairstyle", "no face was found in the photo")
        mask = await self.shared.compute(self.shared.segment, image)
        try:
            changed = await self.shared.compute(hair.restyle_hair, image, mesh, mask, hairstyle_id)
        except hair.HatPresent as exc:
            raise FailedPrecondition(str(exc), "HAT_PRESENT") from None
        except hair.HairError as exc:
            raise InvalidArgument(str(exc), "HAIRSTYLE_FAILED") from None
        result = changed.image
        if ai_prompt:
            # The provider refines the new hair only: the head crop and the hair's mask go out.
            region = np.clip(changed.coverage * 1.5, 0.0, 1.0)
            ys, xs = np.nonzero(region > 0.5)
            if len(xs) == 0:
                raise InvalidArgument("the hairstyle left no hair to refine", "HAIRSTYLE_FAILED")
            box = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
            result = await self.restyler.restyle_region(subject_id, result, box, region, ai_prompt)
        return await self.shared.save_jpeg(subject_id, "hairstyle", result, {"hairstyle_id": hairstyle_id})
