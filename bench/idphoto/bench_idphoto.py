"""Upload-to-finished-ID-photo time for a 12 MP JPEG through the gateway, p50/p95 at concurrency 1 and 4.

Baseline in the same run: decoding the same JPEG once with Pillow (the least any pipeline must do)."""

from __future__ import annotations

import asyncio
import io
import statistics
import sys
import time
from pathlib import Path

import httpx
import numpy as np
from matplotlib import cbook
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from meshctl import DEVICE, start

ROUNDS = 12


def portrait_12mp() -> bytes:
    """Grace Hopper placed in a 4000x3000 photo as a phone would take it (head about 900 px)."""
    with cbook.get_sample_data("grace_hopper.jpg") as fh:
        face = Image.open(fh).convert("RGB").resize((1536, 1800), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (3000, 4000), (236, 236, 232))
    canvas.paste(face, (732, 900))
    noisy = np.clip(np.asarray(canvas, np.float32) + np.random.default_rng(0).normal(0, 4, (4000, 3000, 3)), 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(noisy).save(out, format="JPEG", quality=90)
    return out.getvalue()


async def one(client: httpx.AsyncClient, token: str, payload: bytes) -> float:
    headers = {"Authorization": f"Bearer {token}"}
    started = time.perf_counter()
    up = await client.post("/v1/uploads", content=payload, headers={**headers, "Content-Type": "image/jpeg"})
    up.raise_for_status()
    made = await client.post("/v1/id-photos", json={"upload_id": up.json()["upload_id"], "spec_id": "schengen-visa"}, headers=headers)
    made.raise_for_status()
    image = await client.get(made.json()["image_url"], headers=headers)
    image.raise_for_status()
    return time.perf_counter() - started


async def run(url: str, payload: bytes, concurrency: int) -> list[float]:
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        tokens = [(await client.post("/v1/devices", json=DEVICE)).json()["token"] for _ in range(concurrency)]
        await one(client, tokens[0], payload)  # warm-up
        durations: list[float] = []

        async def worker(token: str) -> None:
            for _ in range(ROUNDS // concurrency if concurrency > 1 else ROUNDS):
                durations.append(await one(client, token, payload))

        await asyncio.gather(*(worker(t) for t in tokens))
        return durations


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))]


def main() -> None:
    payload = portrait_12mp()
    decodes = []
    for _ in range(5):
        t = time.perf_counter()
        Image.open(io.BytesIO(payload)).load()
        decodes.append(time.perf_counter() - t)
    baseline = statistics.median(decodes)
    mesh = start(
        ("privacy", "ingestion", "faces", "render", "billing", "gateway"),
        LIKENESS_FREE_DAILY_GENERATIONS="100000",
        LIKENESS_RATE_LIMIT_IP_PER_MINUTE="1000000",
        LIKENESS_RATE_LIMIT_DEVICE_PER_MINUTE="1000000",
    )
    try:
        results = {c: asyncio.run(run(mesh.http_url, payload, c)) for c in (1, 4)}
    finally:
        mesh.down()
    print(f"bench/idphoto: 12 MP JPEG ({len(payload) / 1e6:.1f} MB) -> upload -> schengen-visa ID photo -> download, {ROUNDS} per setting")
    print(f"  baseline: one Pillow decode of the JPEG: {baseline * 1000:.0f} ms")
    for c, durations in results.items():
        p50, p95 = statistics.median(durations), pct(durations, 0.95)
        print(
            f"  concurrency {c}: p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms ({p50 / baseline:.1f}x the decode); throughput {c / p50:.2f} photos/s"
        )


if __name__ == "__main__":
    main()
