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
