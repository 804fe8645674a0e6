"""Render's stored results seen through the DataHolder contract (the shared sealed-store view)."""

from __future__ import annotations

from likeness_platform.sealed_store import SealedHolder
from likeness_render.adapters.results import ResultStore, StoredResult


class RenderHolder(SealedHolder[StoredResult]):
    def __init__(self, results: ResultStore) -> None:
        super().__init__("render", results.store)
