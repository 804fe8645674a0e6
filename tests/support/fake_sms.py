"""A Twilio-style SMS gateway for tests: `POST /Accounts/<id>/Messages.json` with a form (`To`, `From`, `Body`) and
HTTP basic auth; it keeps every accepted message, answers 401 to wrong credentials and 400 to numbers in `refuse`."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs


@dataclass(frozen=True)
class Sms:
    account: str
    to: str
    sender: str
    body: str


class FakeSms:
    def __init__(self, account_id: str = "AC0123456789", token: str = "sms-token") -> None:
        self.account_id = account_id
        self.token = token
        self.refuse: set[str] = set()
        self.seen: list[Sms] = []
        self._lock = threading.Lock()
        self.url = ""

    def messages(self) -> list[Sms]:
        with self._lock:
            return list(self.seen)

    def clear(self) -> None:
        with self._lock:
            self.seen.clear()

    @contextmanager
    def running(self) -> Iterator[FakeSms]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: object) -> None:
                pass

            def _answer(self, status: int, doc: dict) -> None:
                data = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                form = parse_qs(self.rfile.read(int(self.headers.get("content-length", "0"))).decode())
                expected = "Basic " + base64.b64encode(f"{fake.account_id}:{fake.token}".encode()).decode()
                if self.headers.get("authorization") != expected:
                    return self._answer(401, {"code": 20003, "message": "Authenticate"})
                if self.path != f"/Accounts/{fake.account_id}/Messages.json":
                    return self._answer(404, {"code": 20404, "message": "not found"})
                if self.headers.get("content-type", "").split(";")[0] != "application/x-www-form-urlencoded":
                    return self._answer(415, {"message": "form expected"})
                one = {k: v[0] for k, v in form.items()}
                if not {"To", "From", "Body"} <= set(one):
                    return self._answer(400, {"code": 21604, "message": "To, From and Body are required"})
                if one["To"] in fake.refuse:
                    return self._answer(400, {"code": 21211, "message": "invalid To number"})
                with fake._lock:
                    fake.seen.append(Sms(fake.account_id, one["To"], one["From"], one["Body"]))
                self._answer(201, {"sid": f"SM{len(fake.seen):032d}", "status": "queued"})

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()
