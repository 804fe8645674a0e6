"""A registered device, as the gateway knows it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Device:
    device_id: str
    subject_id: str
    platform: str
    model: str
    os_version: str
    app_version: str
    language: str
    active: bool
    created_at: datetime
    # The token stops working at this time; a rotation starts a new term.
    expires_at: datetime | None = None

    def usable(self, now: datetime) -> bool:
        """Whether the device's token may still be used (active and not expired)."""
        return self.active and (self.expires_at is None or self.expires_at > now)
