"""Human-readable report of one dataset's evaluation (reports/<dataset>/report.md) and the console summary."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

DEMO_WARNING = ("**{layers}: DEMO-RANDOM weights.** These layers ran randomly initialised checkpoints "
                "(no real weights were found); their scores, and every fusion that uses them, mean nothing.")
_COLS = ("auc", "ap", "acc", "balanced_acc", "eer", "tpr_at_fpr_1pct")


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def with_ci(block: Mapping[str, Any], key: str) -> str:
    """`0.912 [0.880, 0.940]`: a number and its confidence interval when it has one."""
    lo, hi = block.get(f"{key}_ci_low"), block.get(f"{key}_ci_high")
    ci = f" [{_fmt(lo)}, {_fmt(hi)}]" if None not in (lo, hi, block.get(key)) else ""
    return _fmt(block.get(key)) + ci


def demo_layers(metrics: Mapping[str, Any]) -> list[str]:
    return [name for name, block in metrics["layers"].items() if block.get("weights") == "demo-random"]


def protocol_lines(protocol: Mapping[str, Any] | None) -> list[str]:
    """The protocol in force and every setting where it departs from the upstream detectors' evaluation."""
    if not protocol:
        return []
    found = protocol.get("departures") or []
    head = f"Protocol: **{protocol['name']}**; " + ("every layer evaluates as its upstream does." if not found else
                                                     f"{len(found)} departures from upstream's evaluation:")
    return [head, *[f"- {d}" for d in found], ""]


def render_markdown(metrics: Mapping[str, Any]) -> str:
    lines = [f"# Tetrad report: {metrics['dataset']}", "",
             f"{metrics['n_videos']} videos, {metrics['n_scored']} with a fused score; threshold "
             f"{metrics['threshold']}, missing layers: {metrics['missing']}, experiment: {metrics.get('experiment')}.",
             ""]
    if demo := demo_layers(metrics):
        lines += [DEMO_WARNING.format(layers=", ".join(demo)), ""]
    lines += protocol_lines(metrics.get("protocol"))
    lines += ["## Layers (each against its modality-true label), 95% grouped-bootstrap CI", "",
              "| layer | detector | weights | label | coverage | " + " | ".join(_COLS) + " |",
              "|---" * (5 + len(_COLS)) + "|"]
    for name, b in metrics["layers"].items():
        lines.append(f"| {name} | {b.get('detector')} | {b.get('weights')} | {b.get('label')} | "
                     f"{_fmt(b.get('coverage'))} | " + " | ".join(with_ci(b, c) for c in _COLS) + " |")
    lines += ["", "## Fusion (against `label`; tuned fusions are out-of-fold, grouped folds)", "",
              "| fusion | " + " | ".join(_COLS) + " | note |", "|---" * (len(_COLS) + 2) + "|"]
    for name, b in metrics["fused"].items():
        lines.append(f"| {name} | " + " | ".join(with_ci(b, c) for c in _COLS) + f" | {b.get('reason') or ''} |")
    c = metrics["cascade"]
    lines += ["", "## Fail-fast cascade", "",
              f"Stop after `{c.get('first')}` when P(fake) >= {c.get('fail_fast')}: trigger rate "
              f"{_fmt(c.get('trigger_rate'))}, AUC {with_ci(c, 'auc')}, ACC {with_ci(c, 'acc')}, "
              f"GPU time saved {_fmt(c.get('gpu_time_saved_frac'))}. {c.get('note') or ''}".rstrip(), ""]
    return "\n".join(lines) + _category_section(metrics) + _status_section(metrics)


