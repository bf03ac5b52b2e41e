"""`tetrad analyze` on the mini benchmark's clips and faulty files, with tiny demo-random models: the cascade
really skips (counted model loads, decodes and forwards), the JSON schema, bad input, exit codes. Its equality
with the batch pipeline's scores is checked in tests/test_pipeline.py, on the pipeline's own run."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, replace
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from tetrad import cli
from tetrad.analyze import run as analyze_run
from tetrad.analyze.result import LAYER_KEYS, console_table, results
from tetrad.analyze.run import AnalyzeOptions, analyze
from tetrad.params import load_params
from tetrad.stages import detect

ROOT = Path(__file__).resolve().parents[1]
LAYER_FIELDS = {"layer", "detector", "status", "error", "p_fake", "logit", "reduce", "unit", "n_units", "n_skipped",
                "compute_s", "units", "weights", "input", "device"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """params.yaml (the demo experiment) with tiny models and demo weights in a folder of the test's own, and
    the mouths capped at 30 frames (CPU time)."""
    params = load_params(ROOT / "params.yaml")
    weights = replace(params.weights, dir=str(tmp_path_factory.mktemp("weights")), allow_demo=True)
    layer = {n: replace(cfg, variant="tiny", device="cpu") for n, cfg in params.layer.items()}
    extract = replace(params.extract, mouths=replace(params.extract.mouths, max_frames=30), workers=1)
    return replace(params, weights=weights, layer=layer, extract=extract)


@pytest.fixture(scope="module")
def cascade(tiny, mini_root):
    """Three files with a cascade that stops on any audio score (fail_fast 0): two clips with audio stop after
    the audio layer; the file without audio cannot stop and goes through the other layers. Model loads,
    extract passes and forward batches are counted."""
    params = replace(tiny, aggregate=replace(tiny.aggregate, fail_fast=0.0))
    files = [mini_root / "clips/s0_A.mp4", mini_root / "clips/s1_B.mp4", mini_root / "faulty/no_audio.mp4"]
    calls = {"load": [], "extract": [], "forward": []}
    load, extract, score = analyze_run.load_layer, analyze_run.extract, detect.score_batch

    def spy_load(p, name):
        calls["load"].append(name)
        return load(p, name)

    def spy_extract(manifest, kinds, *args, **kwargs):
        calls["extract"].append((sorted(manifest["video_id"]), list(kinds)))
        return extract(manifest, kinds, *args, **kwargs)

    def spy_score(name, engine, batch):
        calls["forward"].append((name, sorted({u.video_id for u in batch.units})))
        return score(name, engine, batch)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(analyze_run, "load_layer", spy_load)
        mp.setattr(analyze_run, "extract", spy_extract)
        mp.setattr(detect, "score_batch", spy_score)
        analysis = analyze(files, params, AnalyzeOptions())
    return analysis, results(analysis), calls, [str(f) for f in files]


def test_the_cascade_skips_decoding_and_models_for_files_it_stops(cascade):
    analysis, found, calls, (a, b, no_audio) = cascade
    assert analysis.stopped == {a, b}
    assert calls["extract"] == [(sorted([a, b, no_audio]), ["audio"]), ([no_audio], ["frames", "faces", "mouths"])]
    assert calls["load"] == ["audio", "visual", "lip", "semantic", "sync"]  # each model once for the whole list
    forwarded = {}
    for name, vids in calls["forward"]:
        forwarded.setdefault(name, set()).update(vids)
    assert forwarded["aasist"] == {a, b}  # no_audio has no audio unit
    for name in ("sbi_effb4", "lipforensics_rn18_mstcn", "ufd_clip_vitl14"):
        assert forwarded[name] == {no_audio}, name  # the stopped clips never reach the other models
    assert "syncnet_v2" not in forwarded  # and the file without sound has nothing to sync
    by_file = {r["file"]: r for r in found}
    for vid in (a, b):
        r = by_file[vid]
        assert r["layers_executed"] == ["audio"] and r["cascade"]["fired"]
        assert r["cascade"]["skipped"] == ["visual", "lip", "semantic", "sync"]
        assert r["p_fake"] == r["layer_results"]["1_audio"]["p_fake"]  # the cascade's score: the first layer's
        assert set(r["processing_time"]["decode_s"]) == {"audio"} and set(r["processing_time"]["layers_s"]) == {"audio"}
        for key in ("2_visual", "3_lipsync", "4_semantic", "5_sync"):
            assert r["layer_results"][key]["status"] == "not_run"
            assert r["layer_results"][key]["reason"].startswith("cascade: audio P(fake)")
    r = by_file[no_audio]
    assert not r["cascade"]["fired"] and r["layers_executed"] == ["audio", "visual", "lip", "semantic", "sync"]
    assert r["layer_results"]["1_audio"]["status"] == "no_audio"
    assert set(r["processing_time"]["decode_s"]) == {"audio", "frames+faces+mouths"}


def test_the_json_has_the_original_schema_and_provenance(cascade):
    _, found, _, _ = cascade
    for r in found:
        assert {"final_verdict", "confidence", "layers_executed", "layer_results", "reasoning",
                "processing_time"} <= set(r)
        assert list(r["layer_results"]) == ["1_audio", "2_visual", "3_lipsync", "4_semantic", "5_sync"]
        assert r["fusion"]["rule"] == "seed_weights" and r["cascade"]["threshold"] == 0.0
        assert r["tetrad"]["version"] == "0.1.0" and r["tetrad"]["git_sha"]
        json.dumps(r, allow_nan=False)  # plain JSON: no NaN
        for name in r["layers_executed"]:
            block = r["layer_results"][LAYER_KEYS[name]]
            assert LAYER_FIELDS <= set(block), name
            assert block["weights"]["provenance"] == "demo-random" and name in r["demo_random"]
            if block["status"] == "ok":
                scored = [u for u in block["units"] if u["p_fake"] is not None]
                assert len(scored) == block["n_units"] > 0
                assert all(set(u) >= {"idx", "frame_idx", "t_start_s", "t_end_s", "p_fake", "logit"} for u in scored)
        if r["final_verdict"] is not None:
            p = r["p_fake"]
            assert r["final_verdict"] == ("fake" if p > 0.5 else "real")
            assert r["confidence"] == pytest.approx(p if r["final_verdict"] == "fake" else 1 - p)


def test_the_reasoning_is_made_of_the_numbers(cascade):
    _, found, _, (a, _, no_audio) = cascade
    by_file = {r["file"]: r for r in found}
    stopped = by_file[a]
    audio = stopped["layer_results"]["1_audio"]
    assert f"P(fake) {audio['p_fake']:.3f} from {audio['n_units']} windows" in stopped["reasoning"]
    assert "cascade stopped: visual, lip, semantic, sync not decoded or run" in stopped["reasoning"]
    full = by_file[no_audio]
    assert "audio gave no score, so the cascade could not stop early" in full["reasoning"]
    assert f"Fused P(fake) {full['p_fake']:.3f}" in full["reasoning"]
    assert "renormalised" in full["reasoning"]  # audio and sync abstain: the other weights are renormalised
    table = console_table(found)
    assert len(table.splitlines()) == 2 + len(found) and "skipped" in table


def test_the_sync_layer_reports_upstreams_offset_and_its_windows(tiny, mini_root):
    """Its block carries upstream's AV offset, min distance and confidence (the video rule's own outputs), its
    reasoning says them, and each 0.2-s window is a unit with its times."""
    clip = mini_root / "shifted/s1_audio_late5.mp4"
    analysis = analyze([clip], tiny, AnalyzeOptions(layers=("sync",), cascade=False))
    (r,) = results(analysis)
    block = r["layer_results"]["5_sync"]
    rule = block["video_rule"]
    assert block["status"] == "ok" and block["unit"] == "windows" and set(rule) == {"av_offset", "av_min_dist",
                                                                                  "av_conf"}
    assert -15 <= rule["av_offset"] <= 15 and rule["av_conf"] >= 0
    assert f"AV offset {int(rule['av_offset']):+d} frames" in r["reasoning"]
    assert block["n_units"] == 30 - 5 and block["units"][1]["t_start_s"] == pytest.approx(0.04)
    assert block["units"][1]["t_end_s"] == pytest.approx(0.24)


@pytest.fixture(scope="module")
def faulty_cli(tiny, mini_root, tmp_path_factory):
    """`tetrad analyze` on the faulty folder and a garbage file named explicitly, cascade off, JSON Lines."""
    tmp = tmp_path_factory.mktemp("cli")
    params_file = tmp / "params.yaml"
    OmegaConf.save(OmegaConf.create(asdict(tiny)), params_file)
    garbage = tmp / "garbage.mp4"
    garbage.write_bytes(b"\x00not a video" * 300)
    out = tmp / "out.jsonl"
    code = cli.main(["analyze", str(mini_root / "faulty"), str(garbage), "--no-cascade", "--params",
                     str(params_file), "--json", str(out)])
    return code, {Path(r["file"]).name: r for r in map(json.loads, out.read_text().splitlines())}


def test_bad_input_gets_statuses_and_one_line_errors(faulty_cli):
    code, by_name = faulty_cli
    assert code == 1  # some files could not be analysed
    assert set(by_name) == {"no_audio.mp4", "no_face.mp4", "short.mp4", "truncated.mp4", "garbage.mp4"}
    r = by_name["garbage.mp4"]  # nothing usable: every layer fails, no verdict
    assert r["final_verdict"] is None and r["status"] == "decode_error" and "\n" not in r["error"]
    assert all(r["layer_results"][LAYER_KEYS[n]]["status"] == "decode_error" for n in r["layers_executed"])
    assert "garbage.mp4" in r["error"]  # the message names the file
    r = by_name["truncated.mp4"]  # cut short: a verdict on what decoded, saying so
    assert r["final_verdict"] in ("fake", "real") and r["status"] == "partial" and "cut short" in r["error"]
    assert all(r["layer_results"][LAYER_KEYS[n]]["status"] == "partial" for n in r["layers_executed"])
    assert "from what decoded of a file cut short" in r["reasoning"]
    assert by_name["no_audio.mp4"]["layer_results"]["1_audio"]["status"] == "no_audio"
    assert by_name["no_face.mp4"]["layer_results"]["3_lipsync"]["status"] == "no_face"
    assert by_name["short.mp4"]["layer_results"]["3_lipsync"]["status"] == "too_short"
    for name in ("no_audio.mp4", "no_face.mp4", "short.mp4"):
        assert by_name[name]["final_verdict"] in ("fake", "real"), name  # the layers that scored decide


def test_usage_errors_exit_2(tmp_path, capsys):
    assert cli.main(["analyze", str(tmp_path / "nowhere.mp4")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    (tmp_path / "notes.txt").write_text("not media")
    assert cli.main(["analyze", str(tmp_path)]) == 2
    assert "no audio or video file" in capsys.readouterr().err
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"x")
    assert cli.main(["analyze", str(clip), "--layers", "audio,bogus"]) == 2
    assert "['bogus'] not enabled" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert cli.main(["analyze", str(clip), "--device", "cuda"]) == 2
        assert "--device cuda: this machine has 0 CUDA devices" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        cli.main(["analyze"])
    assert exc.value.code == 2


def test_folders_are_searched_by_content(tmp_path, mini_root, caplog):
    from tetrad.analyze.inputs import find_media

    (tmp_path / "deep/er").mkdir(parents=True)
    clip = tmp_path / "deep/er/clip.bin"  # a video without a video extension
    clip.write_bytes((mini_root / "clips/s0_A.mp4").read_bytes())
    (tmp_path / "deep/fake.mp4").write_bytes(b"just text")  # a media extension, no media
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "dangling.mp4").symlink_to(tmp_path / "gone.mp4")
    (tmp_path / "loop.mp4").symlink_to(tmp_path / "loop.mp4")
    with caplog.at_level(logging.WARNING, logger="tetrad.analyze.inputs"):
        assert find_media([tmp_path]) == [clip]
    assert sorted(r.getMessage().split(": ", 1)[1] for r in caplog.records) == [
        f"skipped: dangling symbolic link (its target {tmp_path / 'gone.mp4'} does not exist)",
        "skipped: symbolic link loop"]
    assert find_media([tmp_path / "deep/fake.mp4"]) == [tmp_path / "deep/fake.mp4"]  # named: gets its entry
