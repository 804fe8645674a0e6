"""Secrets and settings the chart hands each service: where each comes from, that each
service reads what it is given, and that it is given everything it needs to start."""

from __future__ import annotations

import base64
import importlib
import os
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]


# --------------------------------------------------------------- secrets & configuration


def test_dev_values_keep_secrets_in_the_chart_secret(dev_render: Any, release: tuple[str, str]) -> None:
    name, namespace = release
    secret = dev_render.get("Secret", name)
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert data["database-url"] == f"postgresql://likeness:likeness-dev-only@{name}-postgresql.{namespace}.svc.cluster.local:5432/likeness"
    assert len(base64.b64decode(data["kek"])) == 32
    assert dev_render.env("privacy")["LIKENESS_KEK"] == ("secret", name, "kek")
    assert dev_render.env("privacy")["LIKENESS_DATABASE_URL"] == ("secret", name, "database-url")
    for doc in dev_render.documents:
        if doc["kind"] == "Deployment":
            # Secrets only ever arrive by reference, never as plain values.
            assert data["kek"] not in yaml.safe_dump(doc)


def test_existing_secrets_are_referenced_not_copied(prod_render: Any, release: tuple[str, str]) -> None:
    secret = prod_render.get("Secret", release[0])
    assert set(secret["data"]) == {"redis-url", "rate-limit-key"}  # no existingSecret for these
    env = {svc: prod_render.env(svc) for svc in ("privacy", "billing", "ingestion", "gateway", "render")}
    assert env["privacy"]["LIKENESS_KEK"] == ("secret", "likeness-keys", "kek")
    assert env["privacy"]["LIKENESS_PSEUDONYM_KEY"] == ("secret", "likeness-keys", "pseudonym-key")
    assert env["gateway"]["LIKENESS_DATABASE_URL"] == ("secret", "likeness-db", "url-gateway")
    assert env["billing"]["LIKENESS_APPLE_PRIVATE_KEY"] == ("secret", "likeness-appstore", "apple-private-key")
    assert env["billing"]["LIKENESS_BILLING_LEDGER_KEY"] == ("secret", "likeness-billing", "billing-ledger-key")
    assert env["billing"]["LIKENESS_APPLE_ENVIRONMENT"] == "Production"
    assert env["ingestion"]["AWS_ACCESS_KEY_ID"] == ("secret", "likeness-s3", "s3-access-key-id")
    assert env["render"]["LIKENESS_S3_BUCKET"] == "likeness-blobs"
    assert env["gateway"]["LIKENESS_REDIS_URL"] == ("secret", release[0], "redis-url")


def test_only_privacy_sees_the_kek(renders: dict[str, Any], services: tuple[str, ...]) -> None:
    for rendered in renders.values():
        for svc in services:
            assert ("LIKENESS_KEK" in rendered.env(svc)) == (svc == "privacy"), svc
            assert ("LIKENESS_BILLING_LEDGER_KEY" in rendered.env(svc)) == (svc == "billing"), svc


def test_database_url_goes_only_to_services_with_a_schema(dev_render: Any, services: tuple[str, ...]) -> None:
    for svc in services:
        assert ("LIKENESS_DATABASE_URL" in dev_render.env(svc)) == (svc not in ("faces", "admin")), svc


def test_blob_settings(renders: dict[str, Any], services: tuple[str, ...]) -> None:
    for svc in services:
        dev = renders["dev"].env(svc)
        prod = renders["production"].env(svc)
        blob_user = svc in ("ingestion", "render")
        assert ("LIKENESS_BLOB_BACKEND" in dev) == blob_user, svc
        if blob_user:
            assert dev["LIKENESS_BLOB_BACKEND"] == "local" and dev["LIKENESS_BLOB_DIR"] == "/var/lib/likeness/blobs"
            mounts = {m["mountPath"] for m in renders["dev"].container(svc)["volumeMounts"]}
            assert "/var/lib/likeness/blobs" in mounts
            assert prod["LIKENESS_BLOB_BACKEND"] == "s3" and "LIKENESS_BLOB_DIR" not in prod
            assert prod["LIKENESS_S3_REGION"] == "eu-central-1"


