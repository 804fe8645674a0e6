"""Typed clients of the Likeness mesh for internal tools: `AsyncClient` (asyncio) and `Client` (blocking).

Every call goes over mutual TLS with the identity's certificate to the service that owns the method,
carries a deadline (the client's default or `deadline=` seconds), and is tried again with jittered backoff while
the service answers UNAVAILABLE (see `RetryPolicy`). Failures raise `LikenessError` with the service's
stable code (`NO_FACE`, `PERMISSION_DENIED`, ...). Replies are the contract's protobuf messages.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import grpc

from likeness.common.v1 import common_pb2
from likeness.faces.v1 import faces_pb2, faces_pb2_grpc
from likeness.privacy.v1 import privacy_pb2, privacy_pb2_grpc, rights_pb2, rights_pb2_grpc
from likeness.render.v1 import render_pb2, render_pb2_grpc
from likeness_client.config import Endpoints, Identity
from likeness_client.retry import LikenessError, RetryPolicy

T = TypeVar("T")

DEFAULT_DEADLINE_SECONDS = 120.0
MAX_MESSAGE_BYTES = 64 << 20
REQUEST_ID_KEY = "x-request-id"
SUBJECT_KEY = "x-likeness-subject"
# Names the client program in usage statistics (`likeness-cli/0.1.0`); never anything about the user.
CLIENT_KEY = "x-likeness-client"
CLIENT_NAME = "likeness-python/0.1.0"


class AsyncClient:
    """The mesh from asyncio code. Use as `async with AsyncClient(identity) as client: ...`."""

    def __init__(
        self,
        identity: Identity | None = None,
        endpoints: Endpoints | None = None,
        deadline: float = DEFAULT_DEADLINE_SECONDS,
        retry: RetryPolicy | None = None,
        client_name: str = CLIENT_NAME,
    ) -> None:
        self.identity = identity or Identity.discover()
        self.client_name = client_name
        self.endpoints = endpoints or Endpoints.from_env(run_dir=self.identity.run_dir)
        self.deadline = deadline
        self.retry = retry or RetryPolicy()
        cert, key, ca = self.identity.read()
        self._credentials = grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)
        self._channels: dict[str, grpc.aio.Channel] = {}

    def _channel(self, service: str) -> grpc.aio.Channel:
        if service not in self._channels:
            options = [("grpc.max_receive_message_length", MAX_MESSAGE_BYTES), ("grpc.max_send_message_length", MAX_MESSAGE_BYTES)]
            self._channels[service] = grpc.aio.secure_channel(self.endpoints[service], self._credentials, options=options)
        return self._channels[service]

    def _render(self) -> render_pb2_grpc.RenderStub:
        return render_pb2_grpc.RenderStub(self._channel("render"))

    def _privacy(self) -> privacy_pb2_grpc.PrivacyStub:
        return privacy_pb2_grpc.PrivacyStub(self._channel("privacy"))

    def _rights(self) -> rights_pb2_grpc.RightsStub:
        return rights_pb2_grpc.RightsStub(self._channel("privacy"))

    def _faces(self) -> faces_pb2_grpc.FacesStub:
        return faces_pb2_grpc.FacesStub(self._channel("faces"))

    async def _call(
        self, name: str, attempt: Callable[[float, list[tuple[str, str]]], Awaitable[T]], subject: str = "", deadline: float | None = None
    ) -> T:
        """Run `attempt(remaining_seconds, metadata)` until it succeeds, fails for good, or the deadline passes."""
        loop = asyncio.get_running_loop()
        ends = loop.time() + (deadline if deadline is not None else self.deadline)
        metadata = [(REQUEST_ID_KEY, uuid.uuid4().hex), (CLIENT_KEY, self.client_name)]
        if subject:
            metadata.append((SUBJECT_KEY, subject))
        tried = 0
        while True:
            remaining = ends - loop.time()
            if remaining <= 0:
                raise LikenessError(
                    grpc.StatusCode.DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED", f"no answer within the deadline after {tried} tries", name
                )
            try:
                return await attempt(remaining, metadata)
            except grpc.RpcError as exc:
                error = LikenessError.from_rpc(exc, name)
            if not self.retry.should_retry(error.status, tried):
                raise error
            pause = self.retry.pause(tried)
            tried += 1
            if loop.time() + pause >= ends:
                raise error
            await asyncio.sleep(pause)

    async def _unary(self, name: str, method: Any, request: Any, subject: str = "", deadline: float | None = None) -> Any:
        return await self._call(name, lambda left, md: method(request, timeout=left, metadata=md), subject, deadline)

    # --- catalog ---------------------------------------------------------------------------------

    async def list_specs(
        self, query: str = "", country: str = "", document: str = "", deadline: float | None = None
    ) -> list[render_pb2.Spec]:
        """Photo specs matching a free-text query, a country (code or name) and a document kind."""
        request = render_pb2.ListSpecsRequest(query=query, country=country, document=document)
        reply = await self._unary("ListSpecs", self._render().ListSpecs, request, deadline=deadline)
        return list(reply.specs)

    async def get_spec(self, spec_id: str, deadline: float | None = None) -> render_pb2.Spec:
        reply = await self._unary("GetSpec", self._render().GetSpec, render_pb2.GetSpecRequest(spec_id=spec_id), deadline=deadline)
        return reply.spec

    async def list_papers(self, deadline: float | None = None) -> list[render_pb2.Paper]:
        reply = await self._unary("ListPapers", self._render().ListPapers, render_pb2.ListPapersRequest(), deadline=deadline)
        return list(reply.papers)

    async def list_templates(self, deadline: float | None = None) -> list[render_pb2.Template]:
        reply = await self._unary("ListTemplates", self._render().ListTemplates, render_pb2.ListTemplatesRequest(), deadline=deadline)
        return list(reply.templates)

    async def register_template(self, name: str, style: str, image: bytes, deadline: float | None = None) -> render_pb2.Template:
        """Adds a portrait template material (operators only)."""
        request = render_pb2.RegisterTemplateRequest(name=name, style=style, image=image)
        reply = await self._unary("RegisterTemplate", self._render().RegisterTemplate, request, deadline=deadline)
        return reply.template

    async def list_outfits(self, deadline: float | None = None) -> list[render_pb2.Outfit]:
        reply = await self._unary("ListOutfits", self._render().ListOutfits, render_pb2.ListOutfitsRequest(), deadline=deadline)
        return list(reply.outfits)

    async def register_outfit(
        self,
        name: str,
        image: bytes,
        neck: tuple[float, float],
        left_shoulder: tuple[float, float],
        right_shoulder: tuple[float, float],
        description: str = "",
        deadline: float | None = None,
    ) -> render_pb2.Outfit:
        """Adds a garment material (an RGBA PNG and its anchors in image pixels; admin operators only)."""
        request = render_pb2.RegisterOutfitRequest(
            name=name,
            image=image,
            neck=render_pb2.ImagePoint(x=neck[0], y=neck[1]),
            left_shoulder=render_pb2.ImagePoint(x=left_shoulder[0], y=left_shoulder[1]),
            right_shoulder=render_pb2.ImagePoint(x=right_shoulder[0], y=right_shoulder[1]),
            description=description,
        )
        reply = await self._unary("RegisterOutfit", self._render().RegisterOutfit, request, deadline=deadline)
        return reply.outfit

    # --- photos ----------------------------------------------------------------------------------

    async def create_id_photo(
        self, subject_id: str, image: bytes, spec_id: str, sheet_paper: str = "", deadline: float | None = None, **options: Any
    ) -> render_pb2.CreateIdPhotoResponse:
        """An ID photo of `image` (JPEG/PNG bytes) for `spec_id`, and a print sheet on `sheet_paper` when given.
        `options` are further CreateIdPhotoRequest fields (background, beauty, outfit_id, output)."""
        request = render_pb2.CreateIdPhotoRequest(subject_id=subject_id, image=common_pb2.ImageRef(data=image), spec_id=spec_id, **options)
        if sheet_paper:
            request.sheet.CopyFrom(render_pb2.SheetLayout(paper_id=sheet_paper))
        return await self._unary("CreateIdPhoto", self._render().CreateIdPhoto, request, subject_id, deadline)

    async def check_id_photo(
        self, subject_id: str, image: bytes, spec_id: str, deadline: float | None = None
    ) -> render_pb2.ComplianceReport:
        """The compliance report of an unedited photo against a spec."""
        request = render_pb2.CheckIdPhotoRequest(subject_id=subject_id, image=common_pb2.ImageRef(data=image), spec_id=spec_id)
        reply = await self._unary("CheckIdPhoto", self._render().CheckIdPhoto, request, subject_id, deadline)
        return reply.report

    async def open_result(
        self, result_id: str, subject_id: str, purpose: str, deadline: float | None = None
    ) -> tuple[render_pb2.ResultInfo, bytes]:
        """A stored result's description and bytes (the read is written to the access log with `purpose`)."""
        request = render_pb2.OpenResultRequest(result_id=result_id, subject_id=subject_id, purpose=purpose)

        async def attempt(left: float, metadata: list[tuple[str, str]]) -> tuple[render_pb2.ResultInfo, bytes]:
            info, chunks = render_pb2.ResultInfo(), []
            async for part in self._render().OpenResult(request, timeout=left, metadata=metadata):
                if part.HasField("info"):
                    info = part.info
                else:
                    chunks.append(part.chunk)
            return info, b"".join(chunks)

        return await self._call("OpenResult", attempt, subject_id, deadline)

    async def analyze_faces(self, image: bytes, deadline: float | None = None) -> faces_pb2.AnalyzeResponse:
        request = faces_pb2.AnalyzeRequest(image=common_pb2.ImageRef(data=image))
        return await self._unary("Analyze", self._faces().Analyze, request, deadline=deadline)

    # --- subjects and privacy --------------------------------------------------------------------

    async def register_subject(self, kind: int = privacy_pb2.SUBJECT_KIND_ACCOUNT, deadline: float | None = None) -> privacy_pb2.Subject:
        """A new data subject (e.g. for an operator's batch): everything made for it is erasable as one."""
        reply = await self._unary(
            "RegisterSubject", self._privacy().RegisterSubject, privacy_pb2.RegisterSubjectRequest(kind=kind), deadline=deadline
        )
        return reply.subject

    async def request_erasure(self, subject_id: str, reason: str = "operator", deadline: float | None = None) -> privacy_pb2.Erasure:
        request = privacy_pb2.RequestErasureRequest(subject_id=subject_id, reason=reason)
        reply = await self._unary("RequestErasure", self._privacy().RequestErasure, request, subject_id, deadline)
        return reply.erasure

    async def get_erasure(self, erasure_id: str, deadline: float | None = None) -> privacy_pb2.Erasure:
        reply = await self._unary(
            "GetErasure", self._privacy().GetErasure, privacy_pb2.GetErasureRequest(erasure_id=erasure_id), deadline=deadline
        )
        return reply.erasure

    async def verify_ledger(self, deadline: float | None = None) -> privacy_pb2.VerifyLedgerResponse:
        """Checks the hash chains of the erasure ledger and the access log."""
        return await self._unary("VerifyLedger", self._privacy().VerifyLedger, privacy_pb2.VerifyLedgerRequest(), deadline=deadline)

    async def subject_inventory(
        self, subject_id: str, purpose: str, deadline: float | None = None
    ) -> privacy_pb2.GetSubjectInventoryResponse:
        """A subject's state and every holder's counts (support role); the look is access-logged with `purpose`."""
        request = privacy_pb2.GetSubjectInventoryRequest(subject_id=subject_id, purpose=purpose)
        return await self._unary("GetSubjectInventory", self._privacy().GetSubjectInventory, request, deadline=deadline)

    async def security_events(self, limit: int = 100, deadline: float | None = None) -> list[privacy_pb2.SecurityEvent]:
        """The newest security events (auditor role)."""
        request = privacy_pb2.ListSecurityEventsRequest(limit=limit)
        return list((await self._unary("ListSecurityEvents", self._privacy().ListSecurityEvents, request, deadline=deadline)).events)

    async def settings(self, deadline: float | None = None) -> privacy_pb2.GetSettingsResponse:
        """Retention periods and key-rotation state in force (admin role)."""
        return await self._unary("GetSettings", self._privacy().GetSettings, privacy_pb2.GetSettingsRequest(), deadline=deadline)

    async def rewrap_keys(self, deadline: float | None = None) -> int:
        """Move every data key off retired KEKs now (admin role); how many moved."""
        return int((await self._unary("RewrapKeys", self._privacy().RewrapKeys, privacy_pb2.RewrapKeysRequest(), deadline=deadline)).moved)

    async def usage_stats(
        self,
        from_day: str = "",
        to_day: str = "",
        group_by: list[str] | None = None,
        filters: dict[str, str] | None = None,
        deadline: float | None = None,
    ) -> privacy_pb2.GetUsageStatsResponse:
        """Daily usage aggregates (auditor or admin role); cells under the threshold are withheld."""
        request = privacy_pb2.GetUsageStatsRequest(from_day=from_day, to_day=to_day, group_by=group_by or [], filters=filters or {})
        return await self._unary("GetUsageStats", self._privacy().GetUsageStats, request, deadline=deadline)

    async def list_inquiries(self, answered: bool = False, limit: int = 50, deadline: float | None = None) -> list[rights_pb2.Inquiry]:
        """Support: open (or answered) complaints and inquiries, oldest first; each read is in the access log."""
        state = rights_pb2.INQUIRY_STATE_ANSWERED if answered else rights_pb2.INQUIRY_STATE_OPEN
        request = rights_pb2.ListInquiriesRequest(state=state, limit=limit)
        return list((await self._unary("ListInquiries", self._rights().ListInquiries, request, deadline=deadline)).inquiries)

    async def answer_inquiry(self, inquiry_id: str, answer: str, deadline: float | None = None) -> rights_pb2.Inquiry:
        """Support: answer an inquiry once; the person reads it through GET /v1/me/inquiries."""
        request = rights_pb2.AnswerInquiryRequest(inquiry_id=inquiry_id, answer=answer)
        return (await self._unary("AnswerInquiry", self._rights().AnswerInquiry, request, deadline=deadline)).inquiry

    async def publish_notice(
        self, request: rights_pb2.PublishNoticeRequest, deadline: float | None = None
    ) -> rights_pb2.PublishNoticeResponse:
        """Admin: tell every affected subject (in-app, push, email); a policy change takes effect ≥ 30 days later."""
        return await self._unary("PublishNotice", self._rights().PublishNotice, request, deadline=deadline)

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class Client:
    """The same calls, blocking: an `AsyncClient` on a private event loop thread (usable from any thread,
    also from inside other event loops). Use as `with Client() as client: client.list_specs(...)`."""

    def __init__(
        self,
        identity: Identity | None = None,
        endpoints: Endpoints | None = None,
        deadline: float = DEFAULT_DEADLINE_SECONDS,
        retry: RetryPolicy | None = None,
        client_name: str = CLIENT_NAME,
    ) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="likeness-client", daemon=True)
        self._thread.start()
        try:
            self._async = self._run(_make_async(identity, endpoints, deadline, retry, client_name))
        except BaseException:
            self._stop()
            raise

    @property
    def aio(self) -> AsyncClient:
        return self._async

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def list_specs(self, query: str = "", country: str = "", document: str = "", deadline: float | None = None) -> list[render_pb2.Spec]:
        return self._run(self._async.list_specs(query, country, document, deadline))

    def get_spec(self, spec_id: str, deadline: float | None = None) -> render_pb2.Spec:
        return self._run(self._async.get_spec(spec_id, deadline))

    def list_papers(self, deadline: float | None = None) -> list[render_pb2.Paper]:
        return self._run(self._async.list_papers(deadline))

    def list_templates(self, deadline: float | None = None) -> list[render_pb2.Template]:
        return self._run(self._async.list_templates(deadline))

    def register_template(self, name: str, style: str, image: bytes, deadline: float | None = None) -> render_pb2.Template:
        return self._run(self._async.register_template(name, style, image, deadline))

    def list_outfits(self, deadline: float | None = None) -> list[render_pb2.Outfit]:
        return self._run(self._async.list_outfits(deadline))

    def register_outfit(
        self,
        name: str,
        image: bytes,
        neck: tuple[float, float],
        left_shoulder: tuple[float, float],
        right_shoulder: tuple[float, float],
        description: str = "",
        deadline: float | None = None,
    ) -> render_pb2.Outfit:
        return self._run(self._async.register_outfit(name, image, neck, left_shoulder, right_shoulder, description, deadline))

    def create_id_photo(
        self, subject_id: str, image: bytes, spec_id: str, sheet_paper: str = "", deadline: float | None = None, **options: Any
    ) -> render_pb2.CreateIdPhotoResponse:
        return self._run(self._async.create_id_photo(subject_id, image, spec_id, sheet_paper, deadline, **options))

    def check_id_photo(self, subject_id: str, image: bytes, spec_id: str, deadline: float | None = None) -> render_pb2.ComplianceReport:
        return self._run(self._async.check_id_photo(subject_id, image, spec_id, deadline))

    def open_result(
        self, result_id: str, subject_id: str, purpose: str, deadline: float | None = None
    ) -> tuple[render_pb2.ResultInfo, bytes]:
        return self._run(self._async.open_result(result_id, subject_id, purpose, deadline))

    def analyze_faces(self, image: bytes, deadline: float | None = None) -> faces_pb2.AnalyzeResponse:
        return self._run(self._async.analyze_faces(image, deadline))

    def register_subject(self, kind: int = privacy_pb2.SUBJECT_KIND_ACCOUNT, deadline: float | None = None) -> privacy_pb2.Subject:
        return self._run(self._async.register_subject(kind, deadline))

    def request_erasure(self, subject_id: str, reason: str = "operator", deadline: float | None = None) -> privacy_pb2.Erasure:
        return self._run(self._async.request_erasure(subject_id, reason, deadline))

    def get_erasure(self, erasure_id: str, deadline: float | None = None) -> privacy_pb2.Erasure:
        return self._run(self._async.get_erasure(erasure_id, deadline))

    def verify_ledger(self, deadline: float | None = None) -> privacy_pb2.VerifyLedgerResponse:
        return self._run(self._async.verify_ledger(deadline))

    def subject_inventory(self, subject_id: str, purpose: str, deadline: float | None = None) -> privacy_pb2.GetSubjectInventoryResponse:
        return self._run(self._async.subject_inventory(subject_id, purpose, deadline))

    def security_events(self, limit: int = 100, deadline: float | None = None) -> list[privacy_pb2.SecurityEvent]:
        return self._run(self._async.security_events(limit, deadline))

    def settings(self, deadline: float | None = None) -> privacy_pb2.GetSettingsResponse:
        return self._run(self._async.settings(deadline))

    def rewrap_keys(self, deadline: float | None = None) -> int:
        return self._run(self._async.rewrap_keys(deadline))

    def usage_stats(
        self,
        from_day: str = "",
        to_day: str = "",
        group_by: list[str] | None = None,
        filters: dict[str, str] | None = None,
        deadline: float | None = None,
    ) -> privacy_pb2.GetUsageStatsResponse:
        return self._run(self._async.usage_stats(from_day, to_day, group_by, filters, deadline))

    def list_inquiries(self, answered: bool = False, limit: int = 50, deadline: float | None = None) -> list[rights_pb2.Inquiry]:
        return self._run(self._async.list_inquiries(answered, limit, deadline))

    def answer_inquiry(self, inquiry_id: str, answer: str, deadline: float | None = None) -> rights_pb2.Inquiry:
        return self._run(self._async.answer_inquiry(inquiry_id, answer, deadline))

    def publish_notice(self, request: rights_pb2.PublishNoticeRequest, deadline: float | None = None) -> rights_pb2.PublishNoticeResponse:
        return self._run(self._async.publish_notice(request, deadline))

    def _stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    def close(self) -> None:
        if self._loop.is_closed():
            return
        self._run(self._async.close())
        self._stop()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


async def _make_async(
    identity: Identity | None, endpoints: Endpoints | None, deadline: float, retry: RetryPolicy | None, client_name: str
) -> AsyncClient:
    # Made on the client's own loop: grpc.aio channels belong to the loop they are created on.
    return AsyncClient(identity, endpoints, deadline, retry, client_name)


__all__ = ["AsyncClient", "Client", "LikenessError", "RetryPolicy"]
