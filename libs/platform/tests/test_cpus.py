"""usable_cores follows the process's CPU affinity, not the machine's core count."""

from __future__ import annotations

import os
import subprocess
import sys

from likeness_platform.cpus import usable_cores


def test_usable_cores_is_the_affinity_set() -> None:
    assert usable_cores() == len(os.sched_getaffinity(0)) >= 1


def test_usable_cores_shrinks_with_taskset() -> None:
    code = (
        "import os; os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]}); "
        "from likeness_platform.cpus import usable_cores; print(usable_cores())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "1"
