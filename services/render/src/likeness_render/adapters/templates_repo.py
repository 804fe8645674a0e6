"""Templates registered by operators, kept in Postgres (templates are not personal data)."""

from __future__ import annotations

import json

import numpy as np
from psycopg_pool import AsyncConnectionPool

from likeness_imaging.codec import decode_rgb, encode_png
from likeness_render.domain.templates import Template


class TemplateRepository:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    async def save(self, t: Template) -> None:
        meshes = json.dumps([m.tolist() for m in t.meshes])
        async with self.pool.connection() as conn:
            await conn.execute(
                "INSERT INTO templates (template_id, name, style, image, meshes, width, height) VALUES (%s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (template_id) DO UPDATE SET name = EXCLUDED.name, style = EXCLUDED.style, image = EXCLUDED.image,"
                " meshes = EXCLUDED.meshes, width = EXCLUDED.width, height = EXCLUDED.height",
                (t.id, t.name, t.style, encode_png(np.ascontiguousarray(t.image)), meshes, t.width, t.height),
            )

    async def load_all(self) -> list[Template]:
        async with self.pool.connection() as conn:
            rows = await (
                await conn.execute("SELECT template_id, name, style, image, meshes, width, height FROM templates ORDER BY created_at")
            ).fetchall()
        out = []
        for template_id, name, style, image, meshes, width, height in rows:
            out.append(
                Template(
                    template_id, name, style, decode_rgb(bytes(image)), tuple(np.asarray(m, np.float64) for m in meshes), width, height
                )
            )
        return out