def test_otlp_endpoint(renders: dict[str, Any], svc: str) -> None:
    prod = renders["production"].env(svc)
    assert prod["LIKENESS_OTEL_EXPORTER"] == "otlp"
    assert prod["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector.observability:4317"
    assert prod["OTEL_SERVICE_NAME"] == f"likeness-{svc}"
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in renders["minimal"].env(svc)


def test_in_cluster_postgresql_only_when_asked(renders: dict[str, Any], release: tuple[str, str]) -> None:
    name = f"{release[0]}-postgresql"
    statefulset = renders["dev"].get("StatefulSet", name)
    (container,) = pod_spec(statefulset)["containers"]
    assert container["securityContext"]["runAsNonRoot"] is True
    assert pod_spec(statefulset)["securityContext"]["runAsUser"] == 999
    assert renders["dev"].get("Service", name)["spec"]["ports"][0]["port"] == 5432
    for values_name in ("production", "minimal"):
        assert renders[values_name].of_kind("StatefulSet") == {}


def _settings_fields(svc: str) -> set[str]:
    """LIKENESS_* variables the service's settings class reads."""
    from likeness_platform.settings import ServiceSettings

    module = importlib.import_module(f"likeness_{svc}.main")
    classes = [v for v in vars(module).values() if isinstance(v, type) and issubclass(v, ServiceSettings) and v is not ServiceSettings]
    assert classes, f"likeness_{svc}.main defines or imports no ServiceSettings subclass"
    fields: set[str] = set()
    for cls in classes:
        fields |= {f"LIKENESS_{name.upper()}" for name in cls.model_fields}
    return fields


def test_every_setting_the_chart_sets_is_read_by_the_service(renders: dict[str, Any], svc: str) -> None:
    # A misspelt or renamed variable is ignored by pydantic-settings without a word; the
    # service would then run on its loopback / local-disk defaults in the cluster.
    known = _settings_fields(svc)
    for values_name in ("dev", "production"):
        unknown = {k for k in renders[values_name].env(svc) if k.startswith("LIKENESS_")} - known
        assert unknown == set(), f"{values_name}: {svc} does not read {sorted(unknown)}"


def test_migrations_run_under_their_own_database_url(
    renders: dict[str, Any], services: tuple[str, ...], render_chart: Any, minimal_values: dict[str, Any], release: tuple[str, str]
) -> None:
    for svc in services:
        prod = renders["production"].env(svc)
        if svc in ("faces", "admin"):
            assert "LIKENESS_MIGRATION_DATABASE_URL" not in prod
            continue
        assert prod["LIKENESS_MIGRATION_DATABASE_URL"] == ("secret", "likeness-db", "migration-url")
        assert prod["LIKENESS_DATABASE_URL"] == ("secret", "likeness-db", f"url-{svc}")
        # Single-role setups set only the runtime URL.
        assert "LIKENESS_MIGRATION_DATABASE_URL" not in renders["minimal"].env(svc)
    owner = "postgresql://owner:pw@db.internal:5432/likeness"
    rendered = render_chart({**minimal_values, "database": {**minimal_values["database"], "migrationUrl": owner}})
    assert rendered.env("privacy")["LIKENESS_MIGRATION_DATABASE_URL"] == ("secret", release[0], "migration-database-url")
    data = rendered.get("Secret", release[0])["data"]
    assert base64.b64decode(data["migration-database-url"]).decode() == owner


# Per-service runtime roles (likeness_platform.db_roles): each service with a schema logs in
# as its own role, which its migrations grant DML on that schema only.
SCHEMA_SERVICES = ("gateway", "ingestion", "render", "billing", "privacy")


def runtime_url(svc: str) -> str:
    return f"postgresql://likeness_{svc}:pw-{svc}@db.internal:5432/likeness"


def secret_data(rendered: Any, name: str) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in rendered.get("Secret", name)["data"].items()}


def test_each_service_gets_its_own_runtime_role(render_chart: Any, minimal_values: dict[str, Any], release: tuple[str, str]) -> None:
    owner = "postgresql://likeness_owner:pw@db.internal:5432/likeness"
    database = {"urls": {svc: runtime_url(svc) for svc in SCHEMA_SERVICES}, "migrationUrl": owner}
    rendered = render_chart({**minimal_values, "database": database})
    data = secret_data(rendered, release[0])
    refs = {}
    for svc in SCHEMA_SERVICES:
        env = rendered.env(svc)
        kind, secret, key = env["LIKENESS_DATABASE_URL"]
        assert (kind, secret) == ("secret", release[0])
        assert data[key] == runtime_url(svc), f"{svc} logs in as another role"
        assert env["LIKENESS_MIGRATION_DATABASE_URL"] == ("secret", release[0], "migration-database-url")
        refs[svc] = key
    assert len(set(refs.values())) == len(SCHEMA_SERVICES)
    assert data["migration-database-url"] == owner
    # faces keeps nothing: no URL at all, and no key for it in the Secret.
    assert not {k for k in rendered.env("faces") if "DATABASE" in k}
    assert not [k for k in data if "faces" in k]
    assert "database-url" not in data  # nothing shared was given, so nothing shared is stored


def test_a_service_without_its_own_role_falls_back_to_the_shared_url(
    render_chart: Any, minimal_values: dict[str, Any], release: tuple[str, str]
) -> None:
    database = {**minimal_values["database"], "urls": {"privacy": runtime_url("privacy")}}
    rendered = render_chart({**minimal_values, "database": database})
    assert rendered.env("privacy")["LIKENESS_DATABASE_URL"] == ("secret", release[0], "database-url-privacy")
    for svc in ("gateway", "ingestion", "render", "billing"):
        assert rendered.env(svc)["LIKENESS_DATABASE_URL"] == ("secret", release[0], "database-url"), svc


def test_a_service_with_no_url_at_all_is_named(render_chart: Any, minimal_values: dict[str, Any]) -> None:
    urls = {svc: runtime_url(svc) for svc in SCHEMA_SERVICES if svc != "billing"}
    with pytest.raises(helm.HelmError, match=r"no database URL for billing: set database\.urls\.billing"):
        render_chart({**minimal_values, "database": {"urls": urls}})


def test_existing_secret_keys_per_service(render_chart: Any, minimal_values: dict[str, Any], release: tuple[str, str]) -> None:
    database = {"existingSecret": "db", "existingSecretServiceKeys": {"gateway": "database-url-gateway", "render": "database-url-render"}}
    rendered = render_chart({**minimal_values, "database": database})
    assert rendered.env("gateway")["LIKENESS_DATABASE_URL"] == ("secret", "db", "database-url-gateway")
    assert rendered.env("render")["LIKENESS_DATABASE_URL"] == ("secret", "db", "database-url-render")
    # The others read the shared key (existingSecretKey, database-url by default).
    assert rendered.env("billing")["LIKENESS_DATABASE_URL"] == ("secret", "db", "database-url")
    # Values of an existing Secret are never copied into the chart's own.
    assert not [k for k in secret_data(rendered, release[0]) if k.startswith("database-url")]


