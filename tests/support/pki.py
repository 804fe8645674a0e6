"""The test run's development PKI: one CA and per-identity certificates, made once per process."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import grpc

from likeness_platform.devpki import DevPki, TlsFiles


@lru_cache(maxsize=1)
def pki() -> DevPki:
    return DevPki(Path(tempfile.mkdtemp(prefix="likeness-test-pki-")))


def files(identity: str) -> TlsFiles:
    """`identity`'s certificate, key and CA files (issued on first use)."""
    return pki().ensure(identity)


def tls_settings(identity: str) -> dict[str, str]:
    """ServiceSettings fields that make a service present `identity` and trust the test CA."""
    return files(identity).settings()


def credentials(identity: str | None) -> grpc.ChannelCredentials:
    """Channel credentials of `identity`; None: trust the CA but present no certificate."""
    if identity is None:
        return grpc.ssl_channel_credentials(root_certificates=pki().ensure("privacy").ca.read_bytes())
    cert, key, ca = files(identity).read()
    return grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)


def channel(address: str, identity: str | None, options: Sequence[tuple[str, Any]] = ()) -> grpc.aio.Channel:
    """A raw aio mTLS channel from a test, calling as `identity`."""
    return grpc.aio.secure_channel(address, credentials(identity), options=list(options))


def sync_channel(address: str, identity: str | None, options: Sequence[tuple[str, Any]] = ()) -> grpc.Channel:
    return grpc.secure_channel(address, credentials(identity), options=list(options))
