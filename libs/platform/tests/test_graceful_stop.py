import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from likeness_platform.devpki import DevPki


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_line(proc: subprocess.Popen[bytes], line: bytes, timeout: float) -> None:
    """Read the child's stdout until `line` appears; fail at the deadline or if the child exits first."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    seen = b""
    deadline = time.monotonic() + timeout
    while line not in seen.splitlines():
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"the service never printed {line!r}; it printed {seen!r}"
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            chunk = os.read(fd, 4096)
            assert chunk, f"the service exited before printing {line!r} (exit {proc.poll()})"
            seen += chunk


def test_sigterm_lets_an_in_flight_call_finish_before_exit(pki: DevPki) -> None:
    port, health_port = _free_port(), _free_port()
    cert, key, ca = pki.ensure("gateway").read()
    script = str(Path(__file__).with_name("slow_service.py"))
    proc = subprocess.Popen([sys.executable, script, str(port), str(health_port), str(pki.root.parent)], stdout=subprocess.PIPE)
    try:
        # Readiness through the plaintext health-only port, the call itself over mTLS.
        with grpc.insecure_channel(f"127.0.0.1:{health_port}") as probe:
            reply = health_pb2_grpc.HealthStub(probe).Check(health_pb2.HealthCheckRequest(), timeout=30, wait_for_ready=True)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        with grpc.secure_channel(f"127.0.0.1:{port}", grpc.ssl_channel_credentials(ca, key, cert)) as channel:
            wait = channel.unary_unary("/test.Slow/Wait")
            result: dict[str, object] = {}

            def call() -> None:
                try:
                    result["value"] = wait(b"x", timeout=10)
                except grpc.RpcError as exc:
                    result["error"] = exc

            worker = threading.Thread(target=call)
            worker.start()
            _wait_for_line(proc, b"in-flight", 10)  # the call has reached the handler
            proc.send_signal(signal.SIGTERM)
            worker.join(10)
            assert result.get("value") == b"finished:x", result
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        assert proc.stdout is not None
        proc.stdout.close()
