"""Asks privacy, at the moment of processing, whether the person consents to it (no cache: a withdrawal counts at once)."""

from __future__ import annotations

import grpc

from likeness.privacy.v1 import rights_pb2, rights_pb2_grpc
from likeness_platform.errors import PermissionDenied, Unavailable


class ConsentRequired(PermissionDenied):
    default_code = "CONSENT_REQUIRED"


class ConsentCheck:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = rights_pb2_grpc.RightsStub(channel)

    async def require(self, subject_id: str, purpose: str) -> None:
        """Returns when `subject_id` consents to `purpose` now; ConsentRequired when not (or withdrawn)."""
        try:
            response = await self._stub.CheckConsent(rights_pb2.CheckConsentRequest(subject_id=subject_id, purpose=purpose))
        except grpc.aio.AioRpcError:
            # Unknown is not yes: without an answer nothing goes to the provider.
            raise Unavailable("the consent record is not reachable, so nothing is sent to the AI provider; try again") from None
        if not response.granted:
            raise ConsentRequired(
                f"the person has not consented to {purpose} (or withdrew it); nothing was sent to the AI provider",
            )
