"""Templates registered by operators, kept in Postgres (templates are not personal data)."""

from __future__ import annotations

import json

import numpy as np
from psycopg_pool import AsyncConnectionPool

from likeness_imaging.codec import decode_rgb, encode_png
from likeness_render.domain.templates import Template, png_alpha


def _material_png(t: Template) -> bytes:
    """The template as one PNG: RGBA when it has a matte."""
    if t.alpha is None:
        return encode_png(np.ascontiguousarray(t.image))
    a = np.clip(t.alpha * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return encode_png(np.ascontiguousarray(np.dstack([t.image, a])))


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
                (t.id, t.name, t.style, _material_png(t), meshes, t.width, t.height),
            )

    async def load_all(self) -> list[Template]:
        async with self.pool.connection() as conn:
            rows = await (
                await conn.execute("SELECT template_id, name, style, image, meshes, width, height FROM templates ORDER BY created_at")
            ).fetchall()
        out = []
        for template_id, name, style, image, meshes, width, height in rows:
            data = bytes(image)
            out.append(
                Template(
                    template_id,
                    name,
                    style,
                    decode_rgb(data),
                    tuple(np.asarray(m, np.float64) for m in meshes),
                    width,
                    height,
                    alpha=png_alpha(data),
                )
            )
        return out
