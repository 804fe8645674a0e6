"""Composition root of the privacy service."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import structlog

from likeness.privacy.v1 import privacy_pb2_grpc, rights_pb2_grpc
from likeness_platform.blobs import blob_store_from_settings
from likeness_platform.dataholder import add_dataholder
from likeness_platform.db import open_service_pool
from likeness_platform.mail import MailSettings, mail_sender
from likeness_platform.server import Wiring, run_service
from likeness_privacy.adapters import usage_metrics
from likeness_privacy.adapters.apns import ApnsConfig, ApnsSender
from likeness_privacy.adapters.holders import RemoteHolder
from likeness_privacy.adapters.repository import APPEND_ONLY, PrivacyRepository
from likeness_privacy.adapters.sms import SmsConfig, SmsSender
from likeness_privacy.domain.checkpoints import key_id, public_key, public_text, signing_key
from likeness_privacy.domain.keys import KeyError_, parse_kek
from likeness_privacy.domain.rights import E164
from likeness_privacy.grpc_api import PrivacyServicer, service_name
from likeness_privacy.grpc_rights import RightsServicer
from likeness_privacy.grpc_rights import service_name as rights_service_name
from likeness_privacy.usecases import PrivacyConfig, PrivacyUseCases, build_use_cases
from likeness_privacy.usecases.operator_settings import SettingsView, retired_states
from likeness_privacy.usecases.rights import RightsConfig

log = structlog.get_logger("likeness.privacy")
MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
# How often exports interrupted by a restart (or a replica's death) are looked for and built again.
EXPORT_RESUME_SECONDS = 60.0


class PrivacySettings(MailSettings):
    grpc_port: int = 50055
    # Base64 32-byte key-encryption key; required (make run and tests generate a dev key).
    kek: str = ""
    # The KEK's id, stored with every data key it wraps. To rotate: give a new `kek` and `kek_id`, and move the
    # old one to `retired_keks` as {"<old id>": "<base64>@<YYYY-MM-DD it was retired>"}; the rewrap job moves every
    # key to the new KEK, and the old one is no longer used (destroy it) `kek_backup_window_days` after that date.
    kek_id: str = ""
    retired_keks: dict[str, str] = {}
    # How long backups are kept: a retired KEK must outlive every backup taken while it wrapped keys, and no
    # longer, so an erased subject is unrecoverable from any backup once the window after the next rotation is over.
    kek_backup_window_days: int = 35
    kek_rewrap_seconds: float = 3600.0
    # Base64 key for keyed hashes of IPs and subject pseudonyms; derived from the KEK when empty.
    pseudonym_key: str = ""
    # JSON object: holder name -> gRPC address of its DataHolder.
    holders: dict[str, str] = {}
    retention_interval_seconds: float = 300.0
    erasure_retry_base_seconds: float = 0.5
    erasure_retry_cap_seconds: float = 30.0
    erasure_poll_seconds: float = 5.0
    holder_timeout_seconds: float = 10.0
    # The longest one holder's export stream may take (everything it keeps about a subject).
    holder_export_timeout_seconds: float = 900.0
    # Grace period before a completed erasure is verified again (and anything found re-erased); longer than any
    # request deadline, shorter than the holders' tombstones (1 h).
    erasure_reverify_seconds: float = 600.0
    export_ttl_seconds: int = 3600
    export_max_bytes: int = 2 * 1024**3
    # Base64 32-byte Ed25519 seed signing the ledger checkpoints; derived from the KEK when empty.
    ledger_signing_key: str = ""
    # JSON list of the public keys (base64 of 32 raw bytes) of retired signing keys. To rotate: give a new
    # `ledger_signing_key` and list the old key's public key here, so the checkpoints it signed still verify.
    # Public keys only: verifying never needs an old private key (destroy it).
    ledger_retired_public_keys: list[str] = []
    # Where signed checkpoints of the ledger's head go: outside the database, append-only
    # (local: a folder; s3: a bucket prefix, which should have object lock in compliance mode).
    ledger_checkpoint_backend: str = "local"
    ledger_checkpoint_dir: str = ".run/ledger-checkpoints"
    ledger_checkpoint_s3_bucket: str = ""
    ledger_checkpoint_s3_prefix: str = "ledger-checkpoints/"
    ledger_checkpoint_s3_endpoint_url: str = ""
    ledger_checkpoint_s3_region: str = ""
    ledger_checkpoint_seconds: float = 300.0
    # Usage statistics: cells (day x interface, operation, spec, country, outcome, app version) counting fewer
    # calls than this are withheld from every read (admin API, metrics); at least 2.
    stats_min_count: int = 5
    # How often the Prometheus gauge of the last complete day is refreshed.
    stats_metrics_seconds: float = 300.0
    # Complaints and inquiries (issue #22): the longest message or answer, and how long both are kept.
    inquiry_max_chars: int = 4000
    inquiry_retention_days: int = 365
    # APNs token-based auth for notices: the .p8 key (PEM text, or a path to it), its key id, the team id and the
    # app's bundle id; any empty: no push (in-app and email only). Pushes go over HTTP/2 only (what APNs speaks).
    apns_host: str = "https://api.push.apple.com"
    apns_key: str = ""
    apns_key_id: str = ""
    apns_team_id: str = ""
    apns_topic: str = ""
    # SMS notices through a Twilio-style HTTPS gateway: its API base URL, the account id, the token (basic auth) and
    # the sending number (E.164); any empty: no SMS.
    sms_base_url: str = ""
    sms_account_id: str = ""
    sms_token: str = ""
    sms_from: str = ""
    notice_delivery_concurrency: int = 16


def build_config(settings: PrivacySettings) -> PrivacyConfig:
    kek = parse_kek(settings.kek)
    if settings.pseudonym_key:
        pseudonym_key = base64.b64decode(settings.pseudonym_key)
    else:
        pseudonym_key = hmac.new(kek, b"likeness-pseudonyms", hashlib.sha256).digest()
    try:
        if settings.ledger_signing_key:
            signing_seed = base64.b64decode(settings.ledger_signing_key, validate=True)
        else:
            signing_seed = hmac.new(kek, b"likeness-ledger-signing", hashlib.sha256).digest()
        signing_key(signing_seed)
        retired = [public_key(k) for k in settings.ledger_retired_public_keys]
    except ValueError as exc:
        raise SystemExit(f"LIKENESS_LEDGER_SIGNING_KEY / LIKENESS_LEDGER_RETIRED_PUBLIC_KEYS: {exc}") from None
    return PrivacyConfig(
        kek=kek,
        kek_id=settings.kek_id,
        retired_keks=retired_keks(settings.retired_keks, settings.kek_backup_window_days, datetime.now(UTC)),
        pseudonym_key=pseudonym_key,
        ledger_signing_key=signing_seed,
        ledger_retired_public_keys=[public_text(k) for k in retired],
        retry_base_seconds=settings.erasure_retry_base_seconds,
        retry_cap_seconds=settings.erasure_retry_cap_seconds,
        erasure_poll_seconds=settings.erasure_poll_seconds,
        holder_timeout_seconds=settings.holder_timeout_seconds,
        export_ttl=timedelta(seconds=settings.export_ttl_seconds),
        export_max_bytes=settings.export_max_bytes,
        reverify_after=timedelta(seconds=settings.erasure_reverify_seconds),
    )


def rights_config(settings: PrivacySettings) -> RightsConfig:
    if not 1 <= settings.inquiry_max_chars <= 100_000:
        raise SystemExit("LIKENESS_INQUIRY_MAX_CHARS must be 1..100000")
    if not 1 <= settings.inquiry_retention_days <= 3650:
        raise SystemExit("LIKENESS_INQUIRY_RETENTION_DAYS must be 1..3650")
    return RightsConfig(
        inquiry_max_chars=settings.inquiry_max_chars,
        inquiry_retention=timedelta(days=settings.inquiry_retention_days),
        delivery_concurrency=max(1, settings.notice_delivery_concurrency),
    )


def apns_sender(settings: PrivacySettings) -> ApnsSender | None:
    """The APNs adapter when every APNs setting is given; None (no push) when none is; refuses half a configuration."""
    given = [settings.apns_key, settings.apns_key_id, settings.apns_team_id, settings.apns_topic]
    if not any(given):
        return None
    if not all(given):
        raise SystemExit("APNs needs LIKENESS_APNS_KEY, LIKENESS_APNS_KEY_ID, LIKENESS_APNS_TEAM_ID and LIKENESS_APNS_TOPIC together")
    key = settings.apns_key
    if "-----BEGIN" not in key:
        key = Path(key).read_text()
    config = ApnsConfig(settings.apns_host, key.encode(), settings.apns_key_id, settings.apns_team_id, settings.apns_topic)
    try:
        return ApnsSender(config)
    except (ValueError, ImportError) as exc:
        # ImportError: an install without the h2 package (a dependency of privacy), which APNs's HTTP/2 needs.
        raise SystemExit(f"APNs cannot be used: {exc}") from None


def sms_sender(settings: PrivacySettings) -> SmsSender | None:
    """The SMS adapter when every SMS setting is given; None (no SMS) when none is; refuses half a configuration."""
    given = [settings.sms_base_url, settings.sms_account_id, settings.sms_token, settings.sms_from]
    if not any(given):
        return None
    if not all(given):
        raise SystemExit("SMS needs LIKENESS_SMS_BASE_URL, LIKENESS_SMS_ACCOUNT_ID, LIKENESS_SMS_TOKEN and LIKENESS_SMS_FROM together")
    if not E164.match(settings.sms_from):
        raise SystemExit("LIKENESS_SMS_FROM must be an E.164 number (+ and 7-15 digits)")
    try:
        return SmsSender(SmsConfig(settings.sms_base_url, settings.sms_account_id, settings.sms_token, settings.sms_from))
    except ValueError as exc:
        raise SystemExit(f"LIKENESS_SMS_BASE_URL: {exc}") from None


def retired_keks(configured: dict[str, str], window_days: int, now: datetime) -> dict[str, bytes]:
    """The retired KEKs still inside the backup window; one past it is not used (and should be destroyed)."""
    kept: dict[str, bytes] = {}
    for kek_id, value in configured.items():
        encoded, _, retired_on = value.partition("@")
        if not retired_on:
            raise KeyError_(f"retired KEK {kek_id!r} needs its retirement date: <base64>@YYYY-MM-DD")
        try:
            retired = datetime.fromisoformat(retired_on).replace(tzinfo=UTC)
        except ValueError as exc:
            raise KeyError_(f"retired KEK {kek_id!r}: {retired_on!r} is not a date (YYYY-MM-DD)") from exc
        if now > retired + timedelta(days=window_days):
            log.error("retired_kek_past_backup_window", kek_id=kek_id, retired_on=retired_on, window_days=window_days)
            continue
        kept[kek_id] = parse_kek(encoded)
    return kept


def settings_view(settings: PrivacySettings, config: PrivacyConfig) -> SettingsView:
    """What admins see of the settings in force (GetSettings): periods, ids and dates, never a key."""
    return SettingsView(
        retention=dict(config.retention),
        kek_id=settings.kek_id,
        retired_keks=retired_states(settings.retired_keks, settings.kek_backup_window_days),
        kek_backup_window_days=settings.kek_backup_window_days,
        kek_rewrap_interval=timedelta(seconds=settings.kek_rewrap_seconds),
        erasure_reverify_after=timedelta(seconds=settings.erasure_reverify_seconds),
        stats_min_count=settings.stats_min_count,
    )


@dataclass(kw_only=True)
class PrivacyWiring(Wiring[PrivacySettings]):
    use_cases: PrivacyUseCases
    holders: list[RemoteHolder]


async def build(settings: PrivacySettings) -> PrivacyWiring:
    """The privacy service's one composition root: adapters, use cases, servicers, background loops."""
    config = build_config(settings)
    # Public facts an auditor needs to verify the checkpoints offline (`likeness ledger verify --checkpoints`).
    signing = signing_key(config.ledger_signing_key).public_key()
    log.info(
        "ledger_signing_key",
        key_id=key_id(signing),
        public_key=public_text(signing),
        retired_key_ids=[key_id(public_key(k)) for k in config.ledger_retired_public_keys],
    )
    pool = await open_service_pool(settings, "privacy", MIGRATIONS, append_only=APPEND_ONLY)
    holders = [
        RemoteHolder(name, addr, settings, settings.holder_timeout_seconds, settings.holder_export_timeout_seconds)
        for name, addr in settings.holders.items()
    ]
    sink = blob_store_from_settings(
        settings.ledger_checkpoint_backend,
        settings.ledger_checkpoint_dir,
        settings.ledger_checkpoint_s3_bucket,
        settings.ledger_checkpoint_s3_prefix,
        settings.ledger_checkpoint_s3_endpoint_url,
        settings.ledger_checkpoint_s3_region,
    )
    if settings.stats_min_count < 2:
        raise SystemExit("LIKENESS_STATS_MIN_COUNT must be at least 2: a count of 1 singles a person out")
    push = apns_sender(settings)
    sms = sms_sender(settings)
    use_cases = build_use_cases(
        PrivacyRepository(pool),
        holders,
        config,
        sink,
        settings.stats_min_count,
        rights_config=rights_config(settings),
        push=push,
        mail=mail_sender(settings),
        sms=sms,
    )
    assert use_cases.rights is not None
    rights = use_cases.rights
    assert use_cases.checkpoints is not None
    checkpoints = use_cases.checkpoints

    def register(server: object) -> list[str]:
        privacy_pb2_grpc.add_PrivacyServicer_to_server(PrivacyServicer(use_cases, settings_view(settings, config)), server)
        rights_pb2_grpc.add_RightsServicer_to_server(RightsServicer(rights), server)
        return [service_name(), rights_service_name(), add_dataholder(server, use_cases.self_holder)]

    async def record_refusal(event_type: str, caller: str, method: str, ip: str) -> None:
        # Privacy writes its own refused calls straight into its security-event log.
        await use_cases.records.security_event("", event_type, ip, caller, method)

    async def close() -> None:
        for holder in holders:
            await holder.close()
        if push is not None:
            await push.aclose()
        if sms is not None:
            await sms.aclose()
        await pool.close()

    return PrivacyWiring(
        settings=settings,
        register=register,
        background=[
            use_cases.erasures.run,
            lambda: use_cases.retention.run(settings.retention_interval_seconds),
            lambda: checkpoints.run(settings.ledger_checkpoint_seconds),
            lambda: _rewrap_loop(use_cases, settings.kek_rewrap_seconds),
            lambda: use_cases.exports.run_resumer(EXPORT_RESUME_SECONDS),
            lambda: usage_metrics.publish_loop(use_cases.usage, settings.stats_metrics_seconds),
        ],
        closers=[close],
        security_events=record_refusal,
        use_cases=use_cases,
        holders=holders,
    )


async def _rewrap_loop(use_cases: PrivacyUseCases, interval_seconds: float) -> None:
    """Moves data keys off retired KEKs: at start, then every interval."""
    while True:
        try:
            moved = await use_cases.subjects.rewrap()
            if moved:
                log.info("data_keys_rewrapped", moved=moved)
        except Exception as exc:
            log.error("rewrap_failed", error=type(exc).__name__)
        await asyncio.sleep(interval_seconds)


main = partial(run_service, "privacy", PrivacySettings, build)


if __name__ == "__main__":
    asyncio.run(main())
