"""Outfits registered by operators, kept in Postgres (outfits are not personal data)."""

from __future__ import annotations

import json
from typing import Any

from psycopg_pool import AsyncConnectionPool

from likeness_render.domain.outfits import Layer, Outfit


def _layers_json(outfit: Outfit) -> str:
    return json.dumps(
        [{"colour": list(layer.colour), "polygon": [list(p) for p in layer.polygon], "shade": layer.shade} for layer in outfit.layers]
    )


def _outfit(outfit_id: str, name: str, layers: Any) -> Outfit:
    return Outfit(
        outfit_id,
        name,
        tuple(
            Layer(tuple(layer["colour"]), tuple((float(x), float(y)) for x, y in layer["polygon"]), float(layer["shade"]))
            for layer in layers
        ),
    )


class OutfitRepository:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    async def save(self, outfit: Outfit) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(
                "INSERT INTO outfits (outfit_id, name, layers) VALUES (%s, %s, %s)"
                " ON CONFLICT (outfit_id) DO UPDATE SET name = EXCLUDED.name, layers = EXCLUDED.layers",
                (outfit.outfit_id, outfit.name, _layers_json(outfit)),
            )

    async def get(self, outfit_id: str) -> Outfit | None:
        """One outfit (another replica may have registered it since this one started)."""
        async with self.pool.connection() as conn:
            row = await (await conn.execute("SELECT outfit_id, name, layers FROM outfits WHERE outfit_id = %s", (outfit_id,))).fetchone()
        return _outfit(*row) if row else None

    async def load_all(self) -> list[Outfit]:
        async with self.pool.connection() as conn:
            rows = await (await conn.execute("SELECT outfit_id, name, layers FROM outfits ORDER BY created_at")).fetchall()
        return [_outfit(*row) for row in rows]
