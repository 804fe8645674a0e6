"""The server interceptor's handlers are built once per method, while what each call carries stays its own."""

from __future__ import annotations

import io
import json
from typing import Any

import grpc

from likeness_platform import callcontext
from likeness_platform.interceptors import HandlerCache, ServerInterceptor, outgoing_metadata
from likeness_platform.logging import configure_logging


async def _echo_request_id(request: bytes, context: object) -> bytes:
    return callcontext.current_request_id().encode()


async def test_each_call_gets_its_own_request_id_and_log_line_from_a_cached_handler(one_method: Any) -> None:
    out = io.StringIO()
    configure_logging("test", "info", stream=out)
    interceptor = ServerInterceptor("test")
    async with one_method(interceptor, "/test.Ids/Echo", _echo_request_id) as call:
        answers = [await call(b"", metadata=((callcontext.REQUEST_ID_KEY, f"req-{i}"),), timeout=5) for i in range(3)]
    assert answers == [b"req-0", b"req-1", b"req-2"]
    assert len(interceptor._handlers._entries) == 1
    lines = [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]
    assert [line["request_id"] for line in lines if line.get("event") == "rpc"] == ["req-0", "req-1", "req-2"]


def test_the_handler_cache_rebuilds_for_a_new_handler_and_stays_bounded() -> None:
    built: list[str] = []

    def build(method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        built.append(method)
        return grpc.unary_unary_rpc_method_handler(handler.unary_unary)

    async def behaviour(request: bytes, context: object) -> bytes:
        return request

    cache = HandlerCache(build, maxsize=2)
    first = grpc.unary_unary_rpc_method_handler(behaviour)
    wrapped = cache.get("/a", first)
    assert cache.get("/a", first) is wrapped and built == ["/a"]
    # The same method served by another handler object (re-registered) is wrapped again.
    assert cache.get("/a", grpc.unary_unary_rpc_method_handler(behaviour)) is not wrapped
    cache.get("/b", first)
    cache.get("/c", first)
    assert len(cache._entries) <= 2


def test_outgoing_calls_carry_the_served_calls_context_without_overriding_the_callers() -> None:
    tokens = [
        callcontext.request_id_var.set("req-9"),
        callcontext.subject_var.set("subj-1"),
        callcontext.caller_var.set("operator/ann"),
        callcontext.app_version_var.set("2.1.0"),
    ]
    try:
        sent = dict(outgoing_metadata((("x-other", "1"), (callcontext.SUBJECT_KEY, "subj-given"))))
    finally:
        for var, token in zip(
            (callcontext.request_id_var, callcontext.subject_var, callcontext.caller_var, callcontext.app_version_var), tokens, strict=True
        ):
            var.reset(token)
    assert sent == {
        "x-other": "1",
        callcontext.SUBJECT_KEY: "subj-given",
        callcontext.REQUEST_ID_KEY: "req-9",
        callcontext.ON_BEHALF_OF_KEY: "operator/ann",
        callcontext.APP_VERSION_KEY: "2.1.0",
    }
