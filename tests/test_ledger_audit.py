"""`likeness ledger verify --checkpoints DIR --public-key FILE`: an auditor checks the signed checkpoints offline,
written by privacy's own code, with public keys only (current and retired); unknown and forged ones fail."""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from likeness_client.cli import cli
from likeness_platform.blobs import LocalBlobStore
from likeness_privacy.domain import checkpoints as cp


def _verify(*args: str) -> tuple[int, dict]:
    result = CliRunner().invoke(cli, ["ledger", "verify", "--json", *args])
    assert result.output.strip(), result.output
    return result.exit_code, json.loads(result.output)


async def test_checkpoints_verify_offline_across_a_rotation_and_forgeries_fail(tmp_path: Path) -> None:
    sink = LocalBlobStore(tmp_path / "checkpoints")  # the local sink's own (sharded) layout
    old, new, stranger = (cp.signing_key(os.urandom(32)) for _ in range(3))
    heads = {"erasure_ledger": cp.Head(3, "ab" * 32), "access_log": cp.Head(7, "cd" * 32)}
    await sink.put("0000000000000001aa", cp.sign(old, cp.Checkpoint(heads, datetime(2026, 1, 1, tzinfo=UTC))))
    await sink.put("0000000000000002aa", cp.sign(new, cp.Checkpoint(heads, datetime(2026, 2, 1, tzinfo=UTC))))
    # Key files as an auditor gets them: base64 raw (what privacy logs and the chart lists), or PEM.
    new_file, old_file = tmp_path / "current.pub", tmp_path / "retired.pem"
    new_file.write_text("# current\n" + cp.public_text(new.public_key()) + "\n")
    old_file.write_bytes(old.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    folder = str(tmp_path / "checkpoints")

    code, report = _verify("--checkpoints", folder, "--public-key", str(new_file), "--public-key", str(old_file))
    assert code == 0 and report["ok"] and report["checkpoints"] == 2, report
    assert report["key_ids"] == sorted([cp.key_id(old.public_key()), cp.key_id(new.public_key())])
    assert report["newest"]["name"] == "0000000000000002aa" and report["newest"]["heads"]["erasure_ledger"] == [3, "ab" * 32]

    # Without the retired key, its checkpoint is signed by an unknown key id.
    code, report = _verify("--checkpoints", folder, "--public-key", str(new_file))
    assert code == 1 and report["problems"] == [f"checkpoint 0000000000000001aa: signed by unknown key id {cp.key_id(old.public_key())}"]

    # A checkpoint planted by a key nobody listed, and one whose signature was changed, are both named.
    await sink.put("0000000000000003aa", cp.sign(stranger, cp.Checkpoint(heads, datetime(2026, 3, 1, tzinfo=UTC))))
    doc = json.loads(await sink.get("0000000000000002aa"))
    doc["body"]["heads"]["erasure_ledger"]["seq"] = 2  # moved back, as if hiding a cut-off head
    await sink.put("0000000000000004aa", json.dumps(doc).encode())
    code, report = _verify("--checkpoints", folder, "--public-key", str(new_file), "--public-key", str(old_file))
    assert code == 1 and report["problems"] == [
        f"checkpoint 0000000000000003aa: signed by unknown key id {cp.key_id(stranger.public_key())}",
        f"checkpoint 0000000000000004aa: bad signature (key id {cp.key_id(new.public_key())})",
    ]


def test_offline_verification_refuses_bad_keys_and_missing_arguments(tmp_path: Path) -> None:
    (tmp_path / "cps").mkdir()
    bad = tmp_path / "bad.pub"
    bad.write_text(base64.b64encode(b"short").decode())
    result = CliRunner().invoke(cli, ["ledger", "verify", "--checkpoints", str(tmp_path / "cps"), "--public-key", str(bad)])
    assert result.exit_code == 2 and "32 bytes" in result.output
    result = CliRunner().invoke(cli, ["ledger", "verify", "--checkpoints", str(tmp_path / "cps")])
    assert result.exit_code == 2 and "needs --public-key" in result.output
    good = tmp_path / "good.pub"
    good.write_text(cp.public_text(cp.signing_key(os.urandom(32)).public_key()))
    code, report = _verify("--checkpoints", str(tmp_path / "cps"), "--public-key", str(good))
    assert code == 1 and report["problems"] == [f"no checkpoints under {tmp_path / 'cps'}"]  # nothing to anchor is not ok


def test_the_public_key_of_a_signing_key_is_what_privacy_verifies_with(tmp_path: Path) -> None:
    """`likeness ledger public-key SEED_FILE`: the line to list as retired when rotating, and to give an auditor."""
    seed = os.urandom(32)
    seed_file = tmp_path / "seed"
    seed_file.write_text(base64.b64encode(seed).decode() + "\n")
    result = CliRunner().invoke(cli, ["ledger", "public-key", str(seed_file)])
    public = cp.signing_key(seed).public_key()
    assert result.exit_code == 0 and result.output == f"{cp.public_text(public)}  # key id {cp.key_id(public)}\n"
    # The line is a key file as `verify --public-key` reads it (the comment is ignored).
    key_file = tmp_path / "ledger.pub"
    key_file.write_text(result.output)
    from likeness_client.ledger import load_public_keys

    assert list(load_public_keys([key_file])) == [cp.key_id(public)]
    result = CliRunner().invoke(cli, ["ledger", "public-key", "-"], input=base64.b64encode(b"short").decode())
    assert result.exit_code == 2 and "32-byte" in result.output
