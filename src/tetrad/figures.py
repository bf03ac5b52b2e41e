"""The report's figures, drawn with matplotlib (Agg, no display) and scikit-learn's metric displays: ROC, PR and
DET of every score on one sheet, score distributions by class, reliability diagrams with ECE, the confusion
matrix, the worst cases' audio spectrograms, and the cross-dataset AUC heat map. Each function takes plain arrays
or tables and returns a Figure; `png` turns one into bytes (tetrad.report_html saves and embeds them)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")  # a report is written on servers and in CI: never a display

import matplotlib.pyplot as plt  # noqa: E402 - after the backend is chosen
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from sklearn.calibration import CalibrationDisplay  # noqa: E402
from sklearn.metrics import (  # noqa: E402
    ConfusionMatrixDisplay,
    DetCurveDisplay,
    PrecisionRecallDisplay,
    RocCurveDisplay,
)

ECE_BINS = 10


@dataclass(frozen=True)
class Score:
    """One score to draw: its name, the labels it is judged against (1 = fake) and P(fake), NaN rows dropped."""

    name: str
    y: np.ndarray
    p: np.ndarray

    @classmethod
    def of(cls, name: str, y: np.ndarray, p: np.ndarray) -> Score:
        keep = ~np.isnan(y) & ~np.isnan(p)
        return cls(name, y[keep].astype(int), p[keep])

    @property
    def both_classes(self) -> bool:
        return len(np.unique(self.y)) == 2


def png(fig: Figure, dpi: int = 110) -> bytes:
    """The figure as PNG bytes; the figure is closed (pyplot keeps every open figure alive)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


CURVES = {"roc": ("ROC", RocCurveDisplay), "pr": ("Precision-recall", PrecisionRecallDisplay),
          "det": ("DET (normal deviate scale)", DetCurveDisplay)}


def curves(scores: Sequence[Score], title: str, kinds: Sequence[str] = ("roc", "pr", "det")) -> Figure:
    """ROC, precision-recall and DET curves (`kinds`) of every score with both classes, one labelled line each."""
    fig, axes = plt.subplots(1, len(kinds), figsize=(5.8 * len(kinds), 5.2), squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        name, display = CURVES[kind]
        for s in (s for s in scores if s.both_classes):
            display.from_predictions(s.y, s.p, name=s.name, ax=ax)
        if kind == "roc":
            ax.plot([0, 1], [0, 1], ls=":", color="grey", label="chance")
        ax.set_title(f"{name}: {title}")
        if ax.get_legend_handles_labels()[0]:  # a dataset with one class draws no curve
            ax.legend(fontsize=7, loc="lower right" if kind == "roc" else "best")
        ax.grid(alpha=0.3)
    return fig


def distributions(scores: Sequence[Score], threshold: float) -> Figure:
    """P(fake) histograms of real and fake videos, one panel per score, the decision threshold marked."""
    n = max(1, len(scores))
    cols = min(4, n)
    fig, axes = plt.subplots((n + cols - 1) // cols, cols, figsize=(4.2 * cols, 3.1 * ((n + cols - 1) // cols)),
                             squeeze=False, layout="constrained")
    bins = np.linspace(0, 1, 21)
    for ax, s in zip(axes.flat, scores):
        for label, name, color in ((0, "real", "tab:blue"), (1, "fake", "tab:red")):
            ax.hist(s.p[s.y == label], bins=bins, alpha=0.55, color=color, label=f"{name} (n={int(np.sum(s.y == label))})")
        ax.axvline(threshold, color="black", ls="--", lw=1)
        ax.set_title(s.name, fontsize=10)
        ax.set_xlabel("P(fake)")
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(scores):]:
        ax.set_visible(False)
    return fig


def ece(y: np.ndarray, p: np.ndarray, bins: int = ECE_BINS) -> float | None:
    """Expected calibration error: |fake rate - mean P(fake)| per equal-width bin, weighted by the bin's share."""
    if len(y) == 0:
        return None
    which = np.clip(np.digitize(p, np.linspace(0, 1, bins + 1)[1:-1]), 0, bins - 1)
    gaps = [abs(y[which == b].mean() - p[which == b].mean()) * np.mean(which == b) for b in range(bins)
            if np.any(which == b)]
    return float(np.sum(gaps))


def reliability(scores: Sequence[Score]) -> Figure:
    """Reliability diagram (fake rate against mean P(fake) per bin) with each score's ECE in its label."""
    fig, ax = plt.subplots(figsize=(6.5, 6))
    for s in scores:
        if len(s.y):
            CalibrationDisplay.from_predictions(s.y, s.p, n_bins=ECE_BINS, name=f"{s.name} (ECE {ece(s.y, s.p):.3f})",
                                                ax=ax)
    ax.set_title("Reliability: fake rate per P(fake) bin (diagonal = calibrated)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    return fig


def confusion(score: Score, threshold: float) -> Figure:
    fig, ax = plt.subplots(figsize=(4.2, 3.8))
    if not len(score.y):  # nothing scored (e.g. every file failed): an empty panel that says so
        ax.text(0.5, 0.5, f"{score.name}: no video with a label and a score", ha="center", va="center")
        ax.set_axis_off()
        return fig
    ConfusionMatrixDisplay.from_predictions(score.y, (score.p > threshold).astype(int), labels=[0, 1],
                                            display_labels=["real", "fake"], ax=ax, colorbar=False)
    ax.set_title(f"{score.name} at threshold {threshold:g}")
    return fig


def spectrogram(wave: np.ndarray, sample_rate: int) -> Figure:
    """A small log-power spectrogram of a (cached, 16 kHz) waveform, for the error analysis."""
    fig, ax = plt.subplots(figsize=(3.6, 1.5))
    ax.set_facecolor("black")  # digital silence has no finite dB value: drawn as the darkest colour, not blank
    with np.errstate(divide="ignore"):  # log10(0) of that silence
        ax.specgram(wave, NFFT=512, Fs=sample_rate, noverlap=384, cmap="magma")
    ax.set_xlabel("s", fontsize=7)
    ax.set_ylabel("Hz", fontsize=7)
    ax.tick_params(labelsize=6)
    return fig


def heatmap(auc: pd.DataFrame) -> Figure:
    """AUC per score (rows) and dataset (columns), each cell annotated; blank where undefined."""
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * auc.shape[1], 0.9 + 0.45 * auc.shape[0]))
    image = ax.imshow(auc.to_numpy(dtype=float), vmin=0.5, vmax=1.0, cmap="viridis", aspect="auto")
    ax.set_xticks(range(auc.shape[1]), auc.columns, rotation=30, ha="right")
    ax.set_yticks(range(auc.shape[0]), auc.index)
    for (i, j), value in np.ndenumerate(auc.to_numpy(dtype=float)):
        if not np.isnan(value):
            ax.text(j, i, f"{value:.3f}", ha="center", va="center", color="white" if value < 0.8 else "black",
                    fontsize=8)
    fig.colorbar(image, ax=ax, label="AUC")
    ax.set_title("AUC by score and dataset")
    return fig
