"""Channels to other services, with the standard interceptors and a default deadline."""

from __future__ import annotations

import grpc

from likeness_platform.interceptors import client_interceptors
from likeness_platform.server import server_options
from likeness_platform.settings import ServiceSettings


def open_channel(address: str, caller: str, settings: ServiceSettings, deadline: float | None = None) -> grpc.aio.Channel:
    """An insecure aio channel to `address` whose calls carry context, traces and a deadline."""
    return grpc.aio.insecure_channel(
        address,
        # Headless Services give every pod's address: spread calls across them.
        options=[*server_options(settings), ("grpc.lb_policy_name", "round_robin")],
        interceptors=client_interceptors(caller, deadline if deadline is not None else settings.client_deadline_seconds),
    )