@pytest.mark.parametrize(
    "database",
    [
        {"urls": {"faces": "postgresql://u:p@h:5432/d"}},  # faces keeps nothing
        {"urls": {"privacy": "mysql://u:p@h/d"}},
        {"existingSecret": "db", "existingSecretServiceKeys": {"faces": "k"}},
    ],
)
def test_schema_refuses_database_urls_it_cannot_use(render_chart: Any, minimal_values: dict[str, Any], database: dict[str, Any]) -> None:
    with pytest.raises(helm.HelmError, match="database"):
        render_chart({**minimal_values, "database": {**minimal_values["database"], **database}})


# --------------------------------------------------------------- the gateway's public API


def settings_class(svc: str) -> type:
    """The service's own settings class (likeness_<svc>.main.<Svc>Settings)."""
    return getattr(importlib.import_module(f"likeness_{svc}.main"), f"{svc.capitalize()}Settings")


def resolved_env(rendered: Any, svc: str, secret_name: str) -> dict[str, str]:
    """The container's environment with each reference to the chart's own Secret replaced by its value."""
    data = secret_data(rendered, secret_name) if secret_name in rendered.of_kind("Secret") else {}
    env = {}
    for name, value in rendered.env(svc).items():
        if isinstance(value, tuple):
            _, secret, key = value
            assert secret == secret_name, f"{svc}: {name} comes from {secret}, not the chart's Secret"
            assert key in data, f"{svc}: {name} names key {key}, which the chart's Secret lacks"
            value = data[key]
        env[name] = value
    return env


def load_settings(monkeypatch: pytest.MonkeyPatch, cls: type, env: dict[str, str]) -> Any:
    """`cls` as the service would read it in the pod: from exactly `env`, nothing of this process's own."""
    for name in [n for n in os.environ if n.startswith(("LIKENESS_", "OTEL_"))]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return cls()


# Where the chart departs from the gateway's own defaults, for a gateway behind an ingress.
BEHIND_AN_INGRESS = {"tls_terminated_upstream": True, "trusted_proxies": 1, "docs_enabled": False}
# Gateway settings the chart leaves to the service: in-memory uploads' lifetime (uploadTTLSeconds 0
# only) and how often each replica drops those of erased subjects. The Redis pair is set only with redis.url, App Attest's only with appAttest.
# The SMTP CA bundle: the system trust store unless a pod mounts one (services.gateway.env).
GATEWAY_DEFAULTS_KEPT = {"memory_upload_ttl_seconds", "inline_image_check_seconds", "smtp_ca_file"}
# Accounts and mail: set only with accounts.key and mail.smtpHost (and the password with one).
GATEWAY_WITH_MAIL = {
    "account_key",
    "smtp_host",
    "smtp_port",
    "smtp_security",
    "smtp_username",
    "smtp_password",
    "mail_from",
    "mail_timeout_seconds",
}
GATEWAY_WITH_REDIS = {"redis_url", "rate_limit_key"}
GATEWAY_WITH_APP_ATTEST = {"app_attest_app_id", "app_attest_root_pem"}


def test_gateway_api_settings_are_the_services_defaults_but_for_an_ingress(
    monkeypatch: pytest.MonkeyPatch, renders: dict[str, Any], release: tuple[str, str]
) -> None:
    from likeness_platform.settings import ServiceSettings

    cls = settings_class("gateway")
    own_fields = set(cls.model_fields) - set(ServiceSettings.model_fields) - {"grpc_port"}
    settings = load_settings(monkeypatch, cls, resolved_env(renders["minimal"], "gateway", release[0]))
    defaults = cls.model_construct()
    for name in (
        own_fields - GATEWAY_DEFAULTS_KEPT - GATEWAY_WITH_REDIS - GATEWAY_WITH_APP_ATTEST - GATEWAY_WITH_MAIL - {"http_host", "http_port"}
    ):
        expected = BEHIND_AN_INGRESS.get(name, getattr(defaults, name))
        assert getattr(settings, name) == expected, name
    # A new gateway setting makes the chart decide: set it (services.gateway.api) or list it above.
    for values_name, rendered in renders.items():
        unset = {name for name in own_fields if f"LIKENESS_{name.upper()}" not in rendered.env("gateway")}
        # Production values name a Redis and a mail server (privacy's notices) but no account key: accounts stay off.
        with_redis = with_mail = values_name == "production"
        mail_unset = {"account_key"} if with_mail else GATEWAY_WITH_MAIL
        expected = GATEWAY_DEFAULTS_KEPT | GATEWAY_WITH_APP_ATTEST | mail_unset | (set() if with_redis else GATEWAY_WITH_REDIS)
        assert unset == expected, values_name


def test_gateway_api_settings_reach_the_service_as_given(
    monkeypatch: pytest.MonkeyPatch, render_chart: Any, minimal_values: dict[str, Any], release: tuple[str, str]
) -> None:
    api = {
        "tlsTerminatedUpstream": False,
        "trustedProxies": 0,
        "docsEnabled": True,
        "corsOrigins": ["https://app.example.com", "http://localhost:3000"],
        "tokenTTLDays": 30,
        "registrationsPerPrefixPerHour": 5,
        "registrationsPerMinute": 60,
        "inquiriesPerDay": 3,
        "rateLimitDevicePerMinute": 90,
        "rateLimitIpPerMinute": 200,
        "maxConcurrentGenerationsPerDevice": 1,
        "maxConcurrentRequests": 64,
        "maxBodyBytes": 52428800,  # large integers must not become 5.24288e+07
        "maxHeaderBytes": 8192,
        "headerTimeoutSeconds": 2.5,
        "bodyTimeoutSeconds": 30,
        "keepAliveTimeoutSeconds": 4,
        "upstreamDeadlineSeconds": 12.5,
    }
    minimal_values["services"]["gateway"]["api"] = api
    settings = load_settings(monkeypatch, settings_class("gateway"), resolved_env(render_chart(minimal_values), "gateway", release[0]))
    assert settings.tls_terminated_upstream is False and settings.trusted_proxies == 0 and settings.docs_enabled is True
    assert settings.cors_origins == ["https://app.example.com", "http://localhost:3000"]
    assert (settings.token_ttl_days, settings.registrations_per_prefix_per_hour, settings.registrations_per_minute) == (30, 5, 60)
    assert settings.inquiries_per_day == 3
    assert (settings.rate_limit_device_per_minute, settings.rate_limit_ip_per_minute) == (90, 200)
    assert (settings.max_concurrent_generations_per_device, settings.max_concurrent_requests) == (1, 64)
    assert (settings.max_body_bytes, settings.max_header_bytes) == (52428800, 8192)
    assert (settings.header_timeout_seconds, settings.body_timeout_seconds, settings.keep_alive_timeout_seconds) == (2.5, 30, 4)
    assert settings.upstream_deadline_seconds == 12.5


PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def test_app_attest_is_on_only_with_both_halves(
    monkeypatch: pytest.MonkeyPatch, render_chart: Any, minimal_values: dict[str, Any], release: tuple[str, str]
) -> None:
    assert "LIKENESS_APP_ATTEST_APP_ID" not in render_chart(minimal_values).env("gateway")
    minimal_values["services"]["gateway"]["appAttest"] = {
        "appId": "ABCDE12345.com.example.idphoto",
        "rootPem": PEM,
        "challengeSeconds": 120,
    }
    settings = load_settings(monkeypatch, settings_class("gateway"), resolved_env(render_chart(minimal_values), "gateway", release[0]))
    assert (settings.app_attest_app_id, settings.app_attest_root_pem, settings.attest_challenge_seconds) == (
        "ABCDE12345.com.example.idphoto",
        PEM,
        120,
    )
    minimal_values["services"]["gateway"]["appAttest"] = {"appId": "ABCDE12345.com.example.idphoto"}
    with pytest.raises(helm.HelmError, match=r"appAttest\.rootPem is required"):
        render_chart(minimal_values)


def test_accounts_need_a_key_and_a_mail_server_and_get_them_by_reference(
    monkeypatch: pytest.MonkeyPatch, render_chart: Any, minimal_values: dict[str, Any], release: tuple[str, str]
) -> None:
    rendered = render_chart(minimal_values)
    assert "LIKENESS_ACCOUNT_KEY" not in rendered.env("gateway") and "LIKENESS_SMTP_HOST" not in rendered.env("gateway")
    minimal_values["accounts"] = {
        **minimal_values.get("accounts", {}),
        "key": "a" * 40,
        "argon2": {"timeCost": 4, "memoryKib": 32768, "parallelism": 2, "maxConcurrent": 3},
        "passwordMinLength": 14,
        "loginAttemptsPerAccount": 7,
        "loginAttemptsPerPrefix": 40,
        "loginWindowSeconds": 600,
        "codeTTLSeconds": 300,
        "codeMaxAttempts": 4,
        "codesPerHour": 3,
        "unverifiedTTLHours": 12,
    }
    minimal_values["mail"] = {
        "smtpHost": "smtp.example.org",
        "smtpPort": 465,
        "smtpSecurity": "tls",
        "smtpUsername": "likeness",
        "smtpPassword": "p" * 20,
        "from": "Likeness <hello@example.org>",
        "timeoutSeconds": 15,
    }
    # Egress is denied by default: the mail server must be named.
    with pytest.raises(helm.HelmError, match=r"networkPolicy\.egress\.smtp\.to is required"):
        render_chart(minimal_values)
    minimal_values["networkPolicy"]["egress"]["smtp"] = {"to": [{"ipBlock": {"cidr": "192.0.2.25/32"}}], "ports": [465]}
    rendered = render_chart(minimal_values)
    env = rendered.env("gateway")
    assert env["LIKENESS_ACCOUNT_KEY"] == ("secret", release[0], "account-key")
    assert env["LIKENESS_SMTP_PASSWORD"] == ("secret", release[0], "smtp-password")
    data = secret_data(rendered, release[0])
    assert (data["account-key"], data["smtp-password"]) == ("a" * 40, "p" * 20)
    assert all("LIKENESS_ACCOUNT_KEY" not in rendered.env(svc) for svc in SCHEMA_SERVICES if svc != "gateway")
    settings = load_settings(monkeypatch, settings_class("gateway"), resolved_env(rendered, "gateway", release[0]))
    assert settings.account_key == "a" * 40 and settings.smtp_password == "p" * 20
    assert (settings.smtp_host, settings.smtp_port, settings.smtp_security, settings.smtp_username) == (
        "smtp.example.org",
        465,
        "tls",
        "likeness",
    )
    assert (settings.mail_from, settings.mail_timeout_seconds) == ("Likeness <hello@example.org>", 15)
    assert (settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism, settings.argon2_max_concurrent) == (
        4,
        32768,
        2,
        3,
    )
    assert (settings.password_min_length, settings.login_attempts_per_account, settings.login_attempts_per_prefix) == (14, 7, 40)
    assert (settings.login_window_seconds, settings.account_code_ttl_seconds, settings.account_code_max_attempts) == (600, 300, 4)
    assert (settings.account_codes_per_hour, settings.account_unverified_ttl_hours) == (3, 12)
    gateway_policy = next(d for d in rendered.documents if d["kind"] == "NetworkPolicy" and d["metadata"]["name"].endswith("-gateway"))
    assert {"to": [{"ipBlock": {"cidr": "192.0.2.25/32"}}], "ports": [{"port": 465, "protocol": "TCP"}]} in gateway_policy["spec"]["egress"]
    # A short key is refused by the schema.
    minimal_values["accounts"]["key"] = "short"
    with pytest.raises(helm.HelmError):
        render_chart(minimal_values)


