"""A network as one TorchScript call, for the faces service's PyTorch models.

Run eagerly, every layer or operator of a network takes the GIL back when it returns, and
beside threads running Python each retake can wait up to the switch interval: that is how the
GPU passes starved (bench/faces_gpu/NOTES.md; on the CPU a landmarks pass took 2,089 ms eager
and 40 ms traced beside one busy thread). Traced, the whole pass runs in C++.

The networks traced here are fixed chains of layers that read the batch size (and, for
MTCNN's PNet, the image size) from their input, so one trace serves every size (their tests
check several against the networks themselves). The tracer's warnings are about shapes it
records as constants, fixed for these networks, and about torch.jit.trace's deprecation.
"""

from __future__ import annotations

import warnings
from typing import Any, cast

import torch


def traced(network: torch.nn.Module, item_shape: tuple[int, ...], device: torch.device) -> Any:
    """`network` traced on a random batch of two items of `item_shape` on `device`."""
    example = torch.rand(2, *item_shape, device=device)
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")
        return cast(Any, torch.jit.trace(network, (example,), check_trace=False))
