"""`make images-smoke`: run the whole mesh from the built images and make one real ID photo.

Every service runs in its own container from localhost/likeness-<service>:$LIKENESS_IMAGE_TAG
(default dev) with the chart's security context: read-only root filesystem with an empty
/tmp, uid/gid 10001, every capability dropped, no-new-privileges. The containers share the
host's network namespace (the database is this machine's PostgreSQL on 127.0.0.1) and speak
mutual TLS to each other with a throwaway CA, as in the cluster. Settings come from the same
code as `make run` (scripts/mesh.py), so the images are checked with every required setting.

Checks: the migrations Job's command (python -m likeness_platform.migrate) applies each
schema in its service's image, each service's plaintext health port answers SERVING, the gateway's /healthz is 200,
then a device registers, uploads a portrait and gets a compliant ID photo and its print sheet
through the gateway's HTTP API (gateway -> ingestion -> render -> faces -> billing/privacy).

The database is a fresh one (likeness_smoke_<pid>) made on the PostgreSQL that
LIKENESS_DATABASE_URL names (an admin URL) and dropped at the end. Runs with the project's
venv (.venv/bin/python scripts/images_smoke.py); needs podman and runc.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mesh import GRPC_PORTS, Mesh

UID = 10001
# runc refuses limits above what the podman process holds; these fit under any sane host.
ULIMITS = ("--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096")
LATE_START_SECONDS = 3.0  # render's tries while faces is down take its reconnect backoff to the 2 s ceiling
DEVICE = {"platform": "android", "model": "Pixel 9", "os_version": "15", "app_version": "3.1.0", "language": "en-US", "age_confirmed": True}


def _portrait() -> bytes:
    from matplotlib import cbook

    with cbook.get_sample_data("grace_hopper.jpg") as fh:
        data: bytes = fh.read()
    return data


class ContainerMesh(Mesh):
    """The mesh of scripts/mesh.py with each service in a container rather than a process."""

    def __init__(self, run_dir: Path, database_url: str, tag: str, runtime: str) -> None:
        super().__init__(run_dir, database_url=database_url, free_ports=True, quiet=True)
        self.tag = tag
        self.runtime = runtime
        self.name_suffix = f"{os.getpid()}"
        # The key files are 0600: the service user (not root) must read them.
        for path in (run_dir / "tls").rglob("*"):
            os.chown(path, UID, UID)

    def container(self, service: str) -> str:
        return f"likeness-smoke-{service}-{self.name_suffix}"

    def start(self, service: str) -> None:
        env = self.env_for(service)
        # Only what the mesh sets: nothing of this machine's own environment reaches the image.
        settings = {k: v for k, v in env.items() if os.environ.get(k) != v and not k.startswith("PYTHON")}
        if service == "privacy":  # as the chart does: the root filesystem is read-only
            settings["LIKENESS_LEDGER_CHECKPOINT_DIR"] = str(self.run_dir / "ledger-checkpoints")
        writable = [Path(settings["LIKENESS_BLOB_DIR"])] + [Path(v) for k, v in settings.items() if k == "LIKENESS_LEDGER_CHECKPOINT_DIR"]
        for folder in writable:
            folder.mkdir(parents=True, exist_ok=True)
            os.chown(folder, UID, UID)
        command = [
            "podman", "run", "--rm", "--name", self.container(service), *self.security(),
            "-v", f"{self.run_dir / 'tls'}:{self.run_dir / 'tls'}:ro",
        ]  # fmt: skip
        for folder in writable:
            command += ["-v", f"{folder}:{folder}:rw"]
        for key, value in sorted(settings.items()):
            command += ["-e", f"{key}={value}"]
        command.append(f"localhost/likeness-{service}:{self.tag}")
        log = open(self.run_dir / f"{service}.log", "ab")  # noqa: SIM115 - handed to the child
        self.procs[service] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def security(self) -> list[str]:
        """The chart's container security context, as podman options."""
        return [
            "--runtime", self.runtime, "--network", "host", "--read-only", "--read-only-tmpfs=false",
            "--tmpfs", "/tmp:rw,mode=1777,size=512m", "--user", f"{UID}:{UID}", "--cap-drop", "ALL",
            "--security-opt", "no-new-privileges", *ULIMITS,
        ]  # fmt: skip

    def migrate(self, service: str) -> str:
        """What the chart's migrations Job runs for one schema, in the service's image; its output."""
        env = self.env_for(service)
        command = ["podman", "run", "--rm", "--name", f"likeness-smoke-migrate-{service}-{self.name_suffix}", *self.security()]
        for key in ("LIKENESS_DATABASE_URL", "LIKENESS_MIGRATION_DATABASE_URL"):
            command += ["-e", f"{key}={env[key]}"]
        command += ["--entrypoint", "python", f"localhost/likeness-{service}:{self.tag}", "-m", "likeness_platform.migrate", service]
        done = subprocess.run(command, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise RuntimeError(f"the migrations Job's command failed for {service} (exit {done.returncode}):\n{done.stdout}{done.stderr}")
        return done.stdout.strip().splitlines()[-1]

    def down(self) -> None:
        super().down()
        for service in GRPC_PORTS:
            subprocess.run(["podman", "rm", "--force", "--ignore", self.container(service)], capture_output=True, check=False)


def make_id_photo(http_url: str, out: Path) -> None:
    with httpx.Client(base_url=http_url, timeout=180) as app:
        registered = app.post("/v1/devices", json=DEVICE)
        assert registered.status_code == 201, registered.text
        auth = {"Authorization": f"Bearer {registered.json()['token']}"}
        upload = app.post("/v1/uploads", files={"file": ("me.jpg", _portrait(), "image/jpeg")}, headers=auth)
        assert upload.status_code == 201, upload.text
        started = time.monotonic()
        made = app.post(
            "/v1/id-photos",
            json={
                "upload_id": upload.json()["upload_id"],
                "spec_id": "schengen-visa",
                "layout": {"paper_id": "4r", "margin_mm": 3, "gap_mm": 2},
            },
            headers=auth,
        )
        assert made.status_code == 201, made.text
        photo = made.json()
        assert photo["report"]["passed"], photo["report"]
        image = app.get(photo["image_url"], headers=auth)
        assert image.status_code == 200, image.text
        size = Image.open(io.BytesIO(image.content)).size
        assert size == (413, 531), size
        out.write_bytes(image.content)
        sheet = app.get(photo["sheet_url"], headers=auth)
        assert sheet.status_code == 200 and sorted(Image.open(io.BytesIO(sheet.content)).size) == [1200, 1800]
        head = photo["report"]["measurements"]["head_height_mm"]
        print(
            f"images-smoke: ID photo {size[0]}x{size[1]} px, head {head:.1f} mm, compliant, in {time.monotonic() - started:.1f} s",
            flush=True,
        )


def _exit_state(code: int | None) -> str:
    if code is None:
        return "running"
    if code > 128:  # podman run answers 128 + the signal that killed the container
        try:
            return f"exited: killed by {signal.Signals(code - 128).name}"
        except ValueError:
            pass
    return f"exited with status {code}"


# Lines of a service log that say nothing about a failure: successful calls, start-up facts.
REQUEST_PATH = ("gateway", "ingestion", "render", "faces")  # an ID photo's way, render calling faces last
ROUTINE = re.compile(r'"outcome": "OK"|"event": "(allocator_tuned|runtime_role_granted|serving|stopping|stopped)"')


def explain_failure(run_dir: Path, services: Sequence[str], exits: dict[str, str]) -> None:
    """What a failed run tells, compactly (CI keeps only the end of the output): each service's state
    when the check failed and its log less the routine lines, the request path's services last,
    then the kernel's word on killed processes."""
    for service in sorted(services, key=lambda s: REQUEST_PATH.index(s) + 1 if s in REQUEST_PATH else 0):
        log = run_dir / f"{service}.log"
        lines = log.read_text(errors="replace").splitlines() if log.exists() else []
        kept = [line[:400] for line in lines if not ROUTINE.search(line)][-15:]
        print(f"--- {service}: {exits.get(service, 'not started')}; {len(lines)} log lines, the last unusual ones:", file=sys.stderr)
        print("\n".join(kept), file=sys.stderr)
    kernel = subprocess.run(["dmesg"], capture_output=True, text=True, check=False).stdout.splitlines()
    killed = [
        line for line in kernel if re.search(r"out of memory|oom-kill|killed process|segfault|general protection|traps:", line, re.I)
    ][-8:]
    print("--- kernel: " + ("\n".join(killed) if killed else "no OOM kill or crash in dmesg"), file=sys.stderr)


def fresh_database(admin_url: str) -> tuple[str, str]:
    """(URL of a new empty database, its name) on the server admin_url names."""
    name = f"likeness_smoke_{os.getpid()}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(admin_url)
    return urlunsplit(parts._replace(path=f"/{name}")), name


def drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tag", default=os.environ.get("LIKENESS_IMAGE_TAG", "dev"))
    parser.add_argument(
        "--runtime", default=os.environ.get("LIKENESS_OCI_RUNTIME", "runc"), help="podman --runtime (crun refuses some hosts' cgroups)"
    )
    parser.add_argument("--database-url", default=os.environ.get("LIKENESS_DATABASE_URL", ""), help="admin URL of a PostgreSQL server")
    parser.add_argument("--keep", action="store_true", help="keep the run folder (service logs, id-photo.jpg) on success")
    args = parser.parse_args()
    if not args.database_url:
        raise SystemExit("images-smoke: set LIKENESS_DATABASE_URL to an admin URL of a PostgreSQL server")
    for tool in ("podman", args.runtime):
        if not shutil.which(tool):
            raise SystemExit(f"images-smoke: {tool} is not installed (apt-get install -y podman runc)")
    run_dir = Path(tempfile.mkdtemp(prefix="likeness-smoke."))
    url, name = fresh_database(args.database_url)
    mesh = ContainerMesh(run_dir, url, args.tag, args.runtime)
    started = time.monotonic()
    ok = False
    exits: dict[str, str] = {}
    try:
        mesh.start_database()
        assert mesh.db_roles is not None
        # The chart's migrations Job first (owner role, runtime grants); the services then find nothing to apply.
        for service in mesh.services:
            if service in mesh.db_roles.runtime_urls:
                print(f"images-smoke: migrations Job command, {mesh.migrate(service)}", flush=True)
        # Faces starts last, once render serves and has asked it for the demo templates' meshes in vain: the
        # order a cluster may start them in, in which render's first ID photo once failed (its channel to faces
        # was waiting out a reconnect backoff while faces served).
        for service in mesh.services:
            if service != "faces":
                mesh.start(service)
        mesh.wait_healthy("render", timeout=240)
        time.sleep(LATE_START_SECONDS)
        mesh.start("faces")
        for service in mesh.services:
            mesh.wait_healthy(service, timeout=240)
            print(f"images-smoke: {service} SERVING after {time.monotonic() - started:.1f} s", flush=True)
        print("images-smoke: gateway /healthz 200", flush=True)
        make_id_photo(mesh.http_url, run_dir / "id-photo.jpg")
        ok = True
    finally:
        if not ok:  # before the mesh stops: which containers had already exited, and how
            exits = {service: _exit_state(proc.poll()) for service, proc in mesh.procs.items()}
        mesh.down()
        drop_database(args.database_url, name)
        if not ok:
            explain_failure(run_dir, mesh.services, exits)
        elif args.keep:
            print(f"images-smoke: logs and id-photo.jpg kept in {run_dir}", flush=True)
        else:
            shutil.rmtree(run_dir, ignore_errors=True)
    print(f"images-smoke: passed in {time.monotonic() - started:.1f} s", flush=True)


if __name__ == "__main__":
    main()
