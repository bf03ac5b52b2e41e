"""The process environment every entry point sets first: offline, no telemetry, and one logging format."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

# Nothing Tetrad runs may reach for the network on its own: model hubs stay offline and telemetry stays off.
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "DVC_NO_ANALYTICS": "1",
               "HF_HUB_DISABLE_TELEMETRY": "1", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
_NOISY = ("urllib3", "filelock", "alembic", "matplotlib", "PIL", "numba")


def setup(verbose: bool = False) -> None:
    """Environment and logging for the stages and the CLI (a user's own setting of a variable wins)."""
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for noisy in _NOISY:
        logging.getLogger(noisy).setLevel(logging.WARNING)


def resolve_device(device: str) -> torch.device:
    """`auto` is the GPU when there is one; anything else is torch's own device name (cpu, cuda:1, ...)."""
    import torch  # here, not at the top: the CLI and the light stages must not pay for torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)
