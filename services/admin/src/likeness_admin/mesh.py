"""The admin API's gRPC calls into the mesh, made as the admin identity *for* the operator who asked.

Each call names the operator and their certificate roles (`policy.DELEGATORS`): the server judges the call
by the same policy as if the operator had called it directly, and writes reads to the access log under
`operator/<name> via admin` with the purpose given.
"""

from __future__ import annotations

from typing import Any

import grpc

from likeness.privacy.v1 import privacy_pb2_grpc
from likeness.render.v1 import render_pb2_grpc
from likeness_admin.operators import Operator
from likeness_platform import callcontext
from likeness_platform.clients import open_channel
from likeness_platform.errors import ERROR_CODE_KEY
from likeness_platform.settings import ServiceSettings

# gRPC status -> the HTTP status the admin API answers with.
HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}


class UpstreamError(Exception):
    """A mesh call failed: the HTTP status, the service's stable code and its message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _error(exc: grpc.aio.AioRpcError) -> UpstreamError:
    trailing = dict(exc.trailing_metadata() or ())
    code = str(trailing.get(ERROR_CODE_KEY) or exc.code().name)
    return UpstreamError(HTTP_STATUS.get(exc.code(), 502), code, exc.details() or exc.code().name)


class Mesh:
    """Stubs of the services the admin API reaches, over mTLS channels as `admin`."""

    def __init__(self, settings: ServiceSettings, deadline: float) -> None:
        self._channels = [
            open_channel(settings.privacy_addr, "admin", settings, deadline),
            open_channel(settings.render_addr, "admin", settings, deadline),
        ]
        self.privacy = privacy_pb2_grpc.PrivacyStub(self._channels[0])
        self.render = render_pb2_grpc.RenderStub(self._channels[1])

    @staticmethod
    def metadata(operator: Operator, purpose: str = "") -> tuple[tuple[str, str], ...]:
        """What names the operator (and why) on a call made for them."""
        out = [
            (callcontext.ON_BEHALF_OF_KEY, operator.identity),
            (callcontext.OPERATOR_ROLES_KEY, ",".join(sorted(operator.roles))),
            (callcontext.CLIENT_KEY, "likeness-admin/0.1.0"),
        ]
        if purpose:
            out.append((callcontext.PURPOSE_KEY, purpose))
        return tuple(out)

    async def call(self, method: Any, request: Any, operator: Operator, purpose: str = "") -> Any:
        """One unary call for `operator`; UpstreamError when it fails."""
        try:
            # wait_for_ready: a peer that is (re)connecting is waited for within the deadline rather than failing the
            # operator's call at once; a call that never left cannot have done anything, so nothing runs twice.
            return await method(request, metadata=self.metadata(operator, purpose), wait_for_ready=True)
        except grpc.aio.AioRpcError as exc:
            raise _error(exc) from None

    async def close(self) -> None:
        for channel in self._channels:
            await channel.close()
