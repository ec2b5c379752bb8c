"""The processes of a job (``accelerate launch`` / ``torchrun``): Accelerate's process state, on CPU as well.

Without a GPU, ``PartialState()`` ignores a ``torchrun`` launch: every process would believe it is alone and
do all the work into the same folder. :func:`process_state` asks for a CPU state when there is no
accelerator device (gloo processes) and refuses a launch whose size Accelerate did not pick up.
"""

from __future__ import annotations

import os

import torch
from accelerate import PartialState


class LaunchError(RuntimeError):
    """The launcher started N processes but Accelerate set up another number."""


def has_accelerator_device() -> bool:
    """A GPU (or another accelerator torch knows of) is visible to this process."""
    probe = getattr(torch, "accelerator", None)  # torch >= 2.6: CUDA, XPU, MPS, ...
    return probe.is_available() if probe is not None else torch.cuda.is_available()


def process_state() -> PartialState:
    """This process's ``PartialState``: a CPU one without an accelerator device, checked against the launch."""
    state = PartialState(cpu=not has_accelerator_device())
    check_launch(state.num_processes)
    return state


def check_launch(num_processes: int) -> None:
    """Raise :class:`LaunchError` if the launcher's ``WORLD_SIZE`` (torchrun, ``accelerate launch``) differs
    from ``num_processes``; launchers that do not set it (mpirun, a plain ``python``) are not checked."""
    launched = int(os.environ.get("WORLD_SIZE", num_processes))
    if launched != num_processes:
        raise LaunchError(f"launched as {launched} processes but Accelerate set up {num_processes}; check the "
                          "launcher's settings (accelerate config / accelerate launch --help)")
