"""The `file` part of a multipart/form-data body, streamed as it arrives: nothing is spooled to memory or disk
beyond the chunk being passed on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from python_multipart import MultipartParser
from python_multipart.multipart import parse_options_header


class MultipartError(ValueError):
    """The body is not multipart/form-data with one `file` part."""


@dataclass
class _State:
    header_name: bytes = b""
    value: bytes = b""
    headers: dict[bytes, bytes] = field(default_factory=dict)
    in_file: bool = False
    found: bool = False
    file_type: str = ""
    ready: list[bytes] = field(default_factory=list)


def boundary_of(content_type: str) -> bytes:
    kind, options = parse_options_header(content_type)
    boundary = options.get(b"boundary", b"")
    if kind != b"multipart/form-data" or not boundary or len(boundary) > 200:
        raise MultipartError("send multipart/form-data with a boundary")
    return boundary


class FilePart:
    """Feeds body chunks to a streaming multipart parser; `content_type` is known once the part's headers are."""

    def __init__(self, content_type: str, source: AsyncIterator[bytes]) -> None:
        self._state = _State()
        self._source = source
        s = self._state

        def on_header_field(data: bytes, start: int, end: int) -> None:
            s.header_name += data[start:end]

        def on_header_value(data: bytes, start: int, end: int) -> None:
            s.value += data[start:end]

        def on_header_end() -> None:
            s.headers[s.header_name.lower()] = s.value
            s.header_name, s.value = b"", b""

        def on_headers_finished() -> None:
            _, options = parse_options_header(s.headers.get(b"content-disposition", b""))
            s.in_file = options.get(b"name") == b"file" and not s.found
            if s.in_file:
                s.found = True
                s.file_type = s.headers.get(b"content-type", b"").decode("latin-1")
            s.headers = {}

        def on_part_data(data: bytes, start: int, end: int) -> None:
            if s.in_file:
                s.ready.append(bytes(data[start:end]))

        def on_part_end() -> None:
            s.in_file = False

        self._parser = MultipartParser(
            boundary_of(content_type),
            {
                "on_header_field": on_header_field,
                "on_header_value": on_header_value,
                "on_header_end": on_header_end,
                "on_headers_finished": on_headers_finished,
                "on_part_data": on_part_data,
                "on_part_end": on_part_end,
            },
            max_header_count=8,
        )

    async def open(self) -> tuple[str, AsyncIterator[bytes]]:
        """Read up to the start of the `file` part; its declared content type and a stream of its bytes."""
        s = self._state
        async for chunk in self._source:
            self._feed(chunk)
            if s.found:
                return s.file_type, self._rest()
        self._parser.finalize()
        raise MultipartError("send the image in a multipart field named 'file'")

    def _feed(self, chunk: bytes) -> None:
        try:
            self._parser.write(chunk)
        except Exception as exc:  # the parser signals malformed input with several exception types
            raise MultipartError("the multipart body is malformed") from exc

    async def _rest(self) -> AsyncIterator[bytes]:
        s = self._state
        while True:
            while s.ready:
                yield s.ready.pop(0)
            chunk = await anext(self._source, None)
            if chunk is None:
                break
            self._feed(chunk)
        while s.ready:
            yield s.ready.pop(0)
