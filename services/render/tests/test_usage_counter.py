"""Render counts every generation it serves for the usage statistics: by channel, off the call path."""

from __future__ import annotations

import asyncio

from likeness_render.adapters.usage import MAX_PENDING, UsageCounter, channel_of


def test_the_channel_comes_from_the_certificate_and_the_client_name() -> None:
    assert channel_of("gateway", {"x-likeness-app-version": "3.1.0"}) == ("http", "3.1.0")
    assert channel_of("operator/dev", {"x-likeness-client": "likeness-cli/0.1.0"}) == ("cli", "0.1.0")
    assert channel_of("operator/dev", {"x-likeness-client": "likeness-python/0.1.0"}) == ("grpc", "0.1.0")
    # Only the gateway's word makes a call an app's; anyone else claiming an app version is a gRPC client.
    assert channel_of("operator/dev", {"x-likeness-app-version": "3.1.0"}) == ("grpc", "")


async def test_counts_are_sent_in_the_background_and_failures_do_not_reach_the_caller() -> None:
    sent: list[tuple[str, ...]] = []
    gate = asyncio.Event()

    async def send(*cell: str) -> None:
        await gate.wait()
        if cell[4] == "boom":
            raise ConnectionError("privacy is down")
        sent.append(cell)

    counter = UsageCounter(send)
    counter.count("http", "id_photo", "us-passport", "US", "ok", "1.0")
    counter.count("http", "id_photo", "us-passport", "US", "boom", "1.0")
    for _ in range(MAX_PENDING + 5):
        counter.count("grpc", "portrait", "", "", "ok", "")
    gate.set()
    await counter.drain()
    assert sent[0] == ("http", "id_photo", "us-passport", "US", "ok", "1.0")
    # A bounded backlog: what did not fit was dropped, not queued without end.
    assert len(sent) == MAX_PENDING - 1
