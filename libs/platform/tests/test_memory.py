"""The allocator setting: large buffers freed by one request are reused by the next instead of being faulted in anew."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from likeness_platform.memory import ARENA_MAX, MMAP_THRESHOLD, TRIM_THRESHOLD, tune_allocator

# Rounds of eight 4 MiB arrays written and freed together: what an ID photo's step does with its image-sized arrays.
CHURN = """
import json, resource, sys
import numpy as np
from likeness_platform.memory import tune_allocator
tuned = tune_allocator() if sys.argv[1] == "tuned" else {}
def round_():
    blocks = [np.empty(4 * 1024 * 1024, np.uint8) for _ in range(8)]
    for b in blocks:
        b.fill(1)
for _ in range(3):
    round_()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    round_()
print(json.dumps({"tuned": tuned, "faults": (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10}))
"""


def _churn(mode: str) -> dict[str, Any]:
    env = {"PATH": "/usr/bin:/bin"}  # no MALLOC_* from the caller's environment
    done = subprocess.run([sys.executable, "-c", CHURN, mode], capture_output=True, text=True, timeout=120, env=env, check=True)
    return json.loads(done.stdout)


def test_freed_buffers_are_reused_not_faulted_in_again() -> None:
    plain, tuned = _churn("plain"), _churn("tuned")
    assert tuned["tuned"] == {"mmap_threshold": MMAP_THRESHOLD, "trim_threshold": TRIM_THRESHOLD, "arena_max": ARENA_MAX}
    # 32 MiB a round is 8192 pages: glibc's defaults give about half of them back and fault them in again each
    # round (4072 here); kept for reuse, none are.
    assert plain["faults"] > 1000, plain
    assert tuned["faults"] < 100, tuned


def test_an_operators_allocator_settings_win() -> None:
    for name in ("MALLOC_ARENA_MAX", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES"):
        assert tune_allocator({name: "1"}) == {}
