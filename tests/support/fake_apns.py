"""A local stand-in for Apple Push Notification service that speaks only HTTP/2, as APNs does, on the `h2` package.

It runs its own event loop in a thread (so module-scoped fixtures and any test loop can use it), over cleartext
HTTP/2 with prior knowledge (h2c) or over TLS that offers only ALPN "h2". A client speaking HTTP/1.1 gets no answer
and is counted in `refused`. `POST /3/device/<token>` answers 200 with an `apns-id`; a token starting with "dead"
answers 410 Unregistered (an app removed from its device), one starting with "bad" 400 BadDeviceToken.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
import uuid
from typing import Any

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import ConnectionTerminated, DataReceived, RequestReceived, StreamEnded, StreamReset
from h2.exceptions import ProtocolError

from tests.support.pki import pki


class FakeApns:
    def __init__(self, tls: bool = False) -> None:
        self.tls = tls
        # One entry per request: method, path, headers (lower-case, no pseudo-headers), JSON body, ALPN protocol.
        self.seen: list[dict[str, Any]] = []
        self.connections = 0
        self.refused = 0
        self.ca_file = ""
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None

    def __enter__(self) -> FakeApns:
        context = None
        if self.tls:
            files = pki().ensure("apns")
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(files.cert, files.key)
            context.set_alpn_protocols(["h2"])
            self.ca_file = str(files.ca)
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._server = self._loop.run_until_complete(asyncio.start_server(self._session, "127.0.0.1", 0, ssl=context))
            ready.set()
            self._loop.run_forever()
            # Stopped: end the open sessions, then the loop.
            self._server.close()
            for task in asyncio.all_tasks(self._loop):
                task.cancel()
            self._loop.run_until_complete(asyncio.sleep(0.01))
            self._loop.close()

        self._thread = threading.Thread(target=run, name="fake-apns", daemon=True)
        self._thread.start()
        if not ready.wait(10) or self._server is None:
            raise RuntimeError("the fake APNs server did not start")
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"{'https' if self.tls else 'http'}://127.0.0.1:{port}"
        return self

    def __exit__(self, *_: object) -> None:
        assert self._thread is not None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def tokens(self) -> list[str]:
        """The device tokens pushed to, in order."""
        return [call["path"].rsplit("/", 1)[-1] for call in self.seen]

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        ssl_object = writer.get_extra_info("ssl_object")
        alpn = ssl_object.selected_alpn_protocol() if ssl_object is not None else "h2c"
        conn = H2Connection(H2Configuration(client_side=False, header_encoding="utf-8"))
        conn.initiate_connection()
        writer.write(conn.data_to_send())
        streams: dict[int, dict[str, Any]] = {}
        try:
            while data := await reader.read(65536):
                try:
                    events = conn.receive_data(data)
                except ProtocolError:  # not HTTP/2 (an HTTP/1.1 request line, say): APNs would not answer either
                    self.refused += 1
                    writer.write(conn.data_to_send())
                    break
                for event in events:
                    if isinstance(event, RequestReceived):
                        headers = dict(event.headers)
                        streams[event.stream_id] = {"headers": headers, "body": b""}
                    elif isinstance(event, DataReceived):
                        streams[event.stream_id]["body"] += event.data
                        conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                    elif isinstance(event, StreamEnded):
                        self._answer(conn, event.stream_id, streams.pop(event.stream_id), alpn)
                    elif isinstance(event, StreamReset):
                        streams.pop(event.stream_id, None)
                    elif isinstance(event, ConnectionTerminated):
                        break
                writer.write(conn.data_to_send())
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    def _answer(self, conn: H2Connection, stream_id: int, request: dict[str, Any], alpn: str | None) -> None:
        headers: dict[str, str] = request["headers"]
        path = headers.get(":path", "")
        self.seen.append(
            {
                "method": headers.get(":method"),
                "path": path,
                "headers": {k: v for k, v in headers.items() if not k.startswith(":")},
                "body": json.loads(request["body"] or b"null"),
                "alpn": alpn,
            }
        )
        token = path.rsplit("/", 1)[-1]
        status, reason = 200, ""
        if headers.get(":method") != "POST" or not path.startswith("/3/device/"):
            status, reason = 404, "BadPath"
        elif token.startswith("dead"):
            status, reason = 410, "Unregistered"
        elif token.startswith("bad"):
            status, reason = 400, "BadDeviceToken"
        body = json.dumps({"reason": reason}).encode() if reason else b""
        response = [(":status", str(status)), ("apns-id", str(uuid.uuid4()))]
        if body:
            response += [("content-type", "application/json"), ("content-length", str(len(body)))]
        conn.send_headers(stream_id, response, end_stream=not body)
        if body:
            conn.send_data(stream_id, body, end_stream=True)
