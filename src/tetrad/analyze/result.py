"""One JSON object per analysed file, in the original plan's schema (`final_verdict`, `confidence`,
`layers_executed`, `layer_results` keyed `1_audio` .. `4_semantic`, and `5_sync` for the fifth layer,
`reasoning`, `processing_time`) plus what a reader needs to trust it: per-layer units, statuses, detector and
weights provenance, the fusion rule and the cascade; and the console table. `reasoning` is written from the
numbers, never from canned phrases."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
from tabulate import tabulate

from tetrad.aggregate.evaluate import jsonable
from tetrad.aggregate.reduce import REDUCED_COLUMNS
from tetrad.analyze.run import Analysis, LayerRun
from tetrad.schemas import LAYERS, OK, PARTIAL, scored

LAYER_KEYS = {"audio": "1_audio", "visual": "2_visual", "lip": "3_lipsync", "semantic": "4_semantic",
              "sync": "5_sync"}
UNIT_NAMES = {"audio": "windows", "frames": "frames", "faces": "faces", "mouths": "clips"}  # by input kind
RULE_UNITS = {"av_offset": "windows"}  # where the video rule says otherwise (SyncNet reads mouths, cuts windows)
NOT_RUN = "not_run"


def results(analysis: Analysis) -> list[dict[str, Any]]:
    """One result per file, in the order the files were given."""
    about = {"version": _version(), "git_sha": _git_sha(), "experiment": analysis.params.experiment,
             "protocol": analysis.params.protocol}
    layers = {name: _LayerView(run) for name, run in analysis.layers.items()}
    paths = dict(zip(analysis.manifest["video_id"], analysis.manifest["path"]))
    return [jsonable(_file_result(analysis, layers, row, paths[row["video_id"]], about))
            for row in analysis.videos.to_dict("records")]


class _LayerView:
    """A layer's tables indexed by file, built once for the whole list."""

    def __init__(self, run: LayerRun) -> None:
        self.info = run.info
        self.reduced = run.reduced.set_index("video_id")
        self.units = {str(v): rows for v, rows in run.scores.groupby("video_id")}

    def ran_on(self, vid: str) -> bool:
        return vid in self.reduced.index


def _file_result(analysis: Analysis, layers: dict[str, _LayerView], row: dict, path: str,
                 about: dict) -> dict[str, Any]:
    vid, agg = row["video_id"], analysis.params.aggregate
    blocks = {name: _layer_block(layers[name], vid) if name in layers and layers[name].ran_on(vid)
              else _not_run(name, analysis, row) for name in LAYERS}
    executed = [n for n in LAYERS if blocks[n]["status"] != NOT_RUN]
    final = row["final"]
    verdict = row["verdict"]
    status, error = _file_status(blocks, executed) if verdict is not None else _first_failure(blocks, executed)
    out = {
        "file": vid, "path": path,
        "final_verdict": verdict, "p_fake": final,
        "confidence": None if verdict is None else (final if verdict == "fake" else 1.0 - final),
        "status": status, "error": error,
        "layers_executed": executed,
        "layer_results": {LAYER_KEYS[n]: blocks[n] for n in LAYERS},
        "fusion": {"rule": "seed_weights", "missing": agg.missing, "threshold": agg.threshold,
                   "weights": {n: agg.seed_weights[n] for n in executed}, "p_fake": row["fused"]},
        "cascade": _cascade_block(analysis, vid, executed),
        "processing_time": _times(analysis, vid, blocks, executed),
        "demo_random": [n for n in executed if _demo(blocks[n])],
        "tetrad": about,
    }
    out["reasoning"] = reasoning(out)
    return out


def _layer_block(view: _LayerView, vid: str) -> dict[str, Any]:
    info, red = view.info, view.reduced.loc[vid]
    units = view.units.get(vid, pd.DataFrame(columns=["unit_idx"]))
    listed = units[units["unit_idx"] >= 0].sort_values("unit_idx")
    return {
        "layer": info["layer"], "detector": info["detector"], "status": red["status"], "error": red["error"],
        "p_fake": red["p_fake"], "logit": red["logit"], "reduce": info["reduce"],
        "unit": RULE_UNITS.get(info["reduce"], UNIT_NAMES.get(info["input"]["kind"], "units")),
        "n_units": int(red["n_units"]), "n_skipped": int(red["n_skipped"]), "compute_s": red["compute_s"],
        "video_rule": {c: red[c] for c in red.index if c not in REDUCED_COLUMNS},  # e.g. SyncNet's AV offset
        "units": [_unit(u) for u in listed.to_dict("records")],
        "weights": {"provenance": info["weights"], "sha256": info["weights_sha256"],
                    "sources": info["weights_sources"]},
        "input": info["input"], "device": info["device"],
    }


