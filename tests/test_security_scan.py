"""The CI security gate: a planted vulnerable pin or an unsafe call fails it; only a reasoned allow-list entry lets one through."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import security_scan as scan  # noqa: E402

ADVISORY = {
    "id": "PYSEC-9999-1",
    "affected": [
        {
            "package": {"name": "Jinja2", "ecosystem": "PyPI"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.10.1"}]}],
        }
    ],
}


@pytest.fixture
def planted(tmp_path: Path) -> tuple[Path, Path]:
    """A lock with one vulnerable pin beside a safe one, and an advisory folder laid out like the PyPA database."""
    lock = tmp_path / "requirements.lock"
    lock.write_text("jinja2==2.10 \\\n    --hash=sha256:" + "0" * 64 + "\nrequests==2.32.3  # fine\n")
    folder = tmp_path / "vulns" / "jinja2"
    folder.mkdir(parents=True)
    (folder / "PYSEC-9999-1.json").write_text(json.dumps(ADVISORY))
    withdrawn = {**ADVISORY, "id": "PYSEC-9999-2", "withdrawn": "2024-01-01T00:00:00Z"}
    (folder / "PYSEC-9999-2.json").write_text(json.dumps(withdrawn))
    return lock, tmp_path / "vulns"


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = scan.main(argv)
    return code, capsys.readouterr().out


def test_a_planted_vulnerable_pin_fails_the_scan(planted: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lock, vulns = planted
    code, out = run(
        ["--allowlist", str(tmp_path / "none.toml"), "deps", "--offline", "--lock", str(lock), "--advisories", str(vulns)], capsys
    )
    assert code == 1
    assert "FAIL     jinja2==2.10: PYSEC-9999-1 (fixed in 2.10.1)" in out
    assert "PYSEC-9999-2" not in out  # withdrawn advisories do not count
    assert "FAIL     requests" not in out


def test_the_fixed_version_passes(planted: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lock, vulns = planted
    lock.write_text("jinja2==2.10.1\n")
    code, out = run(
        ["--allowlist", str(tmp_path / "none.toml"), "deps", "--offline", "--lock", str(lock), "--advisories", str(vulns)], capsys
    )
    assert code == 0, out


def test_an_allow_list_entry_needs_a_reason_and_must_still_match(
    planted: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lock, vulns = planted
    allow = tmp_path / "allow.toml"
    args = ["--allowlist", str(allow), "deps", "--offline", "--lock", str(lock), "--advisories", str(vulns)]

    allow.write_text('[[advisory]]\nid = "PYSEC-9999-1"\npackage = "jinja2"\nreason = "ok"\n')
    code, out = run(args, capsys)
    assert code == 1 and "needs every field and a reason" in out

    allow.write_text('[[advisory]]\nid = "PYSEC-9999-1"\npackage = "Jinja2"\nreason = "Only the sandbox we never enable is affected."\n')
    code, out = run(args, capsys)
    assert code == 0 and "allowed  jinja2==2.10: PYSEC-9999-1" in out

    lock.write_text("jinja2==2.10.1\n")
    code, out = run(args, capsys)
    assert code == 1 and "matches nothing any more" in out


@pytest.mark.parametrize(
    ("version", "events", "affected"),
    [
        ("1.0", [{"introduced": "0"}, {"fixed": "1.1"}], True),
        ("1.1", [{"introduced": "0"}, {"fixed": "1.1"}], False),
        ("0.9", [{"introduced": "1.0"}, {"fixed": "1.1"}], False),
        ("2.5", [{"introduced": "1.0"}, {"fixed": "1.1"}, {"introduced": "2.0"}, {"fixed": "3.0"}], True),
        ("1.5", [{"introduced": "1.0"}, {"fixed": "1.1"}, {"introduced": "2.0"}, {"fixed": "3.0"}], False),
        ("1.2", [{"introduced": "1.0"}, {"last_affected": "1.2"}], True),
        ("1.3", [{"introduced": "1.0"}, {"last_affected": "1.2"}], False),
        ("9.0", [{"introduced": "1.0"}], True),
    ],
)
def test_osv_ranges(version: str, events: list[dict[str, str]], affected: bool) -> None:
    record = {"affected": [{"package": {"name": "pkg", "ecosystem": "PyPI"}, "ranges": [{"type": "ECOSYSTEM", "events": events}]}]}
    assert scan._affects(record, "pkg", version) is affected
    other = {"affected": [{"package": {"name": "pkg", "ecosystem": "npm"}, "ranges": [{"type": "ECOSYSTEM", "events": events}]}]}
    assert scan._affects(other, "pkg", version) is False


@pytest.fixture
def fake_pypi() -> Iterator[str]:
    """PyPI's JSON API for one vulnerable release; every other release has no advisories, unknown ones 404."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            known = {
                "/pypi/jinja2/2.10/json": {"vulnerabilities": [{"id": "GHSA-xxxx-yyyy-zzzz", "fixed_in": ["2.10.1"], "withdrawn": None}]},
                "/pypi/requests/2.32.3/json": {"vulnerabilities": []},
            }
            body = known.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.end_headers()
            self.wfile.write(json.dumps(body or {}).encode())

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/pypi"
    finally:
        server.shutdown()


def test_pypi_advisories_fail_the_scan_and_unanswered_packages_are_named(
    fake_pypi: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lock = tmp_path / "requirements.lock"
    lock.write_text("jinja2==2.10\nrequests==2.32.3\nnot-on-this-index==1.0\n")
    code, out = run(["--allowlist", str(tmp_path / "none.toml"), "deps", "--lock", str(lock), "--pypi", fake_pypi], capsys)
    assert code == 1
    assert "FAIL     jinja2==2.10: GHSA-xxxx-yyyy-zzzz (fixed in 2.10.1)" in out
    assert "3 pinned packages, 2 audited" in out and "not-on-this-index" in out


def test_unsafe_code_fails_the_static_scan_and_an_inline_nosec_does_not_hide_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "services" / "demo"
    src.mkdir(parents=True)
    (src / "handler.py").write_text(
        "import subprocess\n\n\ndef run(name):\n    return subprocess.call('convert ' + name, shell=True)  # nosec\n"
    )
    code, out = run(["--allowlist", str(tmp_path / "none.toml"), "code", "--root", str(tmp_path), "services"], capsys)
    assert code == 1
    assert "services/demo/handler.py:5 B602" in out


def test_our_own_code_passes_the_static_scan(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(["code"], capsys)
    assert code == 0, out
