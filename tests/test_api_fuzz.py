"""Property-based API testing against the live mesh's /openapi.json: no input makes the gateway answer 5xx."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.support.mesh import Mesh

DEVICE = {"platform": "ios", "model": "fuzz", "os_version": "18", "app_version": "1", "language": "en", "age_confirmed": True}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Iterator[tuple[Mesh, str]]:
    mesh = Mesh(
        tmp_path_factory.mktemp("fuzz"),
        database_url=database_url,
        free_ports=True,
        quiet=True,
        extra_env={
            "LIKENESS_RATE_LIMIT_IP_PER_MINUTE": "100000",
            "LIKENESS_RATE_LIMIT_DEVICE_PER_MINUTE": "100000",
            # Accounts on, so their routes are fuzzed too; mail goes to a closed port (sending fails after the answer).
            "LIKENESS_ACCOUNT_KEY": "fuzz-account-key-" + "0" * 32,
            "LIKENESS_SMTP_HOST": "127.0.0.1",
            "LIKENESS_SMTP_PORT": "9",
            "LIKENESS_SMTP_SECURITY": "none",
            "LIKENESS_ARGON2_TIME_COST": "1",
            "LIKENESS_ARGON2_MEMORY_KIB": "8192",
            "LIKENESS_LOGIN_ATTEMPTS_PER_ACCOUNT": "100000",
            "LIKENESS_LOGIN_ATTEMPTS_PER_PREFIX": "100000",
            "LIKENESS_ACCOUNT_CODES_PER_HOUR": "100000",
            "LIKENESS_INQUIRIES_PER_DAY": "100000",
        },
    )
    try:
        mesh.up()
        token = httpx.post(mesh.http_url + "/v1/devices", json=DEVICE, timeout=30).json()["token"]
        yield mesh, token
    finally:
        mesh.down()


def test_no_input_makes_the_api_fail_with_5xx(live: tuple[Mesh, str]) -> None:
    mesh, token = live
    # Driven directly through Hypothesis: schemathesis' pytest plugin does not support pytest 9 yet.
    # Erasing the fuzzing device (DELETE /v1/me, or /v1/account once it has one) would end the run.
    schema = (
        schemathesis.openapi.from_url(mesh.http_url + "/openapi.json")
        .exclude(method="DELETE", path="/v1/me")
        .exclude(method="DELETE", path="/v1/account")
    )
    failures: list[str] = []
    tested = 0
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case: schemathesis.Case) -> None:
            response = case.call(base_url=mesh.http_url, headers={"Authorization": f"Bearer {token}"}, timeout=60)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:200]}")

        check()
        tested += 1
    assert tested >= 7
    assert not failures, "\n".join(failures[:10])


def test_openapi_is_complete(live: tuple[Mesh, str]) -> None:
    mesh, _ = live
    spec = httpx.get(mesh.http_url + "/openapi.json", timeout=10).json()
    paths = spec["paths"]
    for path in (
        "/v1/devices",
        "/v1/uploads",
        "/v1/me",
        "/v1/me/export",
        "/v1/me/erasures/{erasure_id}",
        "/v1/account",
        "/v1/account/login",
        "/v1/account/verify",
        "/v1/account/password-reset",
        "/v1/account/password-reset/confirm",
        "/v1/me/consents",
        "/v1/me/inquiries",
        "/v1/me/notices",
        "/v1/me/notices/{notice_id}/accept",
        "/v1/me/push-token",
        "/v1/me/sms-contact",
        "/healthz",
        "/readyz",
    ):
        assert path in paths, path
