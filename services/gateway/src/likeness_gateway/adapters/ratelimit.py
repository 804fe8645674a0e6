"""Per-device and per-IP rate limits on the `limits` library: Redis when configured, process memory otherwise."""

from __future__ import annotations

import functools
import math
import time
from typing import Protocol

from limits import RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import FixedWindowRateLimiter


class RateLimiter(Protocol):
    async def hit(self, key: str, limit: int, window: int = 60) -> int:
        """Count a request; return 0 when allowed, else seconds until the window resets."""
        ...


@functools.lru_cache(maxsize=64)
def _item(limit: int, window: int) -> RateLimitItemPerSecond:
    """The `limits` item of `limit` hits per `window` seconds, made once per pair (the settings name a handful)."""
    return RateLimitItemPerSecond(limit, window, namespace="likeness:rl")


class LimitsRateLimiter:
    """Fixed windows counted by a `limits` storage; a refused hit says how long until its window resets."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self._strategy = FixedWindowRateLimiter(storage)

    async def hit(self, key: str, limit: int, window: int = 60) -> int:
        item = _item(limit, window)
        if await self._strategy.hit(item, key):
            return 0
        reset_at, _ = await self._strategy.get_window_stats(item, key)
        return max(1, math.ceil(reset_at - time.time()))

    async def close(self) -> None:
        """Close the Redis connection pool (memory storage holds nothing to close)."""
        if isinstance(self._storage, RedisStorage):
            await self._storage.bridge.storage.aclose()


def MemoryRateLimiter() -> LimitsRateLimiter:
    """Limits counted in this process only (one replica, tests)."""
    return LimitsRateLimiter(MemoryStorage())


def RedisRateLimiter(url: str) -> LimitsRateLimiter:
    """Limits shared by every replica through Redis (`redis://host:port/db`), using redis-py's asyncio client."""
    return LimitsRateLimiter(RedisStorage(f"async+{url}", implementation="redispy"))
