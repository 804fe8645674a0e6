"""Start the whole mesh on one machine: embedded PostgreSQL when needed, every service as its own process.

Used by `make run` (fixed ports, Ctrl-C stops everything) and by the end-to-end tests (free ports).
Every gRPC hop is mutual TLS: a development CA and one certificate per service (and an `operator/dev`
one for grpcurl and the CLI) are made in `<run_dir>/tls`. Readiness is read on each service's
plaintext health-only port.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import psycopg
from grpc_health.v1 import health_pb2, health_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "libs" / "platform" / "src"))

from likeness_platform.db_roles import DatabaseRoles, provision_roles  # noqa: E402
from likeness_platform.devpki import DevPki, TlsFiles  # noqa: E402
from likeness_platform.embedded_db import EmbeddedPostgres  # noqa: E402

GRPC_PORTS = {"gateway": 50050, "ingestion": 50051, "faces": 50052, "render": 50053, "billing": 50054, "privacy": 50055, "admin": 50056}
HOLDERS = ("gateway", "ingestion", "faces", "render", "billing")
HTTP_PORT = 8080
# The admin API's HTTPS port (operators' mTLS certificates): never the public one.
ADMIN_PORT = 8443
# Plaintext health-only ports: the gRPC port + 2000 (the services' default).
HEALTH_OFFSET = 2000
OPERATOR = "operator/dev"


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports: the sockets stay open until all are chosen, so none repeats."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


@dataclass
class Mesh:
    run_dir: Path
    database_url: str = ""
    free_ports: bool = False
    extra_env: dict[str, str] = field(default_factory=dict)
    services: tuple[str, ...] = tuple(GRPC_PORTS)
    quiet: bool = False
    # Server reflection on every service (make run: on, for grpcurl; tests: off, the production default).
    reflection: bool = False
    ports: dict[str, int] = field(default_factory=dict)
    health_ports: dict[str, int] = field(default_factory=dict)
    http_port: int = HTTP_PORT
    admin_port: int = ADMIN_PORT
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    db: EmbeddedPostgres | None = None
    db_roles: DatabaseRoles | None = None

    def __post_init__(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.free_ports:
            chosen = free_ports(2 * len(GRPC_PORTS) + 2)
            self.ports = dict(zip(GRPC_PORTS, chosen, strict=False))
            self.health_ports = dict(zip(GRPC_PORTS, chosen[len(GRPC_PORTS) :], strict=False))
            self.http_port, self.admin_port = chosen[-2], chosen[-1]
        else:
            self.ports = dict(GRPC_PORTS)
            self.health_ports = {name: port + HEALTH_OFFSET for name, port in GRPC_PORTS.items()}
        self.pki = DevPki(self.run_dir)
        self.tls = self.pki.ensure_services((*GRPC_PORTS, OPERATOR))
        # Where each service listens, for the `likeness` CLI (it finds this next to the operator identity).
        (self.run_dir / "endpoints.json").write_text(json.dumps({name: self.addr(name) for name in GRPC_PORTS}))

    def addr(self, service: str) -> str:
        return f"127.0.0.1:{self.ports[service]}"

    def health_addr(self, service: str) -> str:
        return f"127.0.0.1:{self.health_ports[service]}"

    def credentials(self, identity: str = OPERATOR) -> grpc.ChannelCredentials:
        """Client credentials of one of the mesh's identities (default: the development operator)."""
        cert, key, ca = self.tls_files(identity).read()
        return grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)

    def tls_files(self, identity: str) -> TlsFiles:
        return self.pki.ensure(identity)

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def admin_url(self) -> str:
        return f"https://127.0.0.1:{self.admin_port}"

    def dev_kek(self) -> str:
        """A generated key-encryption key for development, kept in the run folder."""
        return self.dev_secret("dev-kek")

    def dev_secret(self, name: str) -> str:
        """A generated 32-byte development secret (base64), kept in the run folder."""
        path = self.run_dir / name
        if not path.exists():
            path.write_text(base64.b64encode(os.urandom(32)).decode())
            path.chmod(0o600)
        return path.read_text().strip()

    def env_for(self, service: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "LIKENESS_DATABASE_URL": "",
                "LIKENESS_MIGRATION_DATABASE_URL": "",
                "LIKENESS_GRPC_PORT": str(self.ports[service]),
                "LIKENESS_HEALTH_PORT": str(self.health_ports[service]),
                "LIKENESS_REFLECTION": "true" if self.reflection else "false",
                **self.tls[service].env(),
                "LIKENESS_METRICS_PORT": "-1" if self.free_ports else "0",
                "LIKENESS_BLOB_DIR": str(self.run_dir / "blobs" / service),
                "PYTHONUNBUFFERED": "1",
            }
        )
        if self.db_roles is not None and service in self.db_roles.runtime_urls:
            # The service's own runtime role; its migrations run as the owner role.
            env.update(self.db_roles.env_for(service))
        for other in GRPC_PORTS:
            env[f"LIKENESS_{other.upper()}_ADDR"] = self.addr(other)
        if service == "privacy":
            env["LIKENESS_KEK"] = env.get("LIKENESS_KEK") or self.dev_kek()
            env["LIKENESS_HOLDERS"] = json.dumps({h: self.addr(h) for h in HOLDERS if h in self.services})
        if service in ("ingestion", "render"):
            # One key for every sealed store: the keyed hashes naming a subject's blobs and tombstones.
            env["LIKENESS_BLOB_NAME_KEY"] = env.get("LIKENESS_BLOB_NAME_KEY") or self.dev_secret("dev-blob-name-key")
        if service == "billing":
            env["LIKENESS_BILLING_LEDGER_KEY"] = env.get("LIKENESS_BILLING_LEDGER_KEY") or self.dev_secret("dev-ledger-key")
        if service == "gateway":
            env["LIKENESS_HTTP_PORT"] = str(self.http_port)
        if service == "admin":
            env["LIKENESS_HTTP_PORT"] = str(self.admin_port)
        env.update(self.extra_env)
        return env

    def start_database(self) -> None:
        """Start the embedded PostgreSQL unless given a database (an admin URL), then set up its roles."""
        if not self.database_url:
            self.db = EmbeddedPostgres(self.run_dir / "pgdata")
            self.database_url = self.db.start_database("likeness")
        try:
            self.db_roles = provision_roles(self.database_url)
        except psycopg.errors.InsufficientPrivilege as exc:
            raise SystemExit(f"the mesh sets up one database role per service and needs a database URL allowed to: {exc}") from None

    def start(self, service: str) -> None:
        log = open(self.run_dir / f"{service}.log", "ab")  # noqa: SIM115 - handed to the child
        self.procs[service] = subprocess.Popen(
            [sys.executable, "-m", f"likeness_{service}.main"],
            env=self.env_for(service),
            stdout=log if self.quiet else None,
            stderr=subprocess.STDOUT if self.quiet else None,
            cwd=ROOT,
        )

    def wait_healthy(self, service: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        # The plaintext health-only port: what the kubelet probes too.
        with grpc.insecure_channel(self.health_addr(service)) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while True:
                proc = self.procs.get(service)
                if proc is not None and proc.poll() is not None:
                    raise RuntimeError(f"{service} exited with code {proc.returncode}; see {self.run_dir / (service + '.log')}")
                try:
                    # wait_for_ready blocks until the port accepts, bounded by the timeout.
                    reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=2, wait_for_ready=True)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        break
                except grpc.RpcError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{service} not healthy after {timeout:.0f}s")
        if service == "gateway":
            self._wait_http(deadline)

    def _wait_http(self, deadline: float) -> None:
        while True:
            try:
                with urllib.request.urlopen(self.http_url + "/healthz", timeout=2) as reply:
                    if reply.status == 200:
                        return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def up(self) -> None:
        self.start_database()
        for service in self.services:
            self.start(service)
        for service in self.services:
            self.wait_healthy(service)

    def stop(self, service: str, timeout: float = 20.0) -> int | None:
        proc = self.procs.pop(service, None)
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return proc.returncode

    def kill(self, service: str) -> None:
        proc = self.procs.pop(service)
        proc.kill()
        proc.wait()

    def down(self) -> None:
        for service in reversed(list(self.procs)):
            self.stop(service)
        if self.db is not None:
            self.db.stop()
            self.db = None


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the Likeness mesh locally")
    parser.add_argument("--run-dir", type=Path, default=ROOT / ".run")
    args = parser.parse_args()
    started = time.monotonic()
    mesh = Mesh(args.run_dir, database_url=os.environ.get("LIKENESS_DATABASE_URL", ""), reflection=True)
    stop = False

    def on_signal(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        mesh.up()
        took = time.monotonic() - started
        print(f"\nLikeness is up in {took:.1f}s ({'embedded' if mesh.db else 'external'} PostgreSQL)")
        print(f"  demo page and HTTP API   {mesh.http_url}/   (OpenAPI: {mesh.http_url}/docs)")
        if "admin" in mesh.procs:
            operator = mesh.tls_files(OPERATOR)
            print(f"  admin API (mTLS)         {mesh.admin_url}/   (OpenAPI: {mesh.admin_url}/docs)")
            print(f"    curl --cacert {operator.ca} --cert {operator.cert} --key {operator.key} {mesh.admin_url}/v1/whoami")
        for name in GRPC_PORTS:
            print(f"  {name:<10} gRPC (mTLS)  {mesh.addr(name)}   health {mesh.health_addr(name)}")
        operator = mesh.tls_files(OPERATOR)
        print(f"  grpcurl -cacert {operator.ca} -cert {operator.cert} -key {operator.key} {mesh.addr('render')} list")
        print("Ctrl-C stops everything.\n", flush=True)
        while not stop:
            for name, proc in list(mesh.procs.items()):
                if proc.poll() is not None:
                    print(f"{name} exited with code {proc.returncode}; stopping the mesh", flush=True)
                    stop = True
            time.sleep(0.5)
    finally:
        print("stopping…", flush=True)
        mesh.down()
        print("stopped.", flush=True)


if __name__ == "__main__":
    main()
