"""Upload-to-finished-ID-photo time for a 12 MP JPEG through the gateway, p50/p95 at concurrency 1 and 4.

Baseline in the same run: decoding the same JPEG once with Pillow (the least any pipeline must do).

First, render's compose step alone (framing, cut-out, new background) in-process on the same
photo, interleaved with the same step using the edge of before the matting (the guided filter
and decontamination of git revision PRE_MATTING) as its same-run baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

import httpx
import numpy as np
from matplotlib import cbook
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from meshctl import DEVICE, start

ROUNDS = 12
ROOT = Path(__file__).resolve().parents[2]
# The last revision whose ID photos used the guided-filter edge (before the trimap + closed-form matting).
PRE_MATTING = "5f93ce1"


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


def compose_step(payload: bytes, rounds: int) -> None:
    """Render's compose step on the decoded photo, now and with the pre-matting edge, interleaved."""
    sys.path.insert(0, str(ROOT / "services" / "render" / "tests"))
    from landmarks import TestLandmarker

    from likeness_render.adapters.segmenter import SelfieSegmenter
    from likeness_render.domain import idphoto, matte
    from likeness_render.domain.spec_loading import load_catalog
    from likeness_render.usecases.id_photo import frame_of
    from likeness_render.usecases.shared import ANALYSIS_SIDE, decode

    source = subprocess.run(
        ["git", "show", f"{PRE_MATTING}:services/render/src/likeness_render/domain/matte.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    pre = types.ModuleType("pre_matting_matte")
    sys.modules[pre.__name__] = pre
    exec(compile(source, pre.__name__, "exec"), pre.__dict__)

    def pre_cut_out(image, coarse, centre, refined=False):  # type: ignore[no-untyped-def]
        alpha = pre.refine(image, coarse)
        return matte.CutOut(alpha, pre.decontaminate(image, alpha), coarse >= 0.5)

    image = decode(payload)
    preview = decode(payload, ANALYSIS_SIDE * 2 // 3)
    with TestLandmarker() as marks:
        face = marks.detect(image)[0]
    spec = load_catalog().get("schengen-visa")
    frame = frame_of(spec, 300.0)
    cuts = {"now": matte.cut_out, f"pre-matting ({PRE_MATTING})": pre_cut_out}
    wall: dict[str, list[float]] = {name: [] for name in cuts}
    cpu: dict[str, list[float]] = {name: [] for name in cuts}
    with SelfieSegmenter() as seg:
        try:
            for _ in range(rounds + 1):
                for name, cut in cuts.items():
                    matte.cut_out = cut
                    w, c = time.perf_counter(), time.process_time()
                    idphoto.compose(image, face, seg.mask, frame, spec.background, idphoto.Options(), preview)
                    wall[name].append(time.perf_counter() - w)
                    cpu[name].append(time.process_time() - c)
        finally:
            matte.cut_out = cuts["now"]
    print(f"bench/idphoto compose step ({image.shape[1]}x{image.shape[0]} decoded -> {frame.width_px}x{frame.height_px}), {rounds} rounds:")
    for name in cuts:
        w, c = statistics.median(wall[name][1:]), statistics.median(cpu[name][1:])  # the first round warms up
        print(f"  {name:<24} p50 {w * 1000:6.1f} ms wall, {c * 1000:6.1f} ms CPU")
    now, before = (statistics.median(cpu[name][1:]) for name in cuts)
    print(f"  now / pre-matting: {now / before:.2f}x CPU")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--compose-only", action="store_true", help="only the in-process compose step (no mesh)")
    args = parser.parse_args()
    payload = portrait_12mp()
    compose_step(payload, 5 if args.quick else 15)
    if args.compose_only:
        return
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
