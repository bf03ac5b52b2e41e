"""Runtime patch for mapooon/SelfBlendedImages@9fe4efe, `src/inference/model.py` (class `Detector`).

What: while `offline_from_pretrained()` is active, `efficientnet_pytorch.EfficientNet.from_pretrained` is replaced
by a classmethod that builds the network with `EfficientNet.from_name(model_name, num_classes=..., **overrides)`
and loads no ImageNet weights; the original classmethod is put back on exit, even after an error.

Why: upstream's `Detector.__init__` calls `from_pretrained("efficientnet-b4", advprop=True, num_classes=2)`,
which downloads the AdvProp ImageNet checkpoint. The parity machines have no network, and those weights would
not matter anyway: the inference scripts then load the SBI checkpoint with a strict `load_state_dict`, which
overwrites every parameter and buffer (the 2-class head is never taken from ImageNet since num_classes != 1000).
`from_pretrained` itself is `from_name` + weight loading + `_change_in_channels(in_channels)`; the last step is
kept, so the module tree and state-dict keys are exactly upstream's.

`overrides` (e.g. width/depth coefficients) exist only so the fast test can build a reduced network with the
same key layout; the parity report always uses none. Each call's arguments are recorded, so the report can say
what upstream asked for.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from efficientnet_pytorch import EfficientNet

UPSTREAM = "mapooon/SelfBlendedImages@9fe4efe"
TARGET = "src/inference/model.py: Detector.__init__ -> EfficientNet.from_pretrained (ImageNet download)"
SUMMARY = "EfficientNet.from_pretrained -> from_name (no ImageNet download; the checkpoint overwrites every weight)"


@contextmanager
def offline_from_pretrained(**overrides: Any) -> Iterator[list[dict[str, Any]]]:
    """Swap `EfficientNet.from_pretrained` for an offline builder; yields the list of recorded calls."""
    original = EfficientNet.__dict__["from_pretrained"]
    calls: list[dict[str, Any]] = []

    def offline(cls: type[EfficientNet], model_name: str, weights_path: str | None = None, advprop: bool = False,
                in_channels: int = 3, num_classes: int = 1000, **override_params: Any) -> EfficientNet:
        calls.append({"model_name": model_name, "weights_path": weights_path, "advprop": advprop,
                      "in_channels": in_channels, "num_classes": num_classes, **override_params})
        model = cls.from_name(model_name, num_classes=num_classes, **{**override_params, **overrides})
        model._change_in_channels(in_channels)
        return model

    EfficientNet.from_pretrained = classmethod(offline)
    try:
        yield calls
    finally:
        EfficientNet.from_pretrained = original
