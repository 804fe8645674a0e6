"""An export's progress while it is built, and what its percentage means."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

# A build that has not moved for this long was interrupted (privacy restarted mid-build): it is reported failed.
STALE_AFTER = timedelta(minutes=5)

# Content types already compressed: stored in the zip as they are (deflating them costs CPU and saves nothing).
_STORED_PREFIXES = ("image/", "video/", "audio/")
_STORED_TYPES = {"application/zip", "application/gzip", "application/x-7z-compressed"}


def already_compressed(content_type: str) -> bool:
    base = content_type.split(";", 1)[0].strip().lower()
    return base in _STORED_TYPES or (base.startswith(_STORED_PREFIXES) and base not in {"image/svg+xml", "image/bmp"})


@dataclass(frozen=True)
class ExportProgress:
    export_id: str
    # building | ready | downloading | failed
    state: str
    bytes_written: int
    bytes_gathered: int
    bytes_expected: int
    parts_written: int
    parts_expected: int
    created_at: datetime
    updated_at: datetime
    expires_at: datetime
    error_code: str = ""

    @property
    def percent(self) -> int:
        """0-100, and 100 only once the archive is stored: from the bytes gathered of those the holders announced,
        else from the holders done."""
        if self.state in ("ready", "downloading"):
            return 100
        if self.bytes_expected > 0:
            done = self.bytes_gathered / self.bytes_expected
        elif self.parts_expected > 0:
            done = self.parts_written / self.parts_expected
        else:
            done = 0.0
        return max(0, min(99, int(done * 100)))

    def as_seen_at(self, now: datetime) -> ExportProgress:
        """A build that stopped moving (its process died) is a failed one."""
        if self.state == "building" and now - self.updated_at > STALE_AFTER:
            return replace(self, state="failed", error_code="EXPORT_INTERRUPTED")
        return self
