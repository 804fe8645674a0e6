"""Channels to other services: mutual TLS, tracing, the call context in the metadata and a default deadline.

A channel presents this service's certificate (settings `tls_*`) and trusts only the mesh CA. When
the certificate files change (rotation), the next call opens a new underlying channel with the new
certificate; calls already running finish on the old one, which is closed after a grace period.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc
import structlog

from likeness_platform.interceptors import outgoing_metadata
from likeness_platform.server import server_options
from likeness_platform.settings import ServiceSettings
from likeness_platform.telemetry import client_tracing_interceptors, spans_exported, trace_context_metadata
from likeness_platform.tls import TlsPaths, WatchedTls, channel_credentials

log = structlog.get_logger("likeness.clients")

# How long a channel replaced after a rotation lets its running calls finish.
RETIRE_GRACE_SECONDS = 60.0

# A channel that tried a peer before it was up (render asking faces for template meshes at start) waits
# out gRPC's reconnect backoff, and calls made meanwhile fail fast with UNAVAILABLE. The default backoff
# starts at 1 s and grows to 120 s: a peer that comes up would stay unreachable for that long. Retry the
# connection soon and often (a failed connect is cheap), so a restarted peer is used within ~2 s.
RECONNECT_OPTIONS: list[tuple[str, int]] = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2000),
]

# How long a call waits for a channel that is between connection attempts (see `connected`): over the
# reconnect backoff's 2 s ceiling, so one attempt made after the peer came up is always inside it.
CONNECT_GRACE_SECONDS = 3.0


async def connected(channel: grpc.aio.Channel, grace: float = CONNECT_GRACE_SECONDS) -> bool:
    """Whether `channel` is connected, after giving it up to `grace` seconds to become so.

    A channel that found its peer down (not started yet, or restarting) waits out a reconnect
    backoff, and a call made in that gap fails at once with UNAVAILABLE although the peer may be
    up by then: render's first ID photo after a start failed so while faces had been serving for
    a second. Awaited before a call, this bridges the gap; a peer still down after `grace` is left
    for the call to report (UNAVAILABLE at once), not waited for until the call's deadline.
    """
    if channel.get_state(try_to_connect=True) == grpc.ChannelConnectivity.READY:
        return True
    try:
        await asyncio.wait_for(channel.channel_ready(), grace)
    except TimeoutError:
        return False
    return True


class _ConnectedFirst(
    grpc.aio.UnaryUnaryClientInterceptor,
    grpc.aio.UnaryStreamClientInterceptor,
    grpc.aio.StreamUnaryClientInterceptor,
    grpc.aio.StreamStreamClientInterceptor,
):
    """Every call on a mesh channel first waits for it to connect (`connected`): a peer that is starting,
    restarting or refused one connection attempt costs the caller a moment's wait, not an UNAVAILABLE.
    CI runs here failed three ways on that gap (render to faces, ingestion to privacy, the gateway to
    privacy). The interceptor costs 0.1-0.2 ms of CPU per call (bench/rpc); a READY channel waits for nothing."""

    def __init__(self) -> None:
        self.channel: grpc.aio.Channel | None = None  # set once the channel it is part of exists

    async def _call(self, continuation: Any, client_call_details: Any, request_or_iterator: Any) -> Any:
        if self.channel is not None and self.channel.get_state() != grpc.ChannelConnectivity.READY:
            await connected(self.channel)
        return await continuation(client_call_details, request_or_iterator)

    # grpc.aio passes (continuation, details, request or request iterator) positionally to each kind.
    intercept_unary_unary = intercept_unary_stream = intercept_stream_unary = intercept_stream_stream = _call


class _Method:
    """A multicallable that sends each call over the channel's current underlying channel."""

    def __init__(self, owner: ReloadingChannel, kind: str, method: str, kwargs: dict[str, Any]) -> None:
        self._owner, self._kind, self._method, self._kwargs = owner, kind, method, kwargs
        self._generation = -1
        self._callable: Any = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        channel, generation = self._owner.current()
        if generation != self._generation:
            self._callable = getattr(channel, self._kind)(self._method, **self._kwargs)
            self._generation = generation
        # The call context (request id, subject, operator, app version) and the default deadline.
        metadata = outgoing_metadata(kwargs.get("metadata"))
        if not self._owner.client_spans:
            metadata += trace_context_metadata()
        kwargs["metadata"] = metadata
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._owner.deadline
        return self._callable(*args, **kwargs)


class ReloadingChannel(grpc.aio.Channel):
    """An mTLS aio channel that follows its certificate files (see the module docstring)."""

    client_spans: bool

    def __init__(self, address: str, caller: str, settings: ServiceSettings, deadline: float) -> None:
        self._address, self._caller, self._settings, self.deadline = address, caller, settings, deadline
        self._tls = WatchedTls(TlsPaths.from_settings(settings))
        self._generation = self._tls.generation
        self._channel = self._open()
        self._retiring: set[asyncio.Task[None]] = set()

    def _open(self) -> grpc.aio.Channel:
        # OpenTelemetry's client interceptor makes a CLIENT span per call; while spans are not exported (no exporter
        # configured) it would only cost a task and a wait per call, and the calls carry the trace context without it.
        self.client_spans = spans_exported()
        first = _ConnectedFirst()
        channel = grpc.aio.secure_channel(
            self._address,
            channel_credentials(self._tls.material),
            # Headless Services give every pod's address: spread calls across them.
            options=[*server_options(self._settings), ("grpc.lb_policy_name", "round_robin"), *RECONNECT_OPTIONS],
            interceptors=[first, *client_tracing_interceptors()] if self.client_spans else [first],
        )
        first.channel = channel
        return channel

    def current(self) -> tuple[grpc.aio.Channel, int]:
        """The channel to use now, reopened first if the certificate files changed."""
        if self._tls.refresh(time.monotonic()) and self._tls.generation != self._generation:
            old, self._channel = self._channel, self._open()
            self._generation = self._tls.generation
            log.info("channel_reopened", address=self._address, generation=self._generation)
            task = asyncio.get_running_loop().create_task(old.close(RETIRE_GRACE_SECONDS))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)
        return self._channel, self._generation

    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return _Method(self, "unary_unary", method, _named(args, kwargs))

    def unary_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return _Method(self, "unary_stream", method, _named(args, kwargs))

    def stream_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return _Method(self, "stream_unary", method, _named(args, kwargs))

    def stream_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return _Method(self, "stream_stream", method, _named(args, kwargs))

    async def close(self, grace: float | None = None) -> None:
        await self._channel.close(grace)
        for task in list(self._retiring):
            task.cancel()

    def get_state(self, try_to_connect: bool = False) -> grpc.ChannelConnectivity:
        return self.current()[0].get_state(try_to_connect)

    async def wait_for_state_change(self, last_observed_state: grpc.ChannelConnectivity) -> None:
        await self._channel.wait_for_state_change(last_observed_state)

    async def channel_ready(self) -> None:
        await self.current()[0].channel_ready()

    async def __aenter__(self) -> ReloadingChannel:
        return self

    async def __aexit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        await self.close(None)


def _named(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    names = ("request_serializer", "response_deserializer")
    return {**dict(zip(names, args, strict=False)), **kwargs}


def open_channel(address: str, caller: str, settings: ServiceSettings, deadline: float | None = None) -> grpc.aio.Channel:
    """An mTLS aio channel to `address` (as `caller`, this service) whose calls carry context, traces and a deadline."""
    return ReloadingChannel(address, caller, settings, deadline if deadline is not None else settings.client_deadline_seconds)