def test_the_chart_refuses_to_set_a_gateway_setting_twice(render_chart: Any, minimal_values: dict[str, Any]) -> None:
    minimal_values["services"]["gateway"]["env"] = {"LIKENESS_TRUSTED_PROXIES": "2"}
    with pytest.raises(helm.HelmError, match=r"env sets LIKENESS_TRUSTED_PROXIES"):
        render_chart(minimal_values)


def test_shared_rate_limits_need_one_key_for_every_replica(
    render_chart: Any, minimal_values: dict[str, Any], release: tuple[str, str]
) -> None:
    minimal_values["networkPolicy"]["egress"]["redis"] = {"to": [{"ipBlock": {"cidr": "10.30.0.0/24"}}], "ports": [6379]}
    minimal_values["redis"] = {"url": "redis://cache:6379/0"}
    with pytest.raises(helm.HelmError, match=r"redis\.rateLimitKey is required"):
        render_chart(minimal_values)
    minimal_values["redis"]["rateLimitKey"] = "r" * 40
    rendered = render_chart(minimal_values)
    assert rendered.env("gateway")["LIKENESS_RATE_LIMIT_KEY"] == ("secret", release[0], "rate-limit-key")
    assert secret_data(rendered, release[0])["rate-limit-key"] == "r" * 40
    assert all("LIKENESS_RATE_LIMIT_KEY" not in rendered.env(svc) for svc in SCHEMA_SERVICES if svc != "gateway")


def test_dev_gateway_is_reached_without_a_proxy(dev_render: Any) -> None:
    # Tilt port-forwards straight to the pod: no X-Forwarded-For to believe, no TLS in front.
    env = dev_render.env("gateway")
    assert (env["LIKENESS_TRUSTED_PROXIES"], env["LIKENESS_TLS_TERMINATED_UPSTREAM"], env["LIKENESS_DOCS_ENABLED"]) == (
        "0",
        "false",
        "true",
    )


# ------------------------------------------------------------- what each service needs to start

TLS_DIR = "/etc/likeness/tls"
TLS_SETTINGS = {"LIKENESS_TLS_CERT_FILE": "tls.crt", "LIKENESS_TLS_KEY_FILE": "tls.key", "LIKENESS_TLS_CA_FILE": "ca.crt"}
# Settings a service exits without, though pydantic gives them an empty default.
REQUIRED_WHEN_EMPTY = {
    svc: set(TLS_SETTINGS)
    | ({"LIKENESS_DATABASE_URL"} if svc in SCHEMA_SERVICES else set())
    | {
        "privacy": {"LIKENESS_KEK"},
        "billing": {"LIKENESS_BILLING_LEDGER_KEY"},
        "ingestion": {"LIKENESS_BLOB_NAME_KEY"},
        "render": {"LIKENESS_BLOB_NAME_KEY"},
    }.get(svc, set())
    for svc in ("gateway", "ingestion", "faces", "render", "billing", "privacy", "admin")
}

# Settings a service starts without, on a default that only suits a developer's machine, and that a deployment
# must therefore be given: privacy's anchored ledger (where the checkpoints go, the key that signs them, how
# often), its key hierarchy (the KEK's id, the backup window and rewrap schedule; the pseudonym key, which a
# KEK rotation would otherwise change); where the sealed stores keep blobs. A tuple: one of them. A new setting
# of this kind goes here, and the chart sets it.
PRODUCTION_REQUIRED: dict[str, set[str | tuple[str, ...]]] = {
    "privacy": {
        "LIKENESS_KEK_ID",
        "LIKENESS_KEK_BACKUP_WINDOW_DAYS",
        "LIKENESS_KEK_REWRAP_SECONDS",
        "LIKENESS_PSEUDONYM_KEY",
        "LIKENESS_LEDGER_SIGNING_KEY",
        "LIKENESS_LEDGER_CHECKPOINT_BACKEND",
        "LIKENESS_LEDGER_CHECKPOINT_SECONDS",
        ("LIKENESS_LEDGER_CHECKPOINT_DIR", "LIKENESS_LEDGER_CHECKPOINT_S3_BUCKET"),
        "LIKENESS_HOLDERS",
        "LIKENESS_STATS_MIN_COUNT",
    },
    "ingestion": {"LIKENESS_BLOB_BACKEND", ("LIKENESS_BLOB_DIR", "LIKENESS_S3_BUCKET"), "LIKENESS_UPLOAD_TTL"},
    "render": {"LIKENESS_BLOB_BACKEND", ("LIKENESS_BLOB_DIR", "LIKENESS_S3_BUCKET"), "LIKENESS_UPLOAD_TTL"},
    "gateway": set(),
    "faces": {"LIKENESS_DEVICE"},
    "billing": {"LIKENESS_APPLE_ENVIRONMENT"},
    # The operators' HTTPS port listens on loopback by default.
    "admin": {"LIKENESS_HTTP_HOST", "LIKENESS_HTTP_PORT"},
}
# Of those, the ones whose empty value is meaningful (the id of keys wrapped before KEKs had ids).
MAY_BE_EMPTY = {"LIKENESS_KEK_ID"}


def required_settings(svc: str) -> set[str]:
    """Fields of the service's settings without a default, and those it exits without."""
    cls = settings_class(svc)
    return {f"LIKENESS_{name.upper()}" for name, field in cls.model_fields.items() if field.is_required()} | REQUIRED_WHEN_EMPTY[svc]


