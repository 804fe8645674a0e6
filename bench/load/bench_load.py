"""Load on the public API: virtual users each on their own loopback address upload a photo, make an
ID photo and download it, over and over for a fixed time.

Per step p50/p95/p99, throughput, errors, each service's resident memory (start and peak), and the
ratio against a plain Pillow decode + encode of the same file measured in the same run (the machine
may be shared: compare ratios between runs, not absolute times).

    python bench/load/bench_load.py --users 8 --seconds 60 --photo rotated-12mp
    python bench/load/bench_load.py --users 8 --seconds 60 --photo small
    python bench/load/bench_load.py --url http://127.0.0.1:8080 ...   # a mesh already running (loopback only)

A mesh started here uses LIKENESS_DATABASE_URL (an admin URL) for its own roles and schemas: give it a
database of its own (e.g. `createdb bench_load`), not one a test run or another mesh shares.

Only loopback targets are accepted. A mesh started here lifts the gateway's per-network registration
throttle and per-minute limits (every user is in 127.0.0.0/24); the output says so. The billing
service keeps its daily allowance: a user whose device has used it (as GET /v1/entitlements told it,
so no upload is wasted) registers a new device.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import ipaddress
import json as json_module
import os
import statistics
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
from matplotlib import cbook
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from http1 import Connection, HttpError, Reply
from meshctl import DEVICE, start

SERVICES = ("privacy", "ingestion", "faces", "render", "billing", "gateway")
# Gateway limits a load run from one /24 would hit at once; lifted only in a mesh this script starts.
LIFTED = {
    "LIKENESS_REGISTRATIONS_PER_PREFIX_PER_HOUR": "1000000",
    "LIKENESS_REGISTRATIONS_PER_MINUTE": "1000000",
    "LIKENESS_RATE_LIMIT_IP_PER_MINUTE": "1000000",
    "LIKENESS_RATE_LIMIT_DEVICE_PER_MINUTE": "1000000",
}
REQUEST_TIMEOUT_S = 60.0
MAX_RETRY_AFTER_S = 10.0


def _exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "BenchCam"
    return exif


def _portrait(width: int, height: int) -> Image.Image:
    """Grace Hopper in an upright portrait photo of width x height, with sensor-like noise."""
    with cbook.get_sample_data("grace_hopper.jpg") as fh:
        face = Image.open(fh).convert("RGB")
    scale = width / 2000
    face = face.resize((round(1024 * scale), round(1200 * scale)), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (width, height), (236, 236, 232))
    canvas.paste(face, ((width - face.width) // 2, round(height * 0.22)))
    noise = np.random.default_rng(0).normal(0, 4, (height, width, 3))
    return Image.fromarray(np.clip(np.asarray(canvas, np.float32) + noise, 0, 255).astype(np.uint8))


def photo(kind: str) -> bytes:
    out = io.BytesIO()
    if kind == "rotated-12mp":
        # What a phone stores for a portrait shot: landscape 4032x3024 sensor pixels, orientation 6.
        _portrait(3024, 4032).transpose(Image.Transpose.ROTATE_90).save(out, format="JPEG", quality=90, exif=_exif(6))
    elif kind == "upright-12mp":
        _portrait(3024, 4032).save(out, format="JPEG", quality=90, exif=_exif(1))
    elif kind == "small":
        _portrait(480, 640).save(out, format="JPEG", quality=90)
    else:
        raise SystemExit(f"unknown photo {kind!r}")
    return out.getvalue()


def pillow_baseline(payload: bytes, rounds: int = 5) -> float:
    """Median seconds for a plain Pillow decode + encode of the same bytes."""
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        img = Image.open(io.BytesIO(payload))
        img.load()
        img.save(io.BytesIO(), format="JPEG", quality=90)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def python_reference(rounds: int = 5) -> float:
    """Median seconds for 2 million additions in a plain Python loop: the interpreter's speed on
    this machine now, which the mesh's Python-heavy work follows more closely than a decode."""
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        total = 0
        for i in range(2_000_000):
            total += i
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def host_speed(photo_12mp: bytes) -> tuple[float, float]:
    """Seconds for a Pillow decode + encode of the 12 MP bench photo and for python_reference."""
    return pillow_baseline(photo_12mp), python_reference()


