"""Memory-only images: bound to their subject, gone at expiry, oldest evicted first when memory is full."""

from __future__ import annotations

import pytest

from likeness_gateway.domain import inline_store
from likeness_gateway.domain.inline_store import InlineImages


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(inline_store.time, "time", fake)
    return fake


def test_an_image_is_served_to_its_subject_only(clock: Clock) -> None:
    store = InlineImages(ttl_seconds=600)
    expires = store.put("u1", "alice", b"jpeg", meta={"passed": 1})
    assert expires == clock.now + 600
    assert store.get("u1", "alice") == b"jpeg"
    assert store.get("u1", "bob") is None and store.item("u1", "bob") is None
    assert store.get("u2", "alice") is None
    assert store.item("u1", "alice").meta == {"passed": 1}


def test_an_image_is_gone_at_its_expiry(clock: Clock) -> None:
    store = InlineImages(ttl_seconds=600)
    store.put("u1", "alice", b"jpeg")
    clock.now += 599.9
    assert store.get("u1", "alice") == b"jpeg" and store.count("alice") == 1
    clock.now += 0.1
    assert store.get("u1", "alice") is None and store.count("alice") == 0


def test_expired_images_leave_memory_even_if_nobody_asks_for_them(clock: Clock) -> None:
    store = InlineImages(ttl_seconds=10)
    store.put("old", "alice", b"x" * 100)
    clock.now += 10
    store.put("new", "bob", b"y")
    assert list(store._items) == ["new"]


def test_when_full_the_oldest_images_are_evicted_first(clock: Clock) -> None:
    store = InlineImages(ttl_seconds=600, max_bytes=10)
    store.put("a", "alice", b"1234")
    store.put("b", "bob", b"1234")
    store.put("c", "carol", b"123")  # 11 bytes would not fit: "a" goes
    assert store.get("a", "alice") is None
    assert store.get("b", "bob") == b"1234" and store.get("c", "carol") == b"123"
    assert sum(len(i.data) for i in store._items.values()) <= 10


def test_forget_subject_removes_only_that_subjects_images(clock: Clock) -> None:
    store = InlineImages(ttl_seconds=600)
    store.put("a1", "alice", b"1")
    store.put("a2", "alice", b"2")
    store.put("b1", "bob", b"3")
    assert store.forget_subject("alice") == 2
    assert store.count("alice") == 0 and store.get("a1", "alice") is None
    assert store.get("b1", "bob") == b"3"
    assert store.forget_subject("alice") == 0


def test_the_stored_meta_is_a_copy(clock: Clock) -> None:
    store = InlineImages(ttl_seconds=600)
    meta = {"score": 1}
    store.put("u1", "alice", b"x", meta=meta)
    meta["score"] = 2
    assert store.item("u1", "alice").meta == {"score": 1}
