"""The AI restyle asks for consent at the moment of the call: refused, the provider is never called."""

from __future__ import annotations

import numpy as np
import pytest

from likeness_platform.errors import FailedPrecondition
from likeness_render.adapters.consent import ConsentRequired
from likeness_render.usecases.restyle import AI_PURPOSE, Restyler


class Generator:
    crop_margin = 0.1

    def __init__(self) -> None:
        self.calls = 0

    async def edit_face(self, *_: object) -> list[bytes]:
        self.calls += 1
        raise AssertionError("the provider must not be called without consent")


class Consent:
    def __init__(self) -> None:
        self.granted: set[str] = set()
        self.asked: list[tuple[str, str]] = []

    async def require(self, subject_id: str, purpose: str) -> None:
        self.asked.append((subject_id, purpose))
        if subject_id not in self.granted:
            raise ConsentRequired("no consent")


async def test_no_consent_no_provider_call_and_each_call_asks_again() -> None:
    generator, consent = Generator(), Consent()
    restyler = Restyler(generator, consent)
    image = np.zeros((64, 64, 3), np.uint8)
    for _ in range(2):
        with pytest.raises(ConsentRequired) as refused:
            await restyler.restyle("s1", image, (10, 10, 40, 40), "oil painting")
        assert refused.value.code == "CONSENT_REQUIRED"
    assert generator.calls == 0 and consent.asked == [("s1", AI_PURPOSE)] * 2  # asked every time, nothing cached


async def test_without_a_consent_port_the_provider_is_never_used() -> None:
    generator = Generator()
    with pytest.raises(FailedPrecondition) as refused:
        await Restyler(generator, None).restyle("s1", np.zeros((8, 8, 3), np.uint8), (1, 1, 4, 4), "x")
    assert refused.value.code == "CONSENT_UNAVAILABLE" and generator.calls == 0