def _host_line(host: tuple[float, float]) -> str:
    return (
        f"Pillow decode + encode of the 12 MP bench photo {host[0] * 1000:.0f} ms, 2 M additions in a Python loop {host[1] * 1000:.0f} ms"
    )


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))] if ordered else float("nan")


@dataclass
class Stats:
    steps: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter[str] = field(default_factory=Counter)
    retries: Counter[str] = field(default_factory=Counter)
    registrations: int = 0
    completed: int = 0


class Aborted(Exception):
    pass


class User:
    def __init__(self, url: str, source: str, payload: bytes, spec: str, stats: Stats, deadline: float) -> None:
        self.client = Connection(url, source, REQUEST_TIMEOUT_S)
        self.payload, self.spec, self.stats, self.deadline = payload, spec, stats, deadline
        self.token = ""
        self.remaining: int | None = None  # ID photos the device may still make today (None: unlimited)

    async def request(
        self, step: str, method: str, path: str, *, json: object = None, content: bytes = b"", headers: dict[str, str] | None = None
    ) -> Reply:
        """One call, honouring Retry-After on 429/503 (bounded by the run's deadline)."""
        body = content
        sent = dict(headers or {})
        if json is not None:
            body = json_module.dumps(json).encode()
            sent["Content-Type"] = "application/json"
        while True:
            if self.token:
                sent["Authorization"] = f"Bearer {self.token}"
            t = time.perf_counter()
            try:
                reply = await self.client.request(method, path, sent, body)
            except HttpError as exc:
                self.stats.errors[f"{step}: {type(exc.__cause__).__name__}"] += 1
                raise Aborted from exc
            elapsed = time.perf_counter() - t
            if reply.status_code in (429, 503) and "retry-after" in reply.headers:
                wait = min(MAX_RETRY_AFTER_S, float(reply.headers["retry-after"]))
                self.stats.retries[f"{step} {reply.status_code}"] += 1
                if time.monotonic() + wait > self.deadline:
                    raise Aborted
                await asyncio.sleep(wait)
                continue
            if reply.is_success:
                self.stats.steps[step].append(elapsed)
            return reply

    async def register(self) -> None:
        self.token = ""
        reply = await self.request("register", "POST", "/v1/devices", json=DEVICE)
        if not reply.is_success:
            self.stats.errors[f"register {reply.status_code}"] += 1
            raise Aborted
        self.token = reply.json()["token"]
        self.stats.registrations += 1
        # What an app does: know the device's allowance, rather than upload a photo it may not use.
        got = await self.request("entitlements", "GET", "/v1/entitlements")
        if not got.is_success:
            self.stats.errors[f"entitlements {got.status_code}"] += 1
            raise Aborted
        entitled = got.json()
        self.remaining = None if entitled["subscribed"] else int(entitled["free_remaining_today"])

    async def one_photo(self) -> None:
        if self.remaining == 0:  # the device's daily allowance is used: a new device
            await self.register()
        t = time.perf_counter()
        up = await self.request("upload", "POST", "/v1/uploads", content=self.payload, headers={"Content-Type": "image/jpeg"})
        if not up.is_success:
            self.stats.errors[f"upload {up.status_code}"] += 1
            return
        body = {"upload_id": up.json()["upload_id"], "spec_id": self.spec}
        made = await self.request("id_photo", "POST", "/v1/id-photos", json=body)
        if made.status_code == 402:  # used elsewhere meanwhile: a new device, and the upload again
            await self.register()
            return
        if made.is_success and self.remaining is not None:
            self.remaining -= 1
        if not made.is_success:
            self.stats.errors[f"id_photo {made.status_code} {made.json().get('code', '') if made.content else ''}"] += 1
            return
        image = await self.request("download", "GET", made.json()["image_url"])
        if not image.is_success or not image.content:
            self.stats.errors[f"download {image.status_code}"] += 1
            return
        self.stats.steps["end_to_end"].append(time.perf_counter() - t)
        self.stats.completed += 1

    async def run(self) -> None:
        try:
            await self.register()
            while time.monotonic() < self.deadline:
                await self.one_photo()
        except Aborted:
            pass
        finally:
            await self.client.close()


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, in MB."""
    total = 0
    pids = [pid]
    while pids:
        p = pids.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            for task in Path(f"/proc/{p}/task").iterdir():
                pids += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total / 1024


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system, every thread) a process has used so far; 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return 0.0
    # utime and stime are fields 14 and 15 of /proc/PID/stat; [0] here is field 3.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_s() -> float:
    """CPU seconds the PostgreSQL processes now running have used (the server and its backends: the mesh's
    pools keep their connections, so a run's backends are alive at both ends of it)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in ("postgres", "postmaster"):
                    total += cpu_s(int(entry.name))
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                continue
    return total


async def sample_rss(pids: dict[str, int], peaks: dict[str, float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        for name, pid in pids.items():
            peaks[name] = max(peaks.get(name, 0.0), rss_mb(pid))
        try:
            await asyncio.wait_for(stop.wait(), 0.5)
        except TimeoutError:
            pass


async def warm_up(url: str, payload: bytes, spec: str) -> None:
    """Before anything is timed: the mesh's background start-up work (the demo templates) is
    finished and one photo has gone through, so the run measures the steady state."""
    deadline = time.monotonic() + 120
    stats = Stats()
    user = User(url, "127.0.0.1", payload, spec, stats, deadline)
    try:
        while True:  # a mesh just started on a busy machine may refuse the first calls
            try:
                await user.register()
                if (await user.request("templates", "GET", "/v1/templates")).status_code == 200:
                    break
            except Aborted:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"the mesh did not finish starting in 120 s: {dict(stats.errors)}")
            await asyncio.sleep(1)
        await user.one_photo()
    finally:
        await user.client.close()


async def load(
    url: str, payload: bytes, users: int, seconds: float, spec: str, pids: dict[str, int]
) -> tuple[Stats, float, dict, dict[str, float], dict[str, float]]:
    await warm_up(url, payload, spec)
    stats = Stats()
    start_rss = {name: rss_mb(pid) for name, pid in pids.items()}
    start_cpu = {name: cpu_s(pid) for name, pid in pids.items()}
    start_other = {"postgres": postgres_cpu_s(), "this client": time.process_time()}
    peaks: dict[str, float] = {}
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_rss(pids, peaks, stop))
    deadline = time.monotonic() + seconds
    began = time.perf_counter()
    vus = [User(url, f"127.0.0.{2 + i}", payload, spec, stats, deadline) for i in range(users)]
    # Bounded in time: the in-flight request may finish after the deadline, but never past one request timeout.
    await asyncio.wait_for(asyncio.gather(*(u.run() for u in vus)), seconds + REQUEST_TIMEOUT_S + 5)
    wall = time.perf_counter() - began
    stop.set()
    await sampler
    cpu = {name: cpu_s(pid) - start_cpu[name] for name, pid in pids.items()}
    # Beside the services on the same cores: the database and the load itself (not in the services' total).
    other = {"postgres": postgres_cpu_s() - start_other["postgres"], "this client": time.process_time() - start_other["this client"]}
    return stats, wall, {name: (start_rss[name], peaks.get(name, start_rss[name])) for name in pids}, cpu, other


def check_loopback(url: str) -> None:
    host = urlparse(url).hostname or ""
    try:
        loop = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loop = False
    if not loop:
        raise SystemExit(f"bench/load only targets loopback addresses, not {host!r}")


def report(
    args: argparse.Namespace,
    payload: bytes,
    baseline: float,
    stats: Stats,
    wall: float,
    rss: dict,
    cpu: dict[str, float],
    lifted: bool,
    host: tuple[float, float],
    other: dict[str, float] | None = None,
) -> None:
    print(
        f"bench/load: {args.users} users x {args.seconds:.0f} s, photo {args.photo} ({len(payload) / 1e6:.2f} MB), spec {args.spec}, "
        "each user on its own 127.0.0.x"
    )
    if lifted:
        print("  gateway limits lifted for this run: " + ", ".join(f"{k}={v}" for k, v in LIFTED.items()))
    print(f"  same-run baseline: Pillow decode + encode of the file: {baseline * 1000:.0f} ms (the machine may be shared)")
    print(f"  host speed before: {_host_line(host)} (runs of other photos or hours compare by these)")
    print(f"  {'step':<11} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'p50/base':>9}")
    for step in ("register", "upload", "id_photo", "download", "end_to_end"):
        values = stats.steps.get(step, [])
        if values:
            p50 = statistics.median(values)
            print(
                f"  {step:<11} {len(values):>5} {p50 * 1000:>8.0f} {pct(values, 0.95) * 1000:>8.0f} "
                f"{pct(values, 0.99) * 1000:>8.0f} {p50 / baseline:>8.2f}x"
            )
    print(f"  throughput: {stats.completed / wall:.2f} photos/s ({stats.completed} in {wall:.1f} s); registrations {stats.registrations}")
    print(f"  errors: {dict(stats.errors) or 'none'}; Retry-After honoured: {dict(stats.retries) or 'never needed'}")
    if rss:
        print("  resident memory MB (start -> peak): " + ", ".join(f"{n} {a:.0f} -> {b:.0f}" for n, (a, b) in rss.items()))
    if cpu and stats.completed:
        # CPU per finished photo is what bounds throughput on a few cores, and a busy neighbour changes it least.
        per = {name: used / stats.completed * 1000 for name, used in cpu.items()}
        print(
            f"  CPU ms per photo: total {sum(per.values()):.0f} ({sum(per.values()) / 1000 / host[0]:.2f}x the 12 MP decode + encode); "
            + ", ".join(f"{n} {v:.0f}" for n, v in per.items())
        )
        if other:
            print("  beside them, CPU ms per photo: " + ", ".join(f"{n} {used / stats.completed * 1000:.0f}" for n, used in other.items()))
    five_xx = sum(n for k, n in stats.errors.items() if " 5" in k)
    print(f"  5xx responses: {five_xx}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--photo", choices=("rotated-12mp", "upright-12mp", "small"), default="rotated-12mp")
    parser.add_argument("--spec", default="us-passport")
    parser.add_argument("--url", help="a running gateway on a loopback address (default: start a mesh here)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2 users, 10 s, the small photo")
    args = parser.parse_args()
    if args.quick:
        args.users, args.seconds, args.photo = 2, 10.0, "small"
    if not 1 <= args.users <= 250:
        raise SystemExit("--users must be 1-250 (one 127.0.0.x address each)")
    if not 1 <= args.seconds <= 600:
        raise SystemExit("--seconds must be 1-600")
    payload = photo(args.photo)
    baseline = pillow_baseline(payload)
    # Fixed pieces of work whatever the photo: how fast the machine is this hour (the same code
    # has used 35-40 % more CPU per photo on the same shared machine an hour apart).
    photo_12mp = payload if args.photo == "rotated-12mp" else photo("rotated-12mp")
    host = host_speed(photo_12mp)
    mesh = None
    if args.url:
        check_loopback(args.url)
        url, pids = args.url, {}
    else:
        mesh = start(SERVICES, **LIFTED)
        url, pids = mesh.http_url, {name: proc.pid for name, proc in mesh.procs.items()}
        check_loopback(url)
    try:
        stats, wall, rss, cpu, other = asyncio.run(load(url, payload, args.users, args.seconds, args.spec, pids))
    finally:
        if mesh is not None:
            mesh.down()
    report(args, payload, baseline, stats, wall, rss, cpu, lifted=mesh is not None, host=host, other=other)
    baseline_after = pillow_baseline(payload)
    print(f"  baseline again after the run: {baseline_after * 1000:.0f} ms")
    print(f"  host speed after: {_host_line(host_speed(photo_12mp))}")
    if os.environ.get("BENCH_STRICT") and any(" 5" in k for k in stats.errors):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