def _category_section(metrics: Mapping[str, Any]) -> str:
    """Per category (FakeAVCeleb's A-D where the dataset has them): the share of videos called fake."""
    cats = metrics.get("per_category") or {}
    if not cats:
        return ""
    scores = sorted({k for c in cats.values() for k, v in c.items() if isinstance(v, Mapping)})
    lines = ["", f"## Per category: share called fake (P(fake) > {metrics['threshold']})", "",
             "| category | n | fake | " + " | ".join(scores) + " |", "|---" * (len(scores) + 3) + "|"]
    for name, c in sorted(cats.items()):
        cells = [_fmt((c.get(k) or {}).get("pred_fake_rate")) for k in scores]
        lines.append(f"| {name} | {c.get('n')} | {c.get('n_fake')} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _status_section(metrics: Mapping[str, Any]) -> str:
    lines = ["", "## Coverage and statuses", ""]
    for name, b in metrics["layers"].items():
        skipped = f"; {b['n_skipped']} units skipped (e.g. frames without a face)" if b.get("n_skipped") else ""
        cut = b.get("statuses", {}).get("partial")
        cut = f" ({cut} of them from files cut short: status partial)" if cut else ""
        lines.append(f"- {name}: {b.get('n_ok')} of {metrics['n_videos']} videos scored{cut} from {b.get('n_units')} "
                     f"units; {b.get('statuses')}{skipped}" + _input_note(b.get("input") or {}))
    return "\n".join(lines) + "\n"


def _input_note(made_by: Mapping[str, Any]) -> str:
    """Which face detector (and mean face) cut a face layer's crops; a stand-in mean face is said loudly."""
    if "face_detector" not in made_by:
        return ""
    note = f"; crops from {made_by['face_detector']}" + (f"+{made_by['landmarker']}" if "landmarker" in made_by else "")
    if made_by.get("face_weights") == "demo-random":
        note += (f" on **DEMO-RANDOM {made_by['face_detector']} weights** (its boxes are not faces: the crops "
                 "are arbitrary regions)")
    if made_by.get("mean_face") == "demo-stand-in":
        note += " with a **DEMO STAND-IN mean face** (not LipForensics' LRW mean face: crops differ from upstream)"
    return note


def console_summary(metrics: Mapping[str, Any]) -> list[str]:
    out = []
    for name, b in metrics["layers"].items():
        tag = "DEMO-RANDOM weights (scores mean nothing)" if b.get("weights") == "demo-random" else "real weights"
        out.append(f"  {name:9s} {b.get('detector'):20s} AUC {with_ci(b, 'auc'):22s} coverage "
                   f"{_fmt(b.get('coverage'))}  {tag}")
    seed = metrics["fused"].get("seed_weights", {})
    out.append(f"  fused     seed_weights         AUC {with_ci(seed, 'auc')}")
    c = metrics["cascade"]
    out.append(f"  cascade   trigger rate {_fmt(c.get('trigger_rate'))}, AUC {with_ci(c, 'auc')}, "
               f"GPU time saved {_fmt(c.get('gpu_time_saved_frac'))}")
    return out


def summary_row(metrics: Mapping[str, Any], run_id: str | None) -> dict[str, Any]:
    """One dataset's headline numbers for the cross-dataset summary."""
    row: dict[str, Any] = {"dataset": metrics["dataset"], "n_videos": metrics["n_videos"], "mlflow_run_id": run_id}
    for name, block in metrics["layers"].items():
        row[f"{name}_auc"] = block.get("auc")
        row[f"{name}_coverage"] = block.get("coverage")
        row[f"{name}_weights"] = block.get("weights")
    for name, block in metrics["fused"].items():
        row[f"fused_{name}_auc"] = block.get("auc")
    row["cascade_auc"] = metrics["cascade"].get("auc")
    row["cascade_trigger_rate"] = metrics["cascade"].get("trigger_rate")
    return row


def summary_columns(rows: list[Mapping[str, Any]]) -> list[str]:
    """dataset, n_videos, then every other column of any row in a stable (sorted) order."""
    rest = sorted({c for row in rows for c in row} - {"dataset", "n_videos", "mlflow_run_id"})
    return ["dataset", "n_videos", *rest]


def summary_markdown(rows: list[Mapping[str, Any]]) -> str:
    """The dataset x layer AUC table."""
    columns = summary_columns(rows)[1:]
    lines = ["# Tetrad: cross-dataset summary", "",
             "AUC per layer (against its modality-true label), per fusion and for the cascade; "
             "`*_weights` says whether a layer ran real or demo-random weights.", "",
             "| dataset | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    lines += ["| " + " | ".join([str(r["dataset"])] + [_fmt(r.get(c)) for c in columns]) + " |" for r in rows]
    return "\n".join(lines) + "\n"


# headline.json's short names of the fusions: `dvc metrics show` prints one column per number, so the file stays
# small enough for a terminal ("fused" is the seed-weight fusion, the one the verdicts come from)
HEADLINE_FUSIONS = {"seed_weights": "fused", "tuned_weights": "tuned", "logistic": "logistic"}


def score_paths(metrics: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """Every score of an evaluation under its short name, with where its block sits in metrics.json: the layers,
    the fusions (`fused` is the seed-weight fusion, the verdict's score) and the cascade."""
    paths = {name: ("layers", name) for name in metrics["layers"]}
    paths |= {HEADLINE_FUSIONS.get(n, n): ("fused", n) for n in metrics["fused"]}
    return paths | {"cascade": ("cascade",)}


def score_blocks(metrics: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """score_paths' blocks themselves."""
    blocks = {}
    for name, path in score_paths(metrics).items():
        block = metrics
        for key in path:
            block = block[key]
        blocks[name] = block
    return blocks


def headline(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The few numbers a terminal shows (`dvc metrics show`, `dvc exp show`): the AUC of every layer, fusion and
    the cascade, and the ACC of the fused verdict and the cascade at `threshold` (what a threshold sweep moves).
    metrics.json keeps everything else (intervals, AP, EER, counts)."""
    auc = {name: b.get("auc") for name, b in score_blocks(metrics).items()}
    acc = {"fused": metrics["fused"].get("seed_weights", {}).get("acc"), "cascade": metrics["cascade"].get("acc")}
    return {"threshold": metrics["threshold"], "auc": auc, "acc": acc}
