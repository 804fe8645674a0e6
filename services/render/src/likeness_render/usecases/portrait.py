"""Portraits: the user's face fused into a template (and optionally restyled by an AI provider)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from likeness_platform.errors import InvalidArgument
from likeness_render.domain import fusion
from likeness_render.domain.results import StoredResult
from likeness_render.usecases.restyle import AI_PURPOSE, Restyler
from likeness_render.usecases.shared import Shared
from likeness_render.usecases.templates import Templates


class Portraits:
    def __init__(self, shared: Shared, templates: Templates, restyler: Restyler) -> None:
        self.shared = shared
        self.templates = templates
        self.restyler = restyler

    async def create_portrait(
        self, subject_id: str, refs: Sequence[Any], template_id: str, strength: int, face_index: int, ai_prompt: str = ""
    ) -> tuple[StoredResult, bytes]:
        template = await self.templates.get(template_id)
        if ai_prompt and self.restyler.consent is not None:
            # Refuse before any work when the person has not consented; checked again right before the provider call.
            await self.restyler.consent.require(subject_id, AI_PURPOSE)
        if not refs:
            raise InvalidArgument("give at least one image", "MISSING_IMAGE")
        if not 0 <= strength <= 100:
            raise InvalidArgument("strength is 0..100", "INVALID_STRENGTH")
        if face_index < 0 or face_index + len(refs) > template.face_count:
            raise InvalidArgument(f"template {template.id!r} has {template.face_count} face(s)", "INVALID_FACE_INDEX")
        users = []
        for ref in refs:
            users.append(await self.shared.face_mesh(ref, subject_id, "portrait", "no face was found in one of the photos"))
        result = template.image.copy()
        for offset, user in enumerate(users):
            try:
                fused = await self.shared.compute(
                    fusion.fuse, result, template.meshes, [user], strength, face_index + offset, template.alpha
                )
            except fusion.FusionError as exc:
                raise InvalidArgument(str(exc), "FUSION_FAILED") from None
            result = fused.image
        if ai_prompt:
            mesh = template.meshes[face_index]
            box = (float(mesh[:, 0].min()), float(mesh[:, 1].min()), float(mesh[:, 0].max()), float(mesh[:, 1].max()))
            result = await self.restyler.restyle(subject_id, result, box, ai_prompt)
        return await self.shared.save_jpeg(subject_id, "portrait", result, {"template_id": template.id})
