"""reports/<dataset>/report.html: one self-contained page (figures embedded as PNG data, no script, no network)
beside report.md, and the same figures as PNG files in reports/<dataset>/figures/ (DVC shows them as plots,
MLflow keeps them with the run). Rendered with Jinja2 from templates/report.html.j2."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

from tetrad import figures
from tetrad.aggregate.evaluate import FUSIONS, layer_labels, modality_label
from tetrad.aggregate.metrics import as_float, operating_points, per_category
from tetrad.io import write_bytes, write_text
from tetrad.paths import Paths
from tetrad.report import demo_layers
from tetrad.report_media import Media, data_uri, video_media

log = logging.getLogger(__name__)
THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
N_WORST = 3  # false positives and false negatives shown per score


@dataclass(frozen=True)
class Case:
    """One of a score's worst errors: a real video scored most fake (fp) or a fake one scored most real (fn)."""

    score: str
    kind: str  # fp | fn
    video_id: str
    p_fake: float
    row: dict[str, Any]


def scores_of(videos: pd.DataFrame, layers: list[str]) -> list[figures.Score]:
    """Every layer against its modality-true label, the fusions and the cascade against the file's label."""
    out = [figures.Score.of(layer, layer_labels(videos, modality_label(layer)), as_float(videos[f"{layer}_p_fake"]))
           for layer in layers]
    y = as_float(videos["label"])
    out += [figures.Score.of(f"fused {n}", y, as_float(videos[f"fused_{n}"])) for n in FUSIONS]
    return out + [figures.Score.of("cascade", y, as_float(videos["cascade_p_fake"]))]


def write_report(videos: pd.DataFrame, metrics: Mapping[str, Any], paths: Paths, sources: Mapping[str, str],
                 threshold: float) -> list[Path]:
    """report.html and figures/*.png of one dataset; returns the files written."""
    layers = list(metrics["layers"])
    scores = scores_of(videos, layers)
    drawn = {"curves": figures.curves(scores, metrics["dataset"]),
             "roc": figures.curves(scores, metrics["dataset"], kinds=("roc",)),  # `dvc plots show`'s chart
             "distributions": figures.distributions(scores, threshold),
             "reliability": figures.reliability(scores),
             "confusion": figures.confusion(scores[len(layers)], threshold)}
    pngs = {name: figures.png(fig) for name, fig in drawn.items()}
    written = [write_bytes(png, paths.reports / "figures" / f"{name}.png") for name, png in pngs.items()]
    cases = worst_cases(videos, layers)
    media = video_media(paths, dict(sources), {c.video_id for c in cases})
    html = render(metrics, videos, scores, {n: data_uri(p) for n, p in pngs.items()}, cases, media, threshold,
                  dict(sources))
    written.append(write_text(html, paths.reports / "report.html"))
    log.info("wrote %s and %d figures", paths.reports / "report.html", len(pngs))
    return written


def worst_cases(videos: pd.DataFrame, layers: list[str], k: int = N_WORST) -> list[Case]:
    """Per layer and for the seed-weight fusion: the k real videos scored most fake, the k fakes scored least."""
    cols = {layer: (f"{layer}_p_fake", modality_label(layer)) for layer in layers}
    cols["fused seed_weights"] = ("fused_seed_weights", "label")
    out = []
    for name, (col, label_col) in cols.items():
        y, p = layer_labels(videos, label_col), as_float(videos[col])
        for kind, mask, order in (("fp", y == 0, -1), ("fn", y == 1, 1)):
            idx = np.flatnonzero(mask & ~np.isnan(p))
            for i in idx[np.argsort(order * p[idx], kind="stable")][:k]:
                out.append(Case(name, kind, str(videos["video_id"].iat[i]), float(p[i]), videos.iloc[i].to_dict()))
    return out


def category_rows(videos: pd.DataFrame, by: str, scores: dict[str, str], threshold: float) -> list[dict[str, Any]]:
    """Per category (or method): what it is, read off its labels (audio / pictures real or fake), and each score's
    mean P(fake) and fake-call rate."""
    table = per_category(videos, scores, "label", threshold, by=by)
    rows = []
    for name, entry in table.items():
        part = videos[videos[by] == name]
        rows.append({"name": name, "n": entry["n"], "n_fake": entry["n_fake"], "means": _labels_meaning(part),
                     "scores": {s: entry[s] for s in scores}})
    return rows


def _labels_meaning(rows: pd.DataFrame) -> str:
    def side(col: str, what: str) -> str:
        values = set(as_float(rows[col])[~np.isnan(as_float(rows[col]))].astype(int))
        return {frozenset({0}): f"real {what}", frozenset({1}): f"fake {what}"}.get(frozenset(values),
                                                                                   f"{what}: mixed or unknown")
    return f"{side('audio_label', 'audio')}, {side('video_label', 'pictures')}"


def render(metrics: Mapping[str, Any], videos: pd.DataFrame, scores: list[figures.Score], images: dict[str, str],
           cases: list[Case], media: dict[str, Media], threshold: float, sources: dict[str, str]) -> str:
    env = Environment(loader=PackageLoader("tetrad", "templates"), autoescape=select_autoescape(["html", "j2"]))
    score_cols = {layer: f"{layer}_p_fake" for layer in metrics["layers"]}
    score_cols |= {"fused seed_weights": "fused_seed_weights", "cascade": "cascade_p_fake"}
    thresholds = sorted({*THRESHOLDS, threshold})
    ops = {s.name: operating_points(s.y, s.p, thresholds).to_dict("records") for s in scores}
    eces = {s.name: figures.ece(s.y, s.p) for s in scores}
    statuses = sorted({st for b in metrics["layers"].values() for st in b["statuses"]})
    return env.get_template("report.html.j2").render(
        m=metrics, images=images, threshold=threshold, ops=ops, ops_thresholds=thresholds, eces=eces,
        statuses=statuses,
        categories=category_rows(videos, "category", score_cols, threshold),
        methods=category_rows(videos, "method", score_cols, threshold), score_names=list(score_cols),
        cases=cases, media=media, sources=sources, demo=demo_layers(metrics), fmt=_fmt)


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)
