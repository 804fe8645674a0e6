"""Image decodes in the faces service are bounded, like its model work."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from likeness.common.v1 import common_pb2
from likeness_faces import grpc_api


@pytest.mark.parametrize("bound", [1, 2])
async def test_at_most_the_bound_decode_at_once(monkeypatch: pytest.MonkeyPatch, bound: int) -> None:
    running, peak, lock = 0, 0, threading.Lock()

    def slow_decode(data: bytes, max_pixels: int) -> np.ndarray:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.05)
        with lock:
            running -= 1
        return np.zeros((8, 8, 3), np.uint8)

    monkeypatch.setattr(grpc_api, "decode_rgb", slow_decode)
    servicer = grpc_api.FacesServicer(analyzer=None, ingestion=None, max_pixels=10_000, max_concurrent_decodes=bound)  # type: ignore[arg-type]
    images = await asyncio.gather(*(servicer._image(common_pb2.ImageRef(data=b"jpeg"), "") for _ in range(6)))
    assert len(images) == 6 and peak == bound
