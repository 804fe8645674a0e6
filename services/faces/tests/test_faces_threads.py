"""torch's OpenMP workers sleep while they wait (OMP_WAIT_POLICY=PASSIVE) unless the operator says
otherwise: spinning workers beside the rest of the mesh on a few cores cost several times the CPU."""

from __future__ import annotations

import os
import subprocess
import sys


def _policy_seen_by_torch(environ: dict[str, str]) -> str:
    # The package is what `python -m likeness_faces.main` imports first: the policy is set before torch loads.
    code = (
        "import os, sys; import likeness_faces; assert 'torch' not in sys.modules; "
        "import likeness_faces.main; print(os.environ.get('OMP_WAIT_POLICY', ''))"
    )
    done = subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True, text=True, timeout=300, check=True)
    return done.stdout.split()[0]


def test_the_service_sets_passive_waiting_before_torch_loads() -> None:
    environ = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    assert _policy_seen_by_torch(environ) == "PASSIVE"


def test_an_operators_own_policy_wins() -> None:
    assert _policy_seen_by_torch({**os.environ, "OMP_WAIT_POLICY": "ACTIVE"}) == "ACTIVE"


def _default_torch_threads(cores: int) -> int:
    code = (
        "import os, sys; os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[:int(sys.argv[1])])); "
        "import likeness_faces, torch; from likeness_faces.adapters.models import load_models; "
        "load_models(); print(torch.get_num_threads())"
    )
    done = subprocess.run([sys.executable, "-c", code, str(cores)], capture_output=True, text=True, timeout=300, check=True)
    return int(done.stdout.split()[-1])


def test_mtcnn_gets_half_the_usable_cores_by_default() -> None:
    # beside it, the mesh model, crops and decodes have threads of their own
    cores = len(os.sched_getaffinity(0))
    assert _default_torch_threads(1) == 1
    assert _default_torch_threads(cores) == max(1, cores // 2)


def test_a_gpu_batches_more_canvases_and_an_operator_decides_last() -> None:
    import torch

    from likeness_faces.main import FacesSettings, analyzer_config

    defaults = FacesSettings()
    assert analyzer_config(defaults, torch.device("cpu")).max_batch == 8
    assert analyzer_config(defaults, torch.device("cuda")).max_batch == 128
    both = analyzer_config(defaults, torch.device("cuda")), analyzer_config(defaults, torch.device("cpu"))
    assert {config.cpu_workers for config in both} == {2}
    chosen = analyzer_config(FacesSettings(max_batch=32, cpu_workers=6), torch.device("cuda"))
    assert (chosen.max_batch, chosen.cpu_workers) == (32, 6)


def test_on_cuda_a_thread_waits_less_for_the_gil_and_an_operator_decides_last() -> None:
    import torch

    from likeness_faces.main import FacesSettings, switch_interval_s

    assert switch_interval_s(FacesSettings(), torch.device("cpu")) is None
    assert switch_interval_s(FacesSettings(), torch.device("cuda")) == 0.0001
    assert switch_interval_s(FacesSettings(gil_switch_interval_ms=2), torch.device("cpu")) == 0.002
