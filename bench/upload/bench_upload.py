"""MB/s of a 12 MP JPEG through the gateway (HTTP -> ingestion: validate, normalize, encrypt, store)
against a plain file write (with fsync) of the same bytes, in the same run."""

from __future__ import annotations

import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image
from skimage import data

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from meshctl import DEVICE, start

RUNS = 8


def photo_12mp() -> bytes:
    img = Image.fromarray(data.astronaut()).resize((4000, 3000), Image.Resampling.BILINEAR)
    noisy = np.clip(np.asarray(img, dtype=np.float32) + np.random.default_rng(0).normal(0, 6, (3000, 4000, 3)), 0, 255)
    out = io.BytesIO()
    Image.fromarray(noisy.astype(np.uint8)).save(out, format="JPEG", quality=90)
    return out.getvalue()


def main() -> None:
    payload = photo_12mp()
    mb = len(payload) / 1e6
    with tempfile.TemporaryDirectory() as tmp:
        plain = []
        for i in range(RUNS):
            t = time.perf_counter()
            with open(Path(tmp) / f"f{i}", "wb") as fh:
                fh.write(payload)
                fh.flush()
                import os

                os.fsync(fh.fileno())
            plain.append(time.perf_counter() - t)
    mesh = start(("privacy", "ingestion", "gateway"))
    try:
        with httpx.Client(base_url=mesh.http_url, timeout=120) as client:
            token = client.post("/v1/devices", json=DEVICE).json()["token"]
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "image/jpeg"}
            client.post("/v1/uploads", content=payload, headers=headers).raise_for_status()  # warm-up
            through = []
            for _ in range(RUNS):
                t = time.perf_counter()
                client.post("/v1/uploads", content=payload, headers=headers).raise_for_status()
                through.append(time.perf_counter() - t)
    finally:
        mesh.down()
    p_plain, p_gw = statistics.median(plain), statistics.median(through)
    print(f"bench/upload: 12 MP JPEG, {mb:.2f} MB, {RUNS} runs each (median)")
    print(f"  plain file write + fsync : {mb / p_plain:8.1f} MB/s  ({p_plain * 1000:.1f} ms)")
    print(f"  through the gateway      : {mb / p_gw:8.1f} MB/s  ({p_gw * 1000:.1f} ms)")
    print(
        f"  ratio gateway/plain      : {p_plain / p_gw:8.4f}  (the gateway also fully decodes to validate, strips metadata, encrypts with AES-GCM and writes a row)"
    )


if __name__ == "__main__":
    main()
