"""Every file of one dataset's run, in one place; `dvc.yaml` declares the same paths as stage deps and outs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PROVENANCE = "provenance.json"  # beside a face kind's shards: which face detector and mean face cut the crops


@dataclass(frozen=True)
class Paths:
    dataset: str
    root: Path = Path(".")

    @property
    def data(self) -> Path:
        return self.root / "data" / self.dataset

    @property
    def manifest(self) -> Path:
        return self.data / "manifest.parquet"

    def cache(self, kind: str) -> Path:
        return self.data / "cache" / kind

    def scores(self, layer: str) -> Path:
        return self.data / "scores" / f"{layer}.parquet"

    def score_info(self, layer: str) -> Path:
        """What a detect run was (detector, weights provenance, device), beside its scores."""
        return self.scores(layer).with_suffix(".json")

    def provenance(self, kind: str) -> Path:
        """Beside a face kind's shards: which face detector and mean face cut the crops (extract writes it)."""
        return self.cache(kind) / PROVENANCE

    @property
    def reports(self) -> Path:
        return self.root / "reports" / self.dataset

    @property
    def summary_row(self) -> Path:
        """This dataset's line of the cross-dataset summary (the summary stage's input)."""
        return self.root / "data" / "summary" / f"{self.dataset}.json"
