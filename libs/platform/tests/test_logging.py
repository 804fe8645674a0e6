import io
import json

import structlog

from likeness_platform.logging import configure_logging, redact_text


def _log_line(**fields: object) -> dict:
    out = io.StringIO()
    configure_logging("test", "info", stream=out)
    structlog.get_logger().info("event", **fields)
    return json.loads(out.getvalue().strip().splitlines()[-1])


def test_token_bytes_and_ip_are_redacted() -> None:
    token = "lk_" + "Ab9" * 15
    line = _log_line(
        token=token,
        note=f"user sent Authorization: Bearer {token} from 203.0.113.77 and 2001:db8:85a3::8a2e:370:7334",
        image=b"\xff\xd8\xff\xe0" + b"0" * 1000,
        blob=bytearray(b"raw"),
        nested={"api_key": "sk-123", "client_ip": "198.51.100.4"},
        count=3,
    )
    text = json.dumps(line)
    assert token not in text
    assert "203.0.113.77" not in text and "2001:db8:85a3" not in text and "198.51.100.4" not in text
    assert "sk-123" not in text
    assert line["image"] == "<1004 bytes redacted>"
    assert line["blob"] == "<3 bytes redacted>"
    assert line["count"] == 3


def test_uuids_and_plain_words_survive() -> None:
    subject = "7f1c2d3e-4b5a-4c6d-8e9f-0a1b2c3d4e5f"
    line = _log_line(subject=subject, outcome="OK", spec="us-passport")
    assert line["subject"] == subject
    assert line["outcome"] == "OK" and line["spec"] == "us-passport"


def test_event_text_is_redacted() -> None:
    assert "10.1.2.3" not in redact_text("connect from 10.1.2.3 failed")
    assert redact_text("version 1.2.3") == "version 1.2.3"


def test_grpc_method_names_survive_under_rpc_only() -> None:
    """Method names of 40 characters or more are readable in the per-call log line; the same text
    under another key, and an opaque string under `rpc`, are still redacted."""
    method = "/likeness.privacy.v1.Privacy/RegisterSubject"
    opaque = "lk_" + "Ab9" * 15
    line = _log_line(rpc=method, note=method, other=opaque)
    assert line["rpc"] == method
    assert line["note"] == "[REDACTED]" and line["other"] == "[REDACTED]"
    assert _log_line(rpc=opaque)["rpc"] == "[REDACTED]"
    assert _log_line(rpc="/" + opaque + "/Get")["rpc"] == "[REDACTED]"
