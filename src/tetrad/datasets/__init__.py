"""Dataset adapters. Adding one = a new module here, one import line below, one conf/dataset/<name>.yaml."""

from tetrad.datasets import (  # noqa: F401  (registration side effect)
    asvspoof2019la, av1m, celebdf, dfdc, dfdcp, faceforensics, fakeavceleb, folder, lavdf, mini)
from tetrad.datasets.manifest import build_manifest
from tetrad.datasets.registry import list_datasets, register_dataset

__all__ = ["build_manifest", "list_datasets", "register_dataset"]
