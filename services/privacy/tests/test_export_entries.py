"""Holders' items go into the export's zip whole or piece by piece; pieces that interleave or stop are refused."""

from __future__ import annotations

import io
import zipfile

import pytest

from likeness_platform.dataholder import ExportItem
from likeness_privacy.usecases.export import _Entries


def _pieces(name: str, data: bytes, size: int, content_type: str = "image/jpeg") -> list[ExportItem]:
    parts = [data[i : i + size] for i in range(0, len(data), size)]
    return [ExportItem("uploads", name, content_type, part, last=i == len(parts) - 1) for i, part in enumerate(parts)]


def test_pieces_make_the_same_entries_as_whole_items() -> None:
    photo, notes = bytes(range(256)) * 1000, b'{"a": 1}' * 5000
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive, _Entries(archive) as entries:
        completed = [entries.write(f"h/{p.name}", p) for p in _pieces("a.jpg", photo, 100_000)]
        completed += [entries.write(f"h/{p.name}", p) for p in _pieces("notes.json", notes, 7_000, "application/json")]
        completed.append(entries.write("h/b.jpg", ExportItem("uploads", "b.jpg", "image/jpeg", photo)))
        entries.finish()
    assert sum(completed) == 3 and completed[:3] == [0, 0, 1]
    with zipfile.ZipFile(io.BytesIO(out.getvalue())) as archive:
        assert archive.testzip() is None
        assert archive.read("h/a.jpg") == photo == archive.read("h/b.jpg") and archive.read("h/notes.json") == notes
        kinds = {i.filename: i.compress_type for i in archive.infolist()}
        assert kinds == {"h/a.jpg": zipfile.ZIP_STORED, "h/notes.json": zipfile.ZIP_DEFLATED, "h/b.jpg": zipfile.ZIP_STORED}
        assert all((i.external_attr >> 16) == 0o600 for i in archive.infolist())


def test_pieces_that_interleave_or_stop_short_are_refused_and_the_archive_still_closes() -> None:
    first, second = _pieces("a.jpg", b"x" * 300, 100), _pieces("b.jpg", b"y" * 300, 100)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive, _Entries(archive) as entries:
        entries.write("h/a.jpg", first[0])
        with pytest.raises(ValueError, match=r"h/b\.jpg began before h/a\.jpg ended"):
            entries.write("h/b.jpg", second[0])
        with pytest.raises(ValueError, match=r"h/a\.jpg ended before its last piece"):
            entries.finish()
    # Leaving the block with an entry open did not raise over the error the caller is handling.
    assert zipfile.ZipFile(io.BytesIO(out.getvalue())).namelist() == ["h/a.jpg"]
