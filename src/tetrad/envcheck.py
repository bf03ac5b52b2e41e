"""`tetrad doctor --env`: can this machine run the configured pipeline? Python, torch and the CUDA devices, the
FFmpeg codecs PyAV brings, every checkpoint params.yaml needs (present and sha256-verified, as `tetrad weights
verify` checks them), then a smoke analysis of a generated clip through every layer, timed. Anything missing fails
the check (exit 1); a machine without a GPU passes with a warning (every layer then runs on the CPU)."""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tetrad.params import Params

MIN_PYTHON = (3, 10)
# Decoders every benchmark needs (H.264 video, AAC / PCM / FLAC audio) and others users' files often hold.
REQUIRED_DECODERS = ("h264", "aac", "pcm_s16le", "flac")
OPTIONAL_DECODERS = ("hevc", "vp9", "av1", "mpeg4", "mp3", "opus", "vorbis")
ENCODERS = ("libx264", "aac")  # the mini benchmark and the smoke clip are written with them


@dataclass(frozen=True)
class EnvCheck:
    name: str
    state: str  # ok | warn | FAIL | skipped
    detail: str

    @property
    def failed(self) -> bool:
        return self.state == "FAIL"


def env_checks(params: Params, smoke: bool = True) -> list[EnvCheck]:
    """Every check in order; the smoke analysis runs only when everything before it passed (it must not write a
    demo checkpoint in place of one found missing)."""
    checks = [python_check(), *torch_checks(params), engine_check(params), media_check(), *weights_checks(params)]
    if not smoke:
        return checks
    if any(c.failed for c in checks):
        return checks + [EnvCheck("smoke analysis", "skipped", "fix the failures above first")]
    return checks + [smoke_check(params)]


def python_check() -> EnvCheck:
    ok = sys.version_info[:2] >= MIN_PYTHON
    return EnvCheck("python", "ok" if ok else "FAIL", f"{sys.version.split()[0]} at {sys.executable}"
                    + ("" if ok else f" (needs >= {'.'.join(map(str, MIN_PYTHON))})"))


def torch_checks(params: Params) -> list[EnvCheck]:
    import torch

    build = f"torch {torch.__version__} (CUDA build {torch.version.cuda or 'none'}, cuDNN "
    build += f"{torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else 'none'})"
    out = [EnvCheck("torch", "ok", build)]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            free, total = torch.cuda.mem_get_info(i)
            out.append(EnvCheck(f"cuda:{i}", "ok", f"{torch.cuda.get_device_name(i)}, {total / 2**30:.1f} GiB "
                                                   f"({free / 2**30:.1f} GiB free)"))
        return out
    wants = [f"layer.{n}.device" for n, cfg in params.layer.items() if cfg.device.startswith("cuda")]
    wants += ["extract.face.device"] if params.extract.face.device.startswith("cuda") else []
    if wants:
        return out + [EnvCheck("cuda", "FAIL", f"no CUDA device, but {', '.join(wants)} ask for one")]
    return out + [EnvCheck("cuda", "warn", "no CUDA device: every layer and face detector runs on the CPU (slow)")]


def engine_check(params: Params) -> EnvCheck:
    """Where extract and detect would run: this machine, or the Ray cluster engine=ray names (joined briefly
    to count its nodes, CPUs and GPUs; a local one is only described, not started)."""
    engine = params.engine
    if engine.name == "local":
        return EnvCheck("engine", "ok", f"local: extract in {params.extract.workers} worker processes, detect "
                                        "in the stage's process")
    try:
        import ray
    except ImportError:
        return EnvCheck("engine", "FAIL", "engine=ray, but Ray is not installed (pip install 'ray[data]')")
    if engine.address == "local":
        cpus, gpus = (("all" if n is None else n) for n in (engine.num_cpus, engine.num_gpus))
        return EnvCheck("engine", "ok", f"ray {ray.__version__}: each stage starts a one-machine cluster on "
                                        f"{engine.host} ({cpus} CPUs, {gpus} GPUs)")
    return _ray_cluster_check(params)


