"""Fixed-window rate limits per device and per IP: Redis when configured, process memory otherwise."""

from __future__ import annotations

import time
from typing import Protocol


class RateLimiter(Protocol):
    async def hit(self, key: str, limit: int, window: int = 60) -> int:
        """Count a request; return 0 when allowed, else seconds until the window resets."""
        ...


class MemoryRateLimiter:
    def __init__(self) -> None:
        self._windows: dict[str, tuple[int, int]] = {}

    async def hit(self, key: str, limit: int, window: int = 60) -> int:
        now = int(time.time())
        start = now - now % window
        current_start, count = self._windows.get(key, (start, 0))
        if current_start != start:
            count = 0
            if len(self._windows) > 100_000:
                # Old windows are worthless; drop them rather than grow without bound.
                self._windows = {k: v for k, v in self._windows.items() if v[0] == start}
        count += 1
        self._windows[key] = (start, count)
        return 0 if count <= limit else start + window - now


class RedisRateLimiter:
    def __init__(self, url: str) -> None:
        import redis.asyncio as redis

        self._redis = redis.from_url(url)

    async def hit(self, key: str, limit: int, window: int = 60) -> int:
        now = int(time.time())
        start = now - now % window
        bucket = f"likeness:rl:{key}:{start}"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(bucket)
            pipe.expire(bucket, window + 5)
            count, _ = await pipe.execute()
        return 0 if int(count) <= limit else start + window - now

    async def close(self) -> None:
        await self._redis.aclose()
