"""HTTPS with client certificates for uvicorn: the verified certificate reaches the app, rotated files are followed.

uvicorn verifies a client certificate against the CA but does not hand it to the application; this protocol
puts it in the ASGI TLS extension (`scope["extensions"]["tls"]["client_cert_chain"]`, PEM). The certificate
is optional at the handshake (CERT_OPTIONAL: one that is presented must chain to the mesh CA), so a request
without one gets a 401 with a code the operator can act on rather than a bare handshake failure.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Mapping
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from likeness_platform.tls import TlsPaths, WatchedTls

TLS_EXTENSION = "tls"


def client_cert_pem(scope: Mapping[str, Any]) -> bytes | None:
    """The verified client certificate of a request (PEM), None when none was presented."""
    chain = scope.get("extensions", {}).get(TLS_EXTENSION, {}).get("client_cert_chain") or []
    return chain[0].encode() if chain else None


class ClientCertProtocol(H11Protocol):
    """uvicorn's h11 protocol, giving each request of a connection the connection's verified client certificate."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        chain = [ssl.DER_cert_to_PEM_cert(der)] if der else []
        app = self.app

        async def with_cert(scope: Any, receive: Any, send: Any) -> None:
            scope.setdefault("extensions", {})[TLS_EXTENSION] = {"client_cert_chain": chain}
            await app(scope, receive, send)

        self.app = with_cert


class ServerTls:
    """The HTTPS server's SSL context, reloaded in place when the certificate files change (new handshakes use them)."""

    def __init__(self, paths: TlsPaths) -> None:
        self._watched = WatchedTls(paths)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.context.verify_mode = ssl.CERT_OPTIONAL
        self._load()

    def _load(self) -> None:
        paths = self._watched.paths
        self.context.load_cert_chain(paths.cert, paths.key)
        self.context.load_verify_locations(cafile=str(paths.ca))

    def refresh(self) -> bool:
        """Pick up rotated files; True when they changed."""
        if self._watched.refresh(time.monotonic()):
            self._load()
            return True
        return False

    async def follow(self, interval: float = 5.0) -> None:
        """Check the files every `interval` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            self.refresh()
