"""The gateway's module for the render service."""

from __future__ import annotations

from collections.abc import AsyncIterator

from likeness.common.v1 import common_pb2
from likeness.render.v1 import render_pb2, render_pb2_grpc
from likeness_gateway.adapters.upstream import Upstream
from likeness_platform.settings import ServiceSettings

# The render contract's enums as the public HTTP API spells them (the same strings as before
# the contract had enums; an unknown value reads as "").
SEVERITY_NAMES = {render_pb2.SEVERITY_ERROR: "error", render_pb2.SEVERITY_WARNING: "warning"}
REMEDY_NAMES = {render_pb2.REMEDY_RETAKE: "retake", render_pb2.REMEDY_FIXED: "fixed"}
RESULT_KIND_NAMES = {
    render_pb2.RESULT_KIND_ID_PHOTO: "id_photo",
    render_pb2.RESULT_KIND_SHEET: "sheet",
    render_pb2.RESULT_KIND_PORTRAIT: "portrait",
    render_pb2.RESULT_KIND_HAIRSTYLE: "hairstyle",
}
FORMAT_NAMES = {render_pb2.IMAGE_FORMAT_JPEG: "JPEG", render_pb2.IMAGE_FORMAT_PNG: "PNG"}
MEDIUM_NAMES = {render_pb2.MEDIUM_PRINT: "print", render_pb2.MEDIUM_DIGITAL: "digital", render_pb2.MEDIUM_BOTH: "both"}


def severity_name(value: int) -> str:
    return SEVERITY_NAMES.get(value, "")


def remedy_name(value: int) -> str:
    return REMEDY_NAMES.get(value, "")


def result_kind_name(value: int) -> str:
    return RESULT_KIND_NAMES.get(value, "")


def spec_format_name(value: int) -> str:
    return FORMAT_NAMES.get(value, "")


def medium_name(value: int) -> str:
    return MEDIUM_NAMES.get(value, "")


def image_ref(upload_id: str, inline: bytes | None) -> common_pb2.ImageRef:
    """Inline bytes in memory-only mode, else the stored upload's id."""
    return common_pb2.ImageRef(data=inline) if inline is not None else common_pb2.ImageRef(upload_id=upload_id)


class RenderClient(Upstream):
    def __init__(self, address: str, settings: ServiceSettings, deadline: float) -> None:
        super().__init__("render", address, settings, deadline)
        self.stub = render_pb2_grpc.RenderStub(self.channel)

    async def create_id_photo(self, request: render_pb2.CreateIdPhotoRequest) -> render_pb2.CreateIdPhotoResponse:
        return await self.call(self.stub.CreateIdPhoto(request, timeout=120))

    async def check_id_photo(self, request: render_pb2.CheckIdPhotoRequest) -> render_pb2.ComplianceReport:
        return (await self.call(self.stub.CheckIdPhoto(request, timeout=120))).report

    async def create_portrait(self, request: render_pb2.CreatePortraitRequest) -> render_pb2.ResultInfo:
        return (await self.call(self.stub.CreatePortrait(request, timeout=120))).result

    async def change_hairstyle(self, request: render_pb2.ChangeHairstyleRequest) -> render_pb2.ResultInfo:
        return (await self.call(self.stub.ChangeHairstyle(request, timeout=120))).result

    async def specs(self, country: str = "", document: str = "", query: str = "") -> list[render_pb2.Spec]:
        reply = await self.call(self.stub.ListSpecs(render_pb2.ListSpecsRequest(country=country, document=document, query=query)))
        return list(reply.specs)

    async def spec(self, spec_id: str) -> render_pb2.Spec:
        return (await self.call(self.stub.GetSpec(render_pb2.GetSpecRequest(spec_id=spec_id)))).spec

    async def papers(self) -> list[render_pb2.Paper]:
        return list((await self.call(self.stub.ListPapers(render_pb2.ListPapersRequest()))).papers)

    async def outfits(self) -> list[render_pb2.Outfit]:
        return list((await self.call(self.stub.ListOutfits(render_pb2.ListOutfitsRequest()))).outfits)

    async def templates(self) -> list[render_pb2.Template]:
        return list((await self.call(self.stub.ListTemplates(render_pb2.ListTemplatesRequest()))).templates)

    async def hairstyles(self) -> list[render_pb2.Hairstyle]:
        return list((await self.call(self.stub.ListHairstyles(render_pb2.ListHairstylesRequest()))).hairstyles)

    async def describe_result(self, subject_id: str, result_id: str) -> render_pb2.ResultInfo:
        """A result's description without transferring its bytes."""
        stream = self.stub.OpenResult(render_pb2.OpenResultRequest(result_id=result_id, subject_id=subject_id, purpose="describe"))
        first = await self.call(stream.read())
        stream.cancel()
        return first.info

    async def open_result(self, subject_id: str, result_id: str, purpose: str) -> tuple[render_pb2.ResultInfo, AsyncIterator[bytes]]:
        """The result's description, then its bytes as a stream; errors surface before any byte is sent."""
        stream = self.stub.OpenResult(render_pb2.OpenResultRequest(result_id=result_id, subject_id=subject_id, purpose=purpose))
        first = await self.call(stream.read())
        info = first.info

        async def chunks() -> AsyncIterator[bytes]:
            while True:
                message = await stream.read()
                if not isinstance(message, render_pb2.OpenResultResponse):
                    return
                yield message.chunk

        return info, chunks()