def _unit(u: dict) -> dict[str, Any]:
    out = {"idx": int(u["unit_idx"]), "frame_idx": None if pd.isna(u["frame_idx"]) else int(u["frame_idx"]),
           "t_start_s": u["t_start_s"], "t_end_s": u["t_end_s"], "p_fake": u["p_fake"], "logit": u["logit"]}
    if isinstance(u["error"], str) and u["status"] != PARTIAL:
        out["skipped"] = u["error"]  # e.g. an SBI frame without a face: counted, not scored
    return out


def _not_run(name: str, analysis: Analysis, row: dict) -> dict[str, Any]:
    if name in analysis.params.layer and row["video_id"] in analysis.stopped:
        p, first = row[f"{analysis.first}_p_fake"], analysis.first
        why = (f"cascade: {first} P(fake) {p:.3f} >= fail-fast threshold {analysis.params.aggregate.fail_fast:g}")
    else:
        why = "not among this run's layers (--layers, or not enabled in the params)"
    return {"layer": name, "status": NOT_RUN, "reason": why}


def _file_status(blocks: dict[str, dict], executed: list[str]) -> tuple[str, str | None]:
    """A verdict from a file cut short is `partial`, with the first cut layer's error saying how much was lost."""
    cut = [n for n in executed if blocks[n]["status"] == PARTIAL]
    return (PARTIAL, f"{cut[0]}: {blocks[cut[0]]['error']}") if cut else (OK, None)


def _first_failure(blocks: dict[str, dict], executed: list[str]) -> tuple[str, str]:
    for name in executed:
        if not scored(blocks[name]["status"]):
            return blocks[name]["status"], f"{name}: {blocks[name]['error']}"
    return "error", "no layer gave a score"


def _cascade_block(analysis: Analysis, vid: str, executed: list[str]) -> dict[str, Any]:
    agg = analysis.params.aggregate
    skipped = [n for n in analysis.params.layer_names if n not in executed]
    return {"enabled": analysis.first is not None, "first": analysis.first, "threshold": agg.fail_fast,
            "fired": vid in analysis.stopped, "skipped": skipped if vid in analysis.stopped else []}


def _times(analysis: Analysis, vid: str, blocks: dict[str, dict], executed: list[str]) -> dict[str, Any]:
    """This file's own time: its decode passes (in a worker) and its share of each model's batches. Loading the
    models is shared by the whole list (`load_s` per layer, once per run)."""
    decode = analysis.decode_s.get(vid, {})
    layers = {n: blocks[n]["compute_s"] or 0.0 for n in executed}
    return {"total_s": sum(decode.values()) + sum(layers.values()), "decode_s": decode, "layers_s": layers,
            "load_s": {n: r.info["timing"]["load_s"] for n, r in analysis.layers.items()},
            "run_wall_s": analysis.wall_s, "run_files": len(analysis.manifest)}


def _demo(block: dict[str, Any]) -> bool:
    return block["weights"]["provenance"] == "demo-random" or block["input"].get("face_weights") == "demo-random"


# ------------------------------------------------------------------------------------------------ reasoning


def reasoning(result: dict[str, Any]) -> str:
    """What each layer that ran said, why the cascade stopped or not, and how the verdict follows."""
    blocks = result["layer_results"]
    said = [_layer_sentence(blocks[LAYER_KEYS[n]]) for n in result["layers_executed"]]
    return " ".join(s for s in [*said, _cascade_sentence(result), _verdict_sentence(result)] if s)


def _layer_sentence(b: dict[str, Any]) -> str:
    demo = ", DEMO-RANDOM weights" if _demo(b) else ""
    head = f"{b['layer']} ({b['detector']}{demo})"
    if not scored(b["status"]):
        return f"{head}: no score ({b['status']}: {b['error']})."
    skipped = f", {b['n_skipped']} skipped" if b["n_skipped"] else ""
    text = f"{head}: P(fake) {b['p_fake']:.3f} from {b['n_units']} {b['unit']}{skipped}"
    rated = [u for u in b["units"] if u["p_fake"] is not None]
    if len(rated) > 1:
        top = max(rated, key=lambda u: u["p_fake"])
        low = min(u["p_fake"] for u in rated)
        text += f" (range {low:.3f}-{top['p_fake']:.3f}, highest {_where(top)})"
    if "av_offset" in b["video_rule"]:
        rule = b["video_rule"]
        text += (f"; AV offset {int(rule['av_offset']):+d} frames ({40 * int(rule['av_offset']):+d} ms), min dist "
                 f"{rule['av_min_dist']:.3f}, confidence {rule['av_conf']:.3f}")
    if b["status"] == PARTIAL:
        text += f", from what decoded of a file cut short ({b['error']})"
    return text + "."


