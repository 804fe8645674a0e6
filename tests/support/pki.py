"""The test run's development PKI: one CA and per-identity certificates, made once per process."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import grpc

from likeness_platform import policy
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


# Whom a test acts as when the policy allows several: the first of these the rule names.
_PREFERENCE = ("gateway", "privacy", "render", "ingestion", "faces", "billing", "operator/test")


def allowed_identity(method: str) -> str:
    """An identity the mesh policy lets call `method` (the test plays that party)."""
    for identity in _PREFERENCE:
        if policy.is_allowed(identity, method, roles=policy.ROLES):
            return identity
    raise AssertionError(f"no identity may call {method}; is it in likeness_platform.policy.POLICY?")


class _PerMethod:
    def __init__(self, owner: MeshChannel, kind: str, method: str, kwargs: dict[str, Any]) -> None:
        channel = owner.channel_of(allowed_identity(method))
        self._callable = getattr(channel, kind)(method, **kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._callable(*args, **kwargs)


class MeshChannel(grpc.aio.Channel):
    """A test's channel to one service that calls each method with a certificate the policy allows for it."""

    def __init__(self, address: str, options: Sequence[tuple[str, Any]] = ()) -> None:
        self._address, self._options = address, list(options)
        self._channels: dict[str, grpc.aio.Channel] = {}

    def channel_of(self, identity: str) -> grpc.aio.Channel:
        if identity not in self._channels:
            self._channels[identity] = channel(self._address, identity, self._options)
        return self._channels[identity]

    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return _PerMethod(self, "unary_unary", method, _named(args, kwargs))

    def unary_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return _PerMethod(self, "unary_stream", method, _named(args, kwargs))

    def stream_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return _PerMethod(self, "stream_unary", method, _named(args, kwargs))

    def stream_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return _PerMethod(self, "stream_stream", method, _named(args, kwargs))

    async def close(self, grace: float | None = None) -> None:
        for ch in self._channels.values():
            await ch.close(grace)

    def get_state(self, try_to_connect: bool = False) -> grpc.ChannelConnectivity:
        return self.channel_of("gateway").get_state(try_to_connect)

    async def wait_for_state_change(self, last_observed_state: grpc.ChannelConnectivity) -> None:
        await self.channel_of("gateway").wait_for_state_change(last_observed_state)

    async def channel_ready(self) -> None:
        await self.channel_of("gateway").channel_ready()

    async def __aenter__(self) -> MeshChannel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close(None)


def _named(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    return {**dict(zip(("request_serializer", "response_deserializer"), args, strict=False)), **kwargs}


def mesh_channel(address: str, options: Sequence[tuple[str, Any]] = ()) -> grpc.aio.Channel:
    """Like `grpc.aio.insecure_channel`, but mTLS as whichever mesh party may call each method."""
    return MeshChannel(address, options)
