"""Garment materials registered by operators, kept in Postgres (not personal data)."""

from __future__ import annotations

import io
import json

import numpy as np
from PIL import Image
from psycopg_pool import AsyncConnectionPool

from likeness_render.domain.outfits import Garment, make_garment


def encode_rgba_png(rgba: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgba), "RGBA").save(out, format="PNG")
    return out.getvalue()


class OutfitRepository:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    async def save(self, g: Garment) -> None:
        anchors = json.dumps({"neck": g.neck, "left_shoulder": g.left_shoulder, "right_shoulder": g.right_shoulder})
        async with self.pool.connection() as conn:
            await conn.execute(
                "INSERT INTO outfits (outfit_id, name, description, image, anchors) VALUES (%s, %s, %s, %s, %s)"
                " ON CONFLICT (outfit_id) DO UPDATE SET name = EXCLUDED.name, description = EXCLUDED.description,"
                " image = EXCLUDED.image, anchors = EXCLUDED.anchors",
                (g.id, g.name, g.description, encode_rgba_png(g.rgba), anchors),
            )

    async def load_all(self) -> list[Garment]:
        async with self.pool.connection() as conn:
            rows = await (
                await conn.execute("SELECT outfit_id, name, description, image, anchors FROM outfits ORDER BY created_at")
            ).fetchall()
        out = []
        for outfit_id, name, description, image, anchors in rows:
            with Image.open(io.BytesIO(bytes(image))) as img:
                rgba = np.asarray(img.convert("RGBA"), dtype=np.uint8)
            out.append(
                make_garment(
                    name,
                    rgba,
                    tuple(anchors["neck"]),
                    tuple(anchors["left_shoulder"]),
                    tuple(anchors["right_shoulder"]),
                    garment_id=outfit_id,
                    description=description,
                )
            )
        return out
