"""The chart's settings for a person's rights (privacy): inquiry limits and retention, APNs, SMTP and SMS for notices,
each reaching the service as given, secrets by reference, and egress opened only for what is configured."""

from __future__ import annotations

from typing import Any

import helm_python as helm
import pytest

from tests.deploy.test_chart_config import load_settings, resolved_env, secret_data, settings_class
from tests.deploy.test_chart_network import policy_of

ANYWHERE = [{"ipBlock": {"cidr": "0.0.0.0/0"}}]
RIGHTS = {
    "inquiryMaxChars": 2000,
    "inquiryRetentionDays": 180,
    "apns": {
        "host": "https://api.sandbox.push.apple.com",
        "keyId": "KEY123",
        "teamId": "TEAM456",
        "topic": "com.example.idphoto",
        "existingSecret": "likeness-apns",
    },
    "sms": {
        "baseUrl": "https://api.twilio.com/2010-04-01",
        "accountId": "AC0123456789",
        "from": "+15005550006",
        "existingSecret": "likeness-sms",
    },
}
SMS_GATEWAY = [{"ipBlock": {"cidr": "198.51.100.0/24"}}]
MAIL = {
    "smtpHost": "smtp.example.com",
    "smtpPort": 465,
    "smtpSecurity": "tls",
    "from": "Likeness <notices@example.com>",
    "existingSecret": "likeness-smtp",
}


def test_defaults_reach_privacy_and_leave_push_and_mail_off(
    monkeypatch: pytest.MonkeyPatch, render_chart: Any, minimal_values: dict[str, Any], release: tuple[str, str]
) -> None:
    rendered = render_chart(minimal_values)
    env = resolved_env(rendered, "privacy", release[0])
    settings = load_settings(monkeypatch, settings_class("privacy"), env)
    assert (settings.inquiry_max_chars, settings.inquiry_retention_days) == (4000, 365)
    assert not any(name.startswith(("LIKENESS_APNS_", "LIKENESS_SMTP_", "LIKENESS_SMS_")) for name in env)
    egress_ports = {p["port"] for rule in policy_of(rendered, "privacy", release)["egress"] for p in rule["ports"]}
    assert not egress_ports & {443, 465, 587}


def test_configured_rights_settings_reach_privacy_as_given(
    monkeypatch: pytest.MonkeyPatch, render_chart: Any, minimal_values: dict[str, Any], release: tuple[str, str]
) -> None:
    minimal_values["rights"] = RIGHTS
    minimal_values["mail"] = MAIL
    egress = minimal_values["networkPolicy"]["egress"]
    egress["apns"] = {"to": ANYWHERE, "ports": [443]}
    egress["smtp"] = {"to": [{"ipBlock": {"cidr": "192.0.2.25/32"}}], "ports": [465]}
    egress["sms"] = {"to": SMS_GATEWAY, "ports": [443]}
    rendered = render_chart(minimal_values)
    env = rendered.env("privacy")
    # Keys and passwords come from the operator's Secrets, never as values in the Deployment.
    assert env["LIKENESS_APNS_KEY"] == ("secret", "likeness-apns", "apns-key")
    assert env["LIKENESS_SMTP_PASSWORD"] == ("secret", "likeness-smtp", "smtp-password")
    assert env["LIKENESS_SMS_TOKEN"] == ("secret", "likeness-sms", "sms-token")
    plain = {k: v for k, v in env.items() if not isinstance(v, tuple) or v[1] == release[0]}
    settings = load_settings(monkeypatch, settings_class("privacy"), resolved_env_only(rendered, plain, release[0]))
    assert (settings.inquiry_max_chars, settings.inquiry_retention_days) == (2000, 180)
    assert (settings.apns_host, settings.apns_key_id, settings.apns_team_id, settings.apns_topic) == (
        "https://api.sandbox.push.apple.com",
        "KEY123",
        "TEAM456",
        "com.example.idphoto",
    )
    assert (settings.sms_base_url, settings.sms_account_id, settings.sms_from) == (
        "https://api.twilio.com/2010-04-01",
        "AC0123456789",
        "+15005550006",
    )
    # APNs is HTTP/2 only: no setting can turn it off.
    assert not any(name == "LIKENESS_APNS_HTTP2" for name in env)
    assert (settings.smtp_host, settings.smtp_port, settings.smtp_security, settings.mail_from) == (
        "smtp.example.com",
        465,
        "tls",
        "Likeness <notices@example.com>",
    )
    # Only privacy gets them, and only privacy may reach APNs and the mail server.
    for svc in ("gateway", "render"):
        assert not any(name.startswith(("LIKENESS_APNS_", "LIKENESS_SMS_")) for name in rendered.env(svc))
    assert not any(name.startswith("LIKENESS_SMTP_") for name in rendered.env("render"))
    rules = policy_of(rendered, "privacy", release)["egress"]
    assert {"to": ANYWHERE, "ports": [{"port": 443, "protocol": "TCP"}]} in rules
    assert {"to": [{"ipBlock": {"cidr": "192.0.2.25/32"}}], "ports": [{"port": 465, "protocol": "TCP"}]} in rules
    assert {"to": SMS_GATEWAY, "ports": [{"port": 443, "protocol": "TCP"}]} in rules
    assert not [r for r in policy_of(rendered, "gateway", release)["egress"] if r.get("to") == SMS_GATEWAY]
    assert not [r for r in policy_of(rendered, "gateway", release)["egress"] if r.get("to") == ANYWHERE]