def _where(unit: dict[str, Any]) -> str:
    if unit["frame_idx"] is not None and unit["t_end_s"] is not None and unit["t_end_s"] > unit["t_start_s"]:
        return f"frames from {unit['frame_idx']}, {unit['t_start_s']:.2f}-{unit['t_end_s']:.2f} s"
    if unit["frame_idx"] is not None:
        return f"at frame {unit['frame_idx']}"
    return f"at {unit['t_start_s']:.2f}-{unit['t_end_s']:.2f} s"


def _cascade_sentence(result: dict[str, Any]) -> str:
    c = result["cascade"]
    if not c["enabled"]:
        return "Cascade off: every layer of the run ran." if len(result["layers_executed"]) > 1 else ""
    first = result["layer_results"][LAYER_KEYS[c["first"]]]
    if c["fired"]:
        return (f"{c['first']} P(fake) {first['p_fake']:.3f} >= the fail-fast threshold {c['threshold']:g}, so the "
                f"cascade stopped: {', '.join(c['skipped']) or 'no other layer'} not decoded or run.")
    if not scored(first["status"]):
        return f"{c['first']} gave no score, so the cascade could not stop early."
    return f"{c['first']} P(fake) {first['p_fake']:.3f} < the fail-fast threshold {c['threshold']:g}: the other layers ran."


def _verdict_sentence(result: dict[str, Any]) -> str:
    p, verdict, fusion = result["p_fake"], result["final_verdict"], result["fusion"]
    if verdict is None:
        return "No layer gave a score: no verdict."
    if result["cascade"]["fired"]:
        source = f"Final P(fake) {p:.3f} is {result['cascade']['first']}'s alone"
    else:
        used = {n: w for n, w in fusion["weights"].items()
                if scored(result["layer_results"][LAYER_KEYS[n]]["status"])}
        weights = ", ".join(f"{n} {w:g}" for n, w in used.items())
        source = (f"Fused P(fake) {p:.3f}: seed weights ({weights}) over the {len(used)} "
                  f"layer{'s' * (len(used) != 1)} that scored")
        source += ", renormalised" if fusion["missing"] == "abstain" and len(used) < len(LAYERS) else ""
    relation = ">" if verdict == "fake" else "<="
    return f"{source}; {p:.3f} {relation} threshold {fusion['threshold']:g}, verdict {verdict}."


# ------------------------------------------------------------------------------------------------ console


def console_table(found: list[dict[str, Any]]) -> str:
    """One line per file: verdict, confidence, each layer's P(fake) (or why not), layers run, its time."""
    rows = []
    for r in found:
        cells = [_cell(r["layer_results"][LAYER_KEYS[n]]) for n in LAYERS]
        conf = "" if r["confidence"] is None else f"{r['confidence']:.3f}"
        rows.append([r["file"], r["final_verdict"] or r["status"], conf, *cells, len(r["layers_executed"]),
                     f"{r['processing_time']['total_s']:.1f}"])
    return tabulate(rows, headers=["file", "verdict", "confidence", *LAYERS, "layers", "time_s"],
                    disable_numparse=True)


def _cell(block: dict[str, Any]) -> str:
    if block["status"] == NOT_RUN:
        return "skipped" if block["reason"].startswith("cascade") else "-"
    if not scored(block["status"]):
        return block["status"]
    cut = " (partial)" if block["status"] == PARTIAL else ""
    return f"{block['p_fake']:.3f}" + ("*" if _demo(block) else "") + cut


def demo_note(found: list[dict[str, Any]]) -> str | None:
    """The console's flag for demo-random weights (marked * in the table)."""
    demo = sorted({n for r in found for n in r["demo_random"]})
    if not demo:
        return None
    return (f"* DEMO-RANDOM weights (model or face detector) in layers {', '.join(demo)}: their scores mean nothing "
            "(real weights: `tetrad weights import DIR` or `tetrad weights fetch`)")


def _version() -> str:
    try:
        return metadata.version("tetrad")
    except metadata.PackageNotFoundError:
        return "unknown"


def _git_sha() -> str:
    """The sha of the checkout this package runs from ("unknown" for an installed copy outside git)."""
    from tetrad.tracking import git_sha

    root = Path(__file__).resolve().parents[3]
    return git_sha(root) if (root / ".git").exists() else "unknown"
