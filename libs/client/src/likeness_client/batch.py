"""The `likeness id-photo` batch: one folder of photos in, ID photos (and sheets) out, resumable via a manifest."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from likeness.render.v1 import render_pb2
from likeness_client.client import AsyncClient
from likeness_client.retry import LikenessError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".heic", ".heif", ".webp"}
EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "application/pdf": ".pdf"}
# What an output folder remembers between runs: which inputs are done (by name, size and mtime).
MANIFEST = ".likeness-batch.json"
BATCH_PURPOSE = "operator_batch"


def inputs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))


def _fingerprint(path: Path) -> str:
    st = path.stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


class Manifest:
    """The output folder's record of finished inputs; written after every file, so an interrupted run resumes."""

    def __init__(self, out: Path, spec: str, sheet: str) -> None:
        self.path = out / MANIFEST
        self.spec, self.sheet = spec, sheet
        self.done: dict[str, dict[str, Any]] = {}
        if self.path.is_file():
            try:
                saved = json.loads(self.path.read_text())
            except ValueError:
                saved = {}
            if saved.get("spec") == spec and saved.get("sheet", "") == sheet:
                self.done = dict(saved.get("done", {}))

    def is_done(self, source: Path, out: Path) -> bool:
        entry = self.done.get(source.name)
        if not entry:
            return False
        return entry.get("fingerprint") == _fingerprint(source) and all((out / f).is_file() for f in entry.get("files", []))

    def mark(self, source: Path, files: list[str]) -> None:
        self.done[source.name] = {"fingerprint": _fingerprint(source), "files": files}
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps({"spec": self.spec, "sheet": self.sheet, "done": self.done}, indent=1))
        os.replace(tmp, self.path)


@dataclass
class Outcome:
    name: str
    status: str  # ok | skipped | rejected | failed
    code: str = ""
    detail: str = ""


async def _one(client: AsyncClient, subject: str, source: Path, out: Path, spec: str, sheet: str, manifest: Manifest) -> Outcome:
    try:
        data = source.read_bytes()
    except OSError as exc:
        return Outcome(source.name, "failed", "UNREADABLE", str(exc))
    try:
        reply = await client.create_id_photo(subject, data, spec, sheet)
        files = []
        for info, suffix in ((reply.photo, ""), (reply.sheet, "-sheet")):
            if not info.result_id:
                continue
            described, content = await client.open_result(info.result_id, subject, BATCH_PURPOSE)
            name = f"{source.stem}{suffix}{EXTENSIONS.get(described.content_type or info.content_type, '.jpg')}"
            tmp = out / f".{name}.part"
            tmp.write_bytes(content)
            os.replace(tmp, out / name)
            files.append(name)
    except LikenessError as exc:
        rejected = exc.status.name in {"INVALID_ARGUMENT", "FAILED_PRECONDITION", "NOT_FOUND", "OUT_OF_RANGE"}
        return Outcome(source.name, "rejected" if rejected else "failed", exc.code, exc.message)
    manifest.mark(source, files)
    issues = [i.code for i in reply.report.issues if i.severity == render_pb2.SEVERITY_ERROR]
    return Outcome(source.name, "ok", "" if reply.report.passed else "REPORT_FAILED", ", ".join(issues))


async def run_batch(
    open_client: Callable[[], AsyncClient],
    errors: Console,
    sources: list[Path],
    out: Path,
    spec: str,
    sheet: str,
    concurrency: int,
    keep: bool,
) -> list[Outcome]:
    """Make the ID photos of `sources` into `out` with clients from `open_client`; progress goes to `errors`."""
    manifest = Manifest(out, spec, sheet)
    outcomes = [Outcome(p.name, "skipped") for p in sources if manifest.is_done(p, out)]
    todo = [p for p in sources if not manifest.is_done(p, out)]
    if not todo:
        return outcomes
    async with open_client() as client:
        # One subject per run holds everything made for this batch; it is erased when the run ends
        # (the photos are in OUT by then), so an operator's batch leaves no personal data in the mesh.
        subject = (await client.register_subject()).subject_id
        gate = asyncio.Semaphore(max(1, concurrency))
        with Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=errors, transient=False
        ) as progress:
            task = progress.add_task(f"id-photo {spec}", total=len(todo))

            async def run(source: Path) -> Outcome:
                async with gate:
                    outcome = await _one(client, subject, source, out, spec, sheet, manifest)
                progress.advance(task)
                return outcome

            outcomes += await asyncio.gather(*(run(p) for p in todo))
        if not keep:
            erasure = await client.request_erasure(subject, reason="operator")
            errors.print(f"batch subject {subject} erasure {erasure.erasure_id} requested", highlight=False)
    return outcomes
