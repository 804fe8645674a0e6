"""A local stand-in for the App Store Server API's Get Transaction Info, for tests only.

Runs `http.server` on a loopback port in a thread. It checks each request's bearer token the
way Apple does (ES256 with the API key, audience, bundle id) and answers like the real API.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

_PATH = re.compile(r"^/inApps/v1/transactions/([0-9]+)$")


@dataclass(frozen=True)
class ApiKey:
    """An App Store Connect in-app purchase key as the .p8 file holds it."""

    key_id: str
    issuer_id: str
    private_key: ec.EllipticCurvePrivateKey

    @property
    def p8(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def new_api_key() -> ApiKey:
    return ApiKey("KEY1234567", "57246542-96fe-1a63-e053-0824d011072a", ec.generate_private_key(ec.SECP256R1()))


@dataclass
class FakeAppStoreApi:
    key: ApiKey
    bundle_id: str
    transactions: dict[str, str] = field(default_factory=dict)
    # When set, every request is answered with this status (and an Apple error body).
    forced_status: int | None = None
    requests: list[tuple[str, bool]] = field(default_factory=list)
    base_url: str = ""

    def authorised(self, header: str | None) -> bool:
        if not header or not header.startswith("Bearer "):
            return False
        token = header.removeprefix("Bearer ")
        try:
            claims = jwt.decode(token, self.key.private_key.public_key(), algorithms=["ES256"], audience="appstoreconnect-v1")
        except jwt.PyJWTError:
            return False
        kid = jwt.get_unverified_header(token).get("kid")
        return bool(kid == self.key.key_id and claims.get("iss") == self.key.issuer_id and claims.get("bid") == self.bundle_id)


def _handler(api: FakeAppStoreApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            ok = api.authorised(self.headers.get("Authorization"))
            api.requests.append((self.path, ok))
            if api.forced_status is not None:
                return self._json(api.forced_status, {"errorCode": 5000000, "errorMessage": "forced"})
            if not ok:
                return self._json(401, {"errorCode": 4010000, "errorMessage": "unauthenticated"})
            match = _PATH.match(self.path)
            if match is None or match.group(1) not in api.transactions:
                return self._json(404, {"errorCode": 4040010, "errorMessage": "Transaction id not found."})
            return self._json(200, {"signedTransactionInfo": api.transactions[match.group(1)]})

        def _json(self, status: int, body: dict[str, object]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            return

    return Handler


@contextmanager
def serve(api: FakeAppStoreApi) -> Iterator[FakeAppStoreApi]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(api))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    api.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
