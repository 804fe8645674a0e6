"""Mutual TLS for every gRPC hop: server and channel credentials from watched PEM files, peer identity.

A service's certificate, key and trusted CA bundle are files (a Kubernetes Secret mounted as a
folder, or the development PKI of `make run`). They are read again when they change: servers pick up
a rotated certificate on the next handshake (grpc's dynamic credentials), channels reopen (see
`clients.open_channel`). The caller's identity is the URI SAN of its certificate, never a header.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import grpc
import structlog
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from likeness_platform.settings import ServiceSettings

log = structlog.get_logger("likeness.tls")

SPIFFE_PREFIX = "spiffe://likeness/"


class TlsNotConfigured(RuntimeError):
    """The service has no certificate: it must not start (there is no plaintext mode)."""


@dataclass(frozen=True)
class TlsPaths:
    cert: Path
    key: Path
    ca: Path

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> TlsPaths:
        missing = [f"LIKENESS_{name.upper()}" for name in ("tls_cert_file", "tls_key_file", "tls_ca_file") if not getattr(settings, name)]
        if missing:
            raise TlsNotConfigured(
                f"mutual TLS is required: set {', '.join(missing)} (certificate, key and CA bundle PEM files; "
                "`make run` creates development ones)"
            )
        paths = cls(Path(settings.tls_cert_file), Path(settings.tls_key_file), Path(settings.tls_ca_file))
        for path in (paths.cert, paths.key, paths.ca):
            if not path.is_file():
                raise TlsNotConfigured(f"mutual TLS is required: {path} does not exist")
        return paths

    def stamp(self) -> tuple[tuple[int, int], ...]:
        """Changes whenever any of the files is replaced or rewritten."""
        out = []
        for path in (self.cert, self.key, self.ca):
            try:
                st = os.stat(path)
                out.append((st.st_mtime_ns, st.st_size))
            except OSError:
                out.append((0, 0))
        return tuple(out)


@dataclass(frozen=True)
class TlsMaterial:
    cert: bytes
    key: bytes
    ca: bytes


def load(paths: TlsPaths) -> TlsMaterial:
    """Read and check the three files: the key must belong to the certificate (a half-written rotation is refused)."""
    cert, key, ca = paths.cert.read_bytes(), paths.key.read_bytes(), paths.ca.read_bytes()
    try:
        leaf = x509.load_pem_x509_certificate(cert)
        private = serialization.load_pem_private_key(key, password=None)
        x509.load_pem_x509_certificates(ca)
    except ValueError as exc:
        raise TlsNotConfigured(f"the TLS files at {paths.cert.parent} cannot be read: {exc}") from None
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if leaf.public_key().public_bytes(*spki) != private.public_key().public_bytes(*spki):
        raise TlsNotConfigured(f"the key at {paths.key} does not belong to the certificate at {paths.cert}")
    return TlsMaterial(cert, key, ca)


class WatchedTls:
    """The current TLS material of a service, re-read when the files change (checked at most once a second)."""

    def __init__(self, paths: TlsPaths, min_interval: float = 1.0) -> None:
        self.paths = paths
        self._stamp = paths.stamp()
        self.material = load(paths)
        self.generation = 0
        self._checked = 0.0
        self._interval = min_interval
        self._lock = threading.Lock()

    def refresh(self, now: float) -> bool:
        """Re-read the files if they changed; True when new material was loaded."""
        if now - self._checked < self._interval:
            return False
        with self._lock:
            self._checked = now
            stamp = self.paths.stamp()
            if stamp == self._stamp:
                return False
            try:
                material = load(self.paths)
            except (OSError, TlsNotConfigured) as exc:
                # Mid-rotation (key written, certificate not yet): keep serving with the old pair, look again soon.
                log.warning("tls_reload_deferred", error=str(exc))
                return False
            self._stamp, self.material = stamp, material
            self.generation += 1
            log.info("tls_reloaded", cert=str(self.paths.cert), generation=self.generation)
            return True


def server_credentials(settings: ServiceSettings) -> grpc.ServerCredentials:
    """Server credentials that demand a client certificate from the CA and follow rotated files on new handshakes."""
    import time

    watched = WatchedTls(TlsPaths.from_settings(settings), min_interval=0.0)

    def config(material: TlsMaterial) -> Any:
        return grpc.ssl_server_certificate_configuration([(material.key, material.cert)], root_certificates=material.ca)

    def fetch() -> Any:
        # Called by grpc before each handshake: None keeps the current configuration.
        return config(watched.material) if watched.refresh(time.monotonic()) else None

    return grpc.dynamic_ssl_server_credentials(config(watched.material), fetch, require_client_authentication=True)


def channel_credentials(material: TlsMaterial) -> grpc.ChannelCredentials:
    """Client credentials: trust only the mesh CA, present this service's certificate."""
    return grpc.ssl_channel_credentials(root_certificates=material.ca, private_key=material.key, certificate_chain=material.cert)


@lru_cache(maxsize=256)
def _identity_of_pem(pem: bytes) -> str:
    try:
        cert = x509.load_pem_x509_certificate(pem)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return ""
    for uri in san.get_values_for_type(x509.UniformResourceIdentifier):
        if uri.startswith(SPIFFE_PREFIX):
            return uri[len(SPIFFE_PREFIX) :]
    return ""


# Operator roles ride in the certificate's Subject as OU `likeness-role:<role>`: the CA that vouches for
# the identity vouches for its roles, so no mesh-wide role table has to be kept in step on every service.
ROLE_OU_PREFIX = "likeness-role:"


@lru_cache(maxsize=256)
def _roles_of_pem(pem: bytes) -> frozenset[str]:
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError:
        return frozenset()
    units = cert.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATIONAL_UNIT_NAME)
    return frozenset(str(u.value)[len(ROLE_OU_PREFIX) :] for u in units if str(u.value).startswith(ROLE_OU_PREFIX))


def roles_from_auth_context(auth: Mapping[str, Sequence[bytes]]) -> frozenset[str]:
    """The operator roles a verified peer certificate carries (empty for services and role-less operators)."""
    pems = auth.get("x509_pem_cert") or ()
    return _roles_of_pem(bytes(pems[0])) if pems else frozenset()


def identity_from_auth_context(auth: Mapping[str, Sequence[bytes]]) -> str:
    """The mesh identity (`render`, `operator/alice`) in a verified peer certificate, '' when there is none."""
    pems = auth.get("x509_pem_cert") or ()
    return _identity_of_pem(bytes(pems[0])) if pems else ""


def peer_identity_and_roles(context: grpc.aio.ServicerContext) -> tuple[str, frozenset[str]]:
    """The calling identity and operator roles of a call being served, from one read of its client certificate."""
    auth = context.auth_context()
    return identity_from_auth_context(auth), roles_from_auth_context(auth)