def test_every_render_sets_every_required_setting(renders: dict[str, Any], svc: str) -> None:
    for values_name, rendered in renders.items():
        env = rendered.env(svc)
        missing = required_settings(svc) - {name for name, value in env.items() if value}
        assert missing == set(), f"{values_name}: {svc} would not start without {sorted(missing)}"


def test_every_render_sets_what_production_needs_beyond_starting(renders: dict[str, Any], svc: str) -> None:
    known = _settings_fields(svc)
    for values_name, rendered in renders.items():
        env = rendered.env(svc)
        given = {name for name, value in env.items() if value or name in MAY_BE_EMPTY}
        for needed in PRODUCTION_REQUIRED[svc]:
            names = needed if isinstance(needed, tuple) else (needed,)
            assert set(names) <= known, f"{svc} reads none of {names}: the list is out of date"
            assert given & set(names), f"{values_name}: {svc} runs on its development default for {' or '.join(names)}"


def test_privacys_keys_and_ledger_settings_reach_it_as_given(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, render_chart: Any, minimal_values: dict[str, Any], release: tuple[str, str]
) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from likeness_privacy.main import build_config

    old = base64.b64encode(bytes(range(200, 232))).decode()
    minimal_values["privacyKeys"].update(kekId="kek-2", retiredKeks={"kek-1": f"{old}@2999-01-01"}, backupWindowDays=40, rewrapSeconds=900)
    retired_signer = Ed25519PrivateKey.from_private_bytes(bytes(range(32))).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    retired_public = base64.b64encode(retired_signer).decode()
    minimal_values["ledgerCheckpoints"] = {
        "backend": "local",
        "intervalSeconds": 120,
        "retiredPublicKeys": [retired_public],
        "local": {"existingClaim": "ledger"},
    }
    rendered = render_chart(minimal_values)
    env = resolved_env(rendered, "privacy", release[0])
    settings = load_settings(monkeypatch, settings_class("privacy"), env)
    assert (settings.kek_id, settings.kek_backup_window_days, settings.kek_rewrap_seconds) == ("kek-2", 40, 900)
    assert settings.retired_keks == {"kek-1": f"{old}@2999-01-01"}
    assert (settings.ledger_checkpoint_backend, settings.ledger_checkpoint_seconds) == ("local", 120)
    config = build_config(settings)
    assert config.kek_for("kek-1") == bytes(range(200, 232))
    assert config.pseudonym_key == bytes(range(100, 132)) and config.ledger_signing_key == bytes(range(140, 172))
    # Retired ledger signing keys: public keys only, a plain value (nothing secret), parsed and checked at start.
    assert settings.ledger_retired_public_keys == [retired_public] and config.ledger_retired_public_keys == [retired_public]
    assert rendered.env("privacy")["LIKENESS_LEDGER_RETIRED_PUBLIC_KEYS"][0] != "secret"
    assert "LIKENESS_LEDGER_RETIRED_PUBLIC_KEYS" not in render_chart({**minimal_values, "ledgerCheckpoints": {}}).env("privacy")
    minimal_values["ledgerCheckpoints"]["retiredPublicKeys"] = ["not-a-key"]
    with pytest.raises(helm.HelmError):
        render_chart(minimal_values)  # the schema: base64 of 32 bytes
    minimal_values["ledgerCheckpoints"]["retiredPublicKeys"] = [retired_public]
    # The checkpoint folder is a volume of its own (the root filesystem is read-only): here the operator's claim.
    mounts = {m["mountPath"]: m["name"] for m in rendered.container("privacy")["volumeMounts"]}
    assert mounts[settings.ledger_checkpoint_dir] == "ledger-checkpoints"
    volumes = {v["name"]: v for v in rendered.deployment("privacy")["spec"]["template"]["spec"]["volumes"]}
    assert volumes["ledger-checkpoints"]["persistentVolumeClaim"] == {"claimName": "ledger"}
    # Secrets stay in the Secret: none of the keys is a plain value in the Deployment.
    for name in ("LIKENESS_PSEUDONYM_KEY", "LIKENESS_LEDGER_SIGNING_KEY", "LIKENESS_RETIRED_KEKS"):
        assert rendered.env("privacy")[name][0] == "secret", name


def test_checkpoints_on_s3_name_their_bucket_and_credentials(prod_render: Any, render_chart: Any, minimal_values: dict[str, Any]) -> None:
    env = prod_render.env("privacy")
    assert env["LIKENESS_LEDGER_CHECKPOINT_BACKEND"] == "s3" and env["LIKENESS_LEDGER_CHECKPOINT_S3_BUCKET"] == "likeness-ledger"
    assert env["LIKENESS_LEDGER_CHECKPOINT_S3_PREFIX"] == "ledger-checkpoints/"
    assert env["AWS_ACCESS_KEY_ID"] == ("secret", "likeness-ledger-s3", "s3-access-key-id")
    assert "LIKENESS_LEDGER_CHECKPOINT_DIR" not in env
    assert "ledger-checkpoints" not in {m["name"] for m in prod_render.container("privacy")["volumeMounts"]}
    # The existing Secret must hold every privacy key; only retired KEKs may be absent from it.
    optional = {
        var["name"]: var["valueFrom"]["secretKeyRef"].get("optional", False)
        for var in prod_render.container("privacy")["env"]
        if "valueFrom" in var
    }
    assert optional["LIKENESS_LEDGER_SIGNING_KEY"] is False and optional["LIKENESS_PSEUDONYM_KEY"] is False
    assert optional["LIKENESS_RETIRED_KEKS"] is True
    minimal_values["ledgerCheckpoints"] = {"backend": "s3"}
    # (Privacy's egress to object storage: tests/deploy/test_chart_network.py.)
    with pytest.raises(helm.HelmError, match=r"ledgerCheckpoints\.s3\.bucket is required"):
        render_chart(minimal_values)


