"""DataKeyCache: keys come from privacy once per TTL, are bounded in number and can be forgotten."""

from likeness_platform.crypto import DataKey, DataKeyCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_keys_are_fetched_once_per_ttl_and_forgotten_on_request() -> None:
    fetched: list[str] = []

    async def fetch(subject_id: str) -> DataKey:
        fetched.append(subject_id)
        return DataKey(key=bytes(32), key_id=f"{subject_id}-{len(fetched)}")

    clock = Clock()
    cache = DataKeyCache(fetch, ttl_seconds=30, timer=clock)
    first = await cache.get("s1")
    assert (await cache.get("s1")) is first
    clock.now += 29
    assert (await cache.get("s1")) is first
    assert fetched == ["s1"]
    clock.now += 2
    refreshed = await cache.get("s1")
    assert refreshed.key_id == "s1-2"
    cache.forget("s1")
    assert (await cache.get("s1")).key_id == "s1-3"
    assert fetched == ["s1", "s1", "s1"]


async def test_the_cache_holds_at_most_max_keys() -> None:
    async def fetch(subject_id: str) -> DataKey:
        return DataKey(key=bytes(32), key_id=subject_id)

    cache = DataKeyCache(fetch, ttl_seconds=30, max_keys=2)
    for subject in ("a", "b", "c"):
        await cache.get(subject)
    assert len(cache._keys) == 2