def _ray_cluster_check(params: Params) -> EnvCheck:
    import ray

    from tetrad import cluster

    engine = params.engine
    try:
        with cluster.connected(engine):
            line, gpus = cluster.describe(), ray.cluster_resources().get("GPU", 0)
    except Exception as exc:  # noqa: BLE001 - whatever stops the connection is the finding
        return EnvCheck("engine", "FAIL", f"engine.address={engine.address}: cannot join the cluster "
                                          f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]})")
    if engine.actor_gpus > 0 and gpus == 0:
        return EnvCheck("engine", "FAIL", f"ray {line}; engine.actor_gpus={engine.actor_gpus:g}, but the cluster "
                                          "has no GPU (set engine.actor_gpus=0 to score on its CPUs)")
    return EnvCheck("engine", "ok", f"ray {ray.__version__}, {line}; {engine.actors} model actor(s) of "
                                    f"{engine.actor_gpus:g} GPU each")


def media_check() -> EnvCheck:
    import av

    def have(name: str, mode: str) -> bool:
        try:
            av.codec.Codec(name, mode)
            return True
        except ValueError:  # UnknownCodecError
            return False

    libs = ", ".join(f"{k} {'.'.join(map(str, av.library_versions[k]))}" for k in ("libavcodec", "libavformat"))
    missing = [c for c in REQUIRED_DECODERS if not have(c, "r")]
    absent = [c for c in OPTIONAL_DECODERS if not have(c, "r")] + [f"{c} (encoder)" for c in ENCODERS
                                                                    if not have(c, "w")]
    detail = (f"PyAV {av.__version__} ({libs}); decoders {', '.join(REQUIRED_DECODERS)}"
              f"{' MISSING: ' + ', '.join(missing) if missing else ' present'}; optional "
              f"{', '.join(c for c in OPTIONAL_DECODERS if have(c, 'r'))}"
              + (f"; absent: {', '.join(absent)}" if absent else ""))
    return EnvCheck("ffmpeg / PyAV", "FAIL" if missing else ("warn" if absent else "ok"), detail)


def weights_checks(params: Params) -> list[EnvCheck]:
    """`tetrad weights verify` for what params.yaml needs; a demo-random stand-in passes (with a warning) only
    when the params allow demo weights."""
    from tetrad.weights.catalog import entries
    from tetrad.weights.cli import needed_weights, verify_checks

    checks = verify_checks(Path(params.weights.dir), entries(), needed_weights(params), params.weights.allow_demo)
    out = []
    for c in (c for c in checks if c.needed_by):
        state = "FAIL" if not c.ok else ("warn" if c.status == "demo-random" else "ok")
        out.append(EnvCheck(f"weights {c.name}", state, f"{c.status}: {c.message} (for {', '.join(c.needed_by)})"))
    return out


def smoke_check(params: Params) -> EnvCheck:
    """A 2-s generated clip with a face through every layer, cascade off: each layer must give a score."""
    from tetrad.analyze.run import AnalyzeOptions, analyze
    from tetrad.mini import write_smoke_clip

    with tempfile.TemporaryDirectory(prefix="tetrad-doctor-") as tmp:
        clip = write_smoke_clip(Path(tmp) / "smoke.mp4")
        start = time.perf_counter()
        try:
            analysis = analyze([clip], params, AnalyzeOptions(cascade=False))
        except Exception as exc:  # noqa: BLE001 - the doctor reports any failure as one line
            return EnvCheck("smoke analysis", "FAIL", f"{type(exc).__name__}: {exc}")
        took = time.perf_counter() - start
    row = analysis.videos.iloc[0]
    said = [f"{n} {row[f'{n}_p_fake']:.3f}" if row[f"{n}_status"] == "ok" else f"{n} {row[f'{n}_status']}: "
            f"{row[f'{n}_error']}" for n in analysis.layers]
    bad = [n for n in analysis.layers if row[f"{n}_status"] != "ok"]
    return EnvCheck("smoke analysis", "FAIL" if bad else "ok",
                    f"2-s 320x320 generated clip, every layer, {took:.1f} s (models loaded included): {'; '.join(said)}")


def render(checks: list[EnvCheck]) -> str:
    from tabulate import tabulate

    failed = [c.name for c in checks if c.failed]
    table = tabulate([[c.state, c.name, c.detail] for c in checks], headers=["", "check", "detail"],
                     maxcolwidths=[None, None, 100])
    verdict = f"{len(failed)} check{'s' * (len(failed) != 1)} FAIL: {', '.join(failed)}" if failed else "all checks pass"
    return table + "\n" + verdict


def as_json(checks: list[EnvCheck]) -> list[dict[str, Any]]:
    return [asdict(c) for c in checks]