@pytest.mark.parametrize("missing", ["pseudonymKey", "ledgerSigningKey"])
def test_privacy_keys_derived_from_the_kek_are_refused(render_chart: Any, minimal_values: dict[str, Any], missing: str) -> None:
    # Derived keys change when the KEK rotates: pseudonyms would no longer match, checkpoints no longer verify.
    del minimal_values["privacyKeys"][missing]
    with pytest.raises(helm.HelmError, match=rf"privacyKeys\.{missing} .*is required"):
        render_chart(minimal_values)


def test_every_blob_store_gets_the_same_blob_name_key(renders: dict[str, Any], render_chart: Any, minimal_values: dict[str, Any]) -> None:
    for values_name, rendered in renders.items():
        refs = {svc: rendered.env(svc).get("LIKENESS_BLOB_NAME_KEY") for svc in ("ingestion", "render")}
        assert refs["ingestion"] == refs["render"] and refs["ingestion"][0] == "secret", values_name
        assert all("LIKENESS_BLOB_NAME_KEY" not in rendered.env(svc) for svc in ("gateway", "faces", "billing", "privacy"))
    assert renders["production"].env("render")["LIKENESS_BLOB_NAME_KEY"] == ("secret", "likeness-blob-names", "blob-name-key")
    minimal_values["blobs"] = {"nameKey": base64.b64encode(bytes(16)).decode()}
    with pytest.raises(helm.HelmError, match=r"nameKey"):
        render_chart(minimal_values)


@pytest.mark.parametrize("values_name", ["dev", "minimal"])  # every value in the chart's own Secret, so each can be read
def test_each_service_passes_its_own_start_up_checks(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, renders: dict[str, Any], svc: str, release: tuple[str, str], values_name: str
) -> None:
    from likeness_platform.tls import TlsPaths

    env = resolved_env(renders[values_name], svc, release[0])
    # The certificate files are the keys of the Secret mounted at TLS_DIR: stand them in here.
    for name, key in TLS_SETTINGS.items():
        assert env[name] == f"{TLS_DIR}/{key}", name
        (tmp_path / key).write_text("PEM")
        env[name] = str(tmp_path / key)
    settings = load_settings(monkeypatch, settings_class(svc), env)  # pydantic: fields without defaults, types
    TlsPaths.from_settings(settings)  # raises TlsNotConfigured, as at start, when one is unset
    if svc in SCHEMA_SERVICES:
        assert settings.database_url.startswith("postgresql://")
        assert settings.migration_database_url == ""  # neither render names an owner role: single-role
    if svc == "privacy":
        from likeness_privacy.domain.checkpoints import signing_key
        from likeness_privacy.main import build_config

        signing_key(build_config(settings).ledger_signing_key)  # refuses a missing or malformed KEK; a 32-byte seed
        assert settings.ledger_checkpoint_backend == "local" and settings.ledger_checkpoint_dir == "/var/lib/likeness/ledger-checkpoints"
        assert settings.ledger_checkpoint_dir in {m["mountPath"] for m in renders[values_name].container(svc)["volumeMounts"]}
    if svc == "billing":
        from likeness_billing.main import ledger_key

        assert len(ledger_key(settings)) >= 32
    # Every folder a service writes to lies on a volume: the root filesystem is read-only
    # (privacy's ledger checkpoints once defaulted to .run/ under /app and stopped it at start).
    mounts = [m["mountPath"] for m in renders[values_name].container(svc)["volumeMounts"]]
    for field, value in settings.model_dump().items():
        backend = settings.model_dump().get(field.removesuffix("_dir") + "_backend", "local")
        if field.endswith("_dir") and field != "model_dir" and backend == "local":  # model_dir: read only, in the image
            assert value.startswith("/") and any(value.startswith(m.rstrip("/") + "/") or value == m for m in mounts), (svc, field, value)
    if svc in ("ingestion", "render"):
        from likeness_platform.blobs import subject_names_for

        assert 0 <= settings.upload_ttl <= 86400
        if values_name == "dev":
            assert settings.blob_backend == "local" and settings.blob_dir == "/var/lib/likeness/blobs"
        else:
            assert settings.blob_backend == "s3" and settings.s3_bucket == "likeness-blobs"
        subject_names_for(settings)  # exits, as at start, without a usable key


def test_the_start_up_checks_would_notice_a_missing_setting(
    monkeypatch: pytest.MonkeyPatch, renders: dict[str, Any], release: tuple[str, str]
) -> None:
    # Guards the test above: the checks it calls do refuse what the services refuse.
    from likeness_billing.main import ledger_key
    from likeness_platform.tls import TlsNotConfigured, TlsPaths
    from likeness_privacy.main import build_config

    env = resolved_env(renders["minimal"], "privacy", release[0])
    with pytest.raises(TlsNotConfigured):
        TlsPaths.from_settings(load_settings(monkeypatch, settings_class("privacy"), {**env, "LIKENESS_TLS_KEY_FILE": ""}))
    with pytest.raises(Exception, match="LIKENESS_KEK"):
        build_config(load_settings(monkeypatch, settings_class("privacy"), {**env, "LIKENESS_KEK": ""}))
    with pytest.raises(SystemExit):
        ledger_key(load_settings(monkeypatch, settings_class("billing"), {}))


# --------------------------------------------------------------- render's matting model


