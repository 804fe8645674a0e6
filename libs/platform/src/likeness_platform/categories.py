"""The one registry of data-category names.

Every DataHolder reports its counts (Inventory, Erase, Sweep), export items and retention rows under
these names, and privacy keys its retention periods by them. A name not listed here is a bug: add it
here first, with the holder that keeps it.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class Category(StrEnum):
    """A kind of data a holder keeps (or, for ORPHAN_BLOBS, removes) about people."""

    # gateway
    DEVICES = "devices"
    # gateway, memory-only mode: images held in the answering replica's memory for the next call
    INLINE_IMAGES = "inline_images"
    # Optional email + password accounts (address sealed under the subject's key) and their one-time codes.
    ACCOUNTS = "accounts"
    ACCOUNT_CODES = "account_codes"
    # Sign-ups waiting for the emailed code (address sealed, password hashed, code hashed).
    ACCOUNT_SIGNUPS = "account_signups"
    # ingestion
    UPLOADS = "uploads"
    # render
    RESULTS = "results"
    # faces (keeps nothing; reports zero so privacy can confirm it)
    ANALYSES = "analyses"
    # billing
    PURCHASES = "purchases"
    SUBSCRIPTIONS = "subscriptions"
    QUOTA_USAGE = "quota_usage"
    PENDING_NOTIFICATIONS = "pending_notifications"
    NOTIFICATION_LINKS = "notification_links"
    # privacy
    SUBJECTS = "subjects"
    DATA_KEYS = "data_keys"
    GENERATION_RECORDS = "generation_records"
    SECURITY_EVENTS = "security_events"
    ACCESS_LOG = "access_log"
    EXPORTS = "exports"
    RECORDS = "records"  # the export item holding privacy's own records
    # privacy, a person's rights (issue #22): consent history, inquiries, notices addressed to one
    # subject and the channels notices reach it through
    CONSENTS = "consents"
    INQUIRIES = "inquiries"
    NOTICE_RECIPIENTS = "notice_recipients"
    NOTICE_CONTACTS = "notice_contacts"
    RIGHTS = "rights"  # the export item holding them
    # Sweep only: encrypted blobs no row points to (left by a crash between blob and row).
    ORPHAN_BLOBS = "orphan_blobs"
    # Inventory and Erase of a sealed store: the subject's blobs as listed in the blob store, rows or not.
    BLOBS = "blobs"
    # Sweep only: `.tmp` files of blob writes interrupted before their rename.
    TEMP_BLOBS = "temp_blobs"


def is_registered(name: str) -> bool:
    """Whether `name` is a registered category."""
    return name in Category._value2member_map_


def unregistered(names: Iterable[str]) -> set[str]:
    """The names (e.g. a holder's inventory keys) that are not registered categories."""
    return {str(n) for n in names if not is_registered(n)}