def resolved_env_only(rendered: Any, env: dict[str, Any], secret_name: str) -> dict[str, str]:
    """`env` with references to the chart's own Secret resolved (the operator's Secrets are not in the render)."""
    out = {}
    data = secret_data(rendered, secret_name) if secret_name in rendered.of_kind("Secret") else {}
    for name, value in env.items():
        out[name] = data[value[2]] if isinstance(value, tuple) else value
    return out


def test_half_an_apns_configuration_or_no_egress_for_it_is_refused(render_chart: Any, minimal_values: dict[str, Any]) -> None:
    minimal_values["rights"] = {"apns": {"keyId": "KEY123", "topic": "com.example.idphoto"}}
    with pytest.raises(helm.HelmError, match=r"rights\.apns needs keyId, teamId, topic and existingSecret together"):
        render_chart(minimal_values)
    minimal_values["rights"] = RIGHTS
    minimal_values["mail"] = MAIL
    # Each missing egress rule is named (the gateway's and privacy's mail rule alike need the smtp one).
    egress = minimal_values["networkPolicy"]["egress"]
    egress["smtp"] = {"to": [{"ipBlock": {"cidr": "192.0.2.25/32"}}], "ports": [465]}
    with pytest.raises(helm.HelmError, match=r"networkPolicy\.egress\.apns\.to is required"):
        render_chart(minimal_values)
    egress["apns"] = {"to": ANYWHERE, "ports": [443]}
    del egress["smtp"]
    with pytest.raises(helm.HelmError, match=r"networkPolicy\.egress\.smtp\.to is required"):
        render_chart(minimal_values)
    egress["smtp"] = {"to": [{"ipBlock": {"cidr": "192.0.2.25/32"}}], "ports": [465]}
    with pytest.raises(helm.HelmError, match=r"networkPolicy\.egress\.sms\.to is required"):
        render_chart(minimal_values)
    egress["sms"] = {"to": SMS_GATEWAY, "ports": [443]}
    assert "LIKENESS_APNS_KEY" in render_chart(minimal_values).env("privacy")
    assert "LIKENESS_SMS_TOKEN" in render_chart(minimal_values).env("privacy")


def test_half_an_sms_configuration_or_a_bad_number_is_refused(render_chart: Any, minimal_values: dict[str, Any]) -> None:
    minimal_values["rights"] = {"sms": {"baseUrl": "https://api.twilio.com/2010-04-01", "accountId": "AC0123456789"}}
    with pytest.raises(helm.HelmError, match=r"rights\.sms needs baseUrl, accountId, from and existingSecret together"):
        render_chart(minimal_values)
    minimal_values["rights"] = {"sms": dict(RIGHTS["sms"], **{"from": "07700900101"})}
    with pytest.raises(helm.HelmError, match=r"from"):
        render_chart(minimal_values)
    minimal_values["rights"] = {"sms": dict(RIGHTS["sms"], baseUrl="http://sms.example.com")}
    with pytest.raises(helm.HelmError, match=r"baseUrl"):
        render_chart(minimal_values)


def test_a_mail_password_given_as_a_value_is_kept_in_the_charts_secret(
    monkeypatch: pytest.MonkeyPatch, render_chart: Any, minimal_values: dict[str, Any], release: tuple[str, str]
) -> None:
    minimal_values["mail"] = {"smtpHost": "smtp.example.com", "smtpUsername": "likeness", "smtpPassword": "s3cret-pass"}
    minimal_values["networkPolicy"]["egress"]["smtp"] = {"to": ANYWHERE, "ports": [587]}
    rendered = render_chart(minimal_values)
    assert rendered.env("privacy")["LIKENESS_SMTP_PASSWORD"] == ("secret", release[0], "smtp-password")
    settings = load_settings(monkeypatch, settings_class("privacy"), resolved_env(rendered, "privacy", release[0]))
    assert (settings.smtp_username, settings.smtp_password, settings.smtp_port) == ("likeness", "s3cret-pass", 587)
