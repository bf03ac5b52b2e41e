"""Runtime patch for ahaliassos/LipForensics@d0bf555, `models/spatiotemporal_net.py` (function `get_model`).

What: while `cpu_get_model(module, checkout)` is active,
1. `torch.load` is wrapped so that its `map_location` is "cpu" whatever the caller passed;
2. the module's `load_json` is wrapped so that a relative path is read from the checkout's root.
Both are put back on exit, even after an error. Upstream's own `get_model` still builds `Lipreading` from the
config json and loads our checkpoint with its own (strict) `model.load_state_dict(checkpoint_dict["model"])`.

Why: `get_model` loads with `map_location=lambda storage, loc: storage.cuda(device)`, which needs CUDA even for
`device="cpu"`; the parity checks run on CPU. And it reads `./models/configs/lrw_resnet18_mstcn.json` relative to
the working directory (upstream expects to be run from its root); resolving it against the checkout avoids
changing the process's working directory. Nothing else in the function is touched. The recorded calls let the
report state which files were read this way.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

UPSTREAM = "ahaliassos/LipForensics@d0bf555"
TARGET = "models/spatiotemporal_net.py: get_model -> torch.load(map_location=...cuda) and load_json('./models/...')"
SUMMARY = ("get_model: torch.load map_location forced to CPU (upstream maps storages with .cuda(device)); "
           "the relative config path resolved against the checkout")


@contextmanager
def cpu_get_model(module: ModuleType, checkout: Path) -> Iterator[list[str]]:
    """Make `module.get_model` runnable on CPU from any working directory; yields the list of recorded calls."""
    original_load, original_json = torch.load, module.load_json
    calls: list[str] = []

    def load_on_cpu(f: Any, map_location: Any = None, *args: Any, **kwargs: Any) -> Any:
        calls.append(f"torch.load({Path(str(f)).name}, map_location='cpu')")
        return original_load(f, "cpu", *args, **kwargs)

    def load_json_from_checkout(json_fp: str) -> Any:
        path = Path(json_fp)
        resolved = path if path.is_absolute() else Path(checkout) / path
        calls.append(f"load_json({json_fp}) read from the checkout")
        return original_json(str(resolved))

    torch.load, module.load_json = load_on_cpu, load_json_from_checkout
    try:
        yield calls
    finally:
        torch.load, module.load_json = original_load, original_json
