"""Hash chains of the erasure ledger and the access log: a valid chain verifies, any tampering is named."""

from __future__ import annotations

from dataclasses import replace

from likeness_privacy.domain import chain


def _chain(bodies: list[dict], start: str = chain.GENESIS, first_seq: int = 1) -> list[chain.ChainEntry]:
    entries, prev = [], start
    for seq, body in enumerate(bodies, first_seq):
        entry_hash = chain.link(prev, body)
        entries.append(chain.ChainEntry(seq, body, prev, entry_hash))
        prev = entry_hash
    return entries


BODIES = [
    {"erasure_id": f"e{i}", "reason": "user_request", "receipts": [{"holder": "ingestion", "erased": {"uploads": i}}]} for i in range(4)
]


def test_an_intact_chain_verifies_and_counts_its_entries() -> None:
    assert chain.verify(_chain(BODIES)) == (4, "")
    assert chain.verify([]) == (0, "")


def test_canonical_form_ignores_key_order_but_not_values() -> None:
    assert chain.canonical({"b": 1, "a": [1, 2]}) == chain.canonical({"a": [1, 2], "b": 1})
    assert chain.link(chain.GENESIS, {"b": 1, "a": 2}) == chain.link(chain.GENESIS, {"a": 2, "b": 1})
    assert chain.link(chain.GENESIS, {"a": 2}) != chain.link(chain.GENESIS, {"a": 3})
    # The previous hash is covered too: the same body after another entry hashes differently.
    assert chain.link(chain.GENESIS, {"a": 2}) != chain.link("f" * 64, {"a": 2})


def test_an_edited_body_is_caught_at_that_entry() -> None:
    entries = _chain(BODIES)
    entries[2] = replace(entries[2], body={**entries[2].body, "reason": "forged"})
    assert chain.verify(entries) == (2, "entry 3: hash does not match its content")


def test_an_edited_body_with_a_recomputed_hash_breaks_the_next_link() -> None:
    entries = _chain(BODIES)
    forged = {**entries[1].body, "receipts": []}
    entries[1] = replace(entries[1], body=forged, hash=chain.link(entries[1].prev_hash, forged))
    assert chain.verify(entries) == (2, "entry 3: prev_hash does not match entry before it")


def test_a_removed_entry_in_the_middle_is_caught() -> None:
    entries = _chain(BODIES)
    del entries[1]
    count, problem = chain.verify(entries)
    assert count == 1 and problem == "entry 3: prev_hash does not match entry before it"


def test_reordered_entries_are_caught() -> None:
    entries = _chain(BODIES)
    entries[1], entries[2] = entries[2], entries[1]
    assert chain.verify(entries)[1] == "entry 3: prev_hash does not match entry before it"


def test_a_tampered_last_entry_is_caught() -> None:
    entries = _chain(BODIES)
    entries[-1] = replace(entries[-1], hash="0" * 64)
    assert chain.verify(entries) == (3, "entry 4: hash does not match its content")


def test_after_retention_the_first_kept_entry_is_the_anchor_but_must_still_match_its_body() -> None:
    whole = _chain(BODIES)
    kept = whole[2:]  # entries 1 and 2 aged out
    assert kept[0].prev_hash != chain.GENESIS
    assert chain.verify(kept) == (2, "")
    kept[0] = replace(kept[0], body={"erasure_id": "forged"})
    assert chain.verify(kept) == (0, "entry 3: hash does not match its content")


def test_a_checkpoint_is_read_only_when_a_known_key_signed_it_unchanged() -> None:
    import json
    import os
    from datetime import UTC, datetime

    import pytest

    from likeness_privacy.domain import checkpoints as cp

    ours, theirs = cp.signing_key(os.urandom(32)), cp.signing_key(os.urandom(32))
    keys = cp.keyring([ours.public_key()])
    point = cp.Checkpoint({"erasure_ledger": cp.Head(4, "ab" * 32), "access_log": None}, datetime.now(UTC))
    signed = cp.sign(ours, point)
    assert cp.read(keys, signed) == point
    assert json.loads(signed)["key_id"] == cp.key_id(ours.public_key()) and len(cp.key_id(ours.public_key())) == 16
    with pytest.raises(cp.CheckpointError, match=f"unknown key id {cp.key_id(theirs.public_key())}"):
        cp.read(keys, cp.sign(theirs, point))  # another key's checkpoint is not an anchor
    doc = json.loads(signed)
    doc["body"]["heads"]["erasure_ledger"]["seq"] = 3  # moved back to before a cut-off head
    with pytest.raises(cp.CheckpointError, match="bad signature"):
        cp.read(keys, json.dumps(doc).encode())
    # Claiming a known key id does not help a checkpoint another key signed.
    forged = json.loads(cp.sign(theirs, point))
    forged["key_id"] = cp.key_id(ours.public_key())
    with pytest.raises(cp.CheckpointError, match="bad signature"):
        cp.read(keys, json.dumps(forged).encode())
    with pytest.raises(cp.CheckpointError, match="not a checkpoint"):
        cp.read(keys, b"not json")


def test_after_rotation_checkpoints_of_a_listed_retired_key_still_verify() -> None:
    import base64
    import json
    import os
    from datetime import UTC, datetime

    import pytest

    from likeness_privacy.domain import checkpoints as cp

    old, new = cp.signing_key(os.urandom(32)), cp.signing_key(os.urandom(32))
    point = cp.Checkpoint({"erasure_ledger": cp.Head(2, "cd" * 32), "access_log": cp.Head(9, "ef" * 32)}, datetime.now(UTC))
    before, after = cp.sign(old, point), cp.sign(new, point)
    # The verifier holds public keys only: the retired one given as text, as in LIKENESS_LEDGER_RETIRED_PUBLIC_KEYS.
    keys = cp.keyring([new.public_key(), cp.public_key(cp.public_text(old.public_key()))])
    assert cp.read(keys, before) == point and cp.read(keys, after) == point
    with pytest.raises(cp.CheckpointError, match="unknown key id"):
        cp.read(cp.keyring([new.public_key()]), before)  # not listed: refused
    # Checkpoints written before key ids (they carried the base64 public key) verify under the same id.
    legacy = json.loads(before)
    legacy["key"] = legacy.pop("public_key")
    del legacy["key_id"]
    assert cp.signer(json.dumps(legacy).encode()) == cp.key_id(old.public_key())
    assert cp.read(keys, json.dumps(legacy).encode()) == point
    for bad in ("", "not base64!", base64.b64encode(b"short").decode()):
        with pytest.raises(ValueError, match="32 bytes"):
            cp.public_key(bad)


def test_the_chain_must_still_reach_the_checkpointed_head() -> None:
    from likeness_privacy.domain import checkpoints as cp

    entries = _chain(BODIES)
    head = cp.Head(entries[-1].seq, entries[-1].hash)
    assert cp.check(entries, head, "erasure_ledger") == ""
    assert "missing" in cp.check(entries[:-1], head, "erasure_ledger")
    assert "missing" in cp.check(entries[2:], cp.Head(entries[0].seq, entries[0].hash), "access_log")
    # Only once the checkpoint is older than the chain's retention may its head have been swept.
    assert cp.check(entries[2:], cp.Head(entries[0].seq, entries[0].hash), "access_log", may_be_swept=True) == ""
    assert cp.check(entries, None, "erasure_ledger") == ""