def test_render_gets_no_matting_model_unless_one_is_named(renders: dict[str, Any]) -> None:
    for values_name in ("dev", "minimal"):
        env = renders[values_name].env("render")
        assert not [name for name in env if name.startswith("LIKENESS_MATTING_")], values_name
        spec = pod_spec(renders[values_name].deployment("render"))
        assert "matting-model" not in {v["name"] for v in spec["volumes"]}


def test_a_matting_model_is_mounted_read_only_and_reaches_render_as_given(
    monkeypatch: pytest.MonkeyPatch, prod_render: Any, release: tuple[str, str]
) -> None:
    spec = pod_spec(prod_render.deployment("render"))
    (volume,) = [v for v in spec["volumes"] if v["name"] == "matting-model"]
    assert volume["persistentVolumeClaim"] == {"claimName": "matting-model", "readOnly": True}
    (mount,) = [m for m in spec["containers"][0]["volumeMounts"] if m["name"] == "matting-model"]
    assert mount == {"name": "matting-model", "mountPath": "/models/matting", "readOnly": True}
    for other in ("gateway", "faces", "ingestion"):
        assert "matting-model" not in {v["name"] for v in pod_spec(prod_render.deployment(other))["volumes"]}
        assert "LIKENESS_MATTING_MODEL_PATH" not in prod_render.env(other)
    env = {k: v for k, v in prod_render.env("render").items() if not isinstance(v, tuple)}
    settings = load_settings(monkeypatch, settings_class("render"), env)
    assert settings.matting_model_path == "/models/matting/modnet.onnx"
    assert settings.matting_model_sha256 == "ab" * 32
    assert (settings.matting_model_side, settings.matting_model_input_range) == (512, "-1..1")


def test_a_matting_model_needs_its_digest_and_a_path_on_its_volume(render_chart: Any, minimal_values: dict[str, Any]) -> None:
    volume = {"persistentVolumeClaim": {"claimName": "m"}}
    minimal_values["services"]["render"]["matting"] = {"modelPath": "/models/matting/m.onnx", "volume": volume}
    with pytest.raises(Exception, match="modelSha256 is required"):
        render_chart(minimal_values)
    minimal_values["services"]["render"]["matting"] = {"modelPath": "/elsewhere/m.onnx", "modelSha256": "0" * 64, "volume": volume}
    with pytest.raises(Exception, match=r"not under matting\.mountPath"):
        render_chart(minimal_values)
    minimal_values["services"]["render"]["matting"] = {"modelPath": "/models/matting/m.onnx", "modelSha256": "xyz"}
    with pytest.raises(Exception, match="modelSha256"):
        render_chart(minimal_values)  # the schema: 64 hex digits
    minimal_values["services"]["render"]["matting"] = {"modelPath": "/opt/m.onnx", "modelSha256": "0" * 64, "inputRange": "0..1"}
    env = render_chart(minimal_values).env("render")  # a file already in the image: no volume needed
    assert env["LIKENESS_MATTING_MODEL_PATH"] == "/opt/m.onnx" and env["LIKENESS_MATTING_MODEL_INPUT_RANGE"] == "0..1"
    minimal_values["services"]["render"]["env"] = {"LIKENESS_MATTING_MODEL_PATH": "/x.onnx"}
    with pytest.raises(Exception, match=r"services\.render\.matting"):
        render_chart(minimal_values)


# --------------------------------------------------------------- render's face-restoration model


def test_render_gets_no_face_model_unless_one_is_named(renders: dict[str, Any]) -> None:
    for values_name in ("dev", "minimal"):
        env = renders[values_name].env("render")
        assert not [name for name in env if name.startswith("LIKENESS_FACE_MODEL")], values_name
        assert "face-model" not in {v["name"] for v in pod_spec(renders[values_name].deployment("render"))["volumes"]}


def test_a_face_model_is_mounted_read_only_and_reaches_render_as_given(
    monkeypatch: pytest.MonkeyPatch, prod_render: Any, release: tuple[str, str]
) -> None:
    spec = pod_spec(prod_render.deployment("render"))
    (volume,) = [v for v in spec["volumes"] if v["name"] == "face-model"]
    assert volume["persistentVolumeClaim"] == {"claimName": "face-model", "readOnly": True}
    (mount,) = [m for m in spec["containers"][0]["volumeMounts"] if m["name"] == "face-model"]
    assert mount == {"name": "face-model", "mountPath": "/models/face", "readOnly": True}
    for other in ("gateway", "faces", "ingestion"):
        assert "LIKENESS_FACE_MODEL_PATH" not in prod_render.env(other)
    env = {k: v for k, v in prod_render.env("render").items() if not isinstance(v, tuple)}
    settings = load_settings(monkeypatch, settings_class("render"), env)
    assert (settings.face_model_path, settings.face_model_sha256) == ("/models/face/restore.onnx", "cd" * 32)
    assert (settings.face_model_side, settings.face_model_input_range) == (512, "-1..1")
    # The matting model's settings are its own.
    assert settings.matting_model_path == "/models/matting/modnet.onnx"


def test_a_face_model_needs_its_digest_and_a_path_on_its_volume(render_chart: Any, minimal_values: dict[str, Any]) -> None:
    volume = {"persistentVolumeClaim": {"claimName": "f"}}
    minimal_values["services"]["render"]["faceModel"] = {"modelPath": "/models/face/f.onnx", "volume": volume}
    with pytest.raises(Exception, match=r"faceModel\.modelSha256 is required"):
        render_chart(minimal_values)
    minimal_values["services"]["render"]["faceModel"] = {"modelPath": "/elsewhere/f.onnx", "modelSha256": "0" * 64, "volume": volume}
    with pytest.raises(Exception, match=r"not under faceModel\.mountPath"):
        render_chart(minimal_values)
