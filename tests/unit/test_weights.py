"""Weights manager: registry, verification with sidecar cache, resolve, fetch (file:// URLs), import, CLI."""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import types
from pathlib import Path

import pytest

from tetrad import weights as w
from tetrad.weights import store

OLD_NS = 1_600_000_000 * 10**9  # a settled mtime (2020), far from "just written"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write(path: Path, data: bytes, settle: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if settle:
        os.utime(path, ns=(OLD_NS, OLD_NS))
    return path


def _shared_upstream() -> Path | None:
    candidates = [Path(__file__).resolve().parents[3] / "shared" / "upstream-data"]
    if os.environ.get("TETRAD_SHARED"):
        candidates.append(Path(os.environ["TETRAD_SHARED"]) / "upstream-data")
    return next((p for p in candidates if p.is_dir()), None)


PAYLOAD = b"tetrad test checkpoint\x00\x01\x02" * 100
OTHER = b"some other file of a different size"
ALL_PRESENT = {"pinned": "verified", "unpinned": "present-unpinned", "by_hand": "missing", "hf": "present-unpinned"}


@pytest.fixture()
def src(tmp_path: Path) -> Path:
    """An upstream folder served through file:// URLs."""
    return _write(tmp_path / "upstream" / "model.pth", PAYLOAD).parent


@pytest.fixture()
def registry(src: Path) -> dict[str, w.WeightEntry]:
    entries = [
        w.WeightEntry(
            name="pinned", layer="audio", filename="model.pth", url=(src / "model.pth").as_uri(),
            sha256=_sha(PAYLOAD), size=len(PAYLOAD), licence="MIT", source="test@0:model.pth",
            aliases=("pinned_model.pth",),
        ),
        w.WeightEntry(
            name="unpinned", layer="visual", filename="free.bin", url=(src / "free.bin").as_uri(),
            licence="MIT", source="test", aliases=("other_free.bin",),
        ),
        w.WeightEntry(
            name="by_hand", layer="lip", filename="hand.pth", licence="research-only", source="a drive",
            manual="Download hand.pth from Google Drive id XYZ and run `tetrad weights import DIR`.",
        ),
        w.WeightEntry(
            name="hf", layer="audio", filename="hf-model", kind="hf_dir", url="someone/hf-model",
            licence="apache-2.0", source="hf", aliases=("hf_alias",), hf_files=("config.json", "model.safetensors"),
        ),
    ]
    return {e.name: e for e in entries}


# ------------------------------------------------------------------------------------------------ registry


def test_registry_facts() -> None:
    reg = w.entries()
    assert set(reg) == {
        "ufd_fc", "clip_vitl14", "w2v2_deepfake_v2", "aasist", "aasist_l", "lipforensics_ff",
        "lipforensics_mean_face", "sbi_ffc23", "sbi_ffraw", "retinaface_resnet50", "syncnet_v2",
    }
    assert reg["ufd_fc"].sha256 == "477100745713bcc957beb2b40859536859b6483fd6301b3b9293151b194c7847"
    assert reg["ufd_fc"].size == 4083 and "ufd_fc_weights.pth" in reg["ufd_fc"].aliases
    clip = reg["clip_vitl14"]
    assert clip.url is not None and clip.sha256 is not None and f"/{clip.sha256}/" in clip.url
    assert reg["aasist"].size == 1281532 and reg["aasist_l"].size == 426428
    hf = reg["w2v2_deepfake_v2"]
    assert hf.kind == "hf_dir" and hf.url == "MelodyMachine/Deepfake-audio-detection-V2"
    for name in ("lipforensics_ff", "sbi_ffc23", "sbi_ffraw"):
        assert not reg[name].automatic and "drive.google.com" in str(reg[name].manual)
    assert "1wfZnxZpyNd5ouJs0LjVls7zU0N_W73L7" in str(reg["lipforensics_ff"].manual)
    for e in reg.values():
        if e.url and "raw.githubusercontent.com" in e.url:
            commit = e.url.split("/")[5]
            assert len(commit) == 40, e.url  # pinned at a full commit


def test_entry_validation() -> None:
    with pytest.raises(ValueError):
        w.WeightEntry(name="x", layer="nope", filename="f", url="u")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        w.WeightEntry(name="x", layer="audio", filename="f", kind="hf_dir", url="a/b")
    with pytest.raises(ValueError):
        w.WeightEntry(name="x", layer="audio", filename="f")


def test_path_for(tmp_path: Path) -> None:
    e = w.get_entry("aasist")
    assert w.path_for(e, tmp_path) == tmp_path / "audio" / "AASIST.pth"
    assert w.path_for(e, tmp_path, demo=True) == tmp_path / "audio" / "demo-random" / "AASIST.pth"


# ------------------------------------------------------------------------------------------------ verify


def test_verify_statuses(tmp_path: Path, registry: dict[str, w.WeightEntry]) -> None:
    wd = tmp_path / "weights"
    assert w.verify_entry(registry["pinned"], wd).status == "missing"
    _write(w.path_for(registry["pinned"], wd), PAYLOAD)
    assert w.verify_entry(registry["pinned"], wd).status == "verified"
    _write(w.path_for(registry["unpinned"], wd), OTHER)
    ver = w.verify_entry(registry["unpinned"], wd)
    assert ver.status == "present-unpinned" and ver.sha256 == _sha(OTHER) and _sha(OTHER) in ver.message
    hf = w.path_for(registry["hf"], wd)
    _write(hf / "config.json", b"{}")
    ver = w.verify_entry(registry["hf"], wd)
    assert ver.status == "incomplete" and "model.safetensors" in ver.message
    _write(hf / "model.safetensors", b"weights")
    assert w.verify_entry(registry["hf"], wd).status == "present-unpinned"
    statuses = {v.name: v.status for v in w.list_status(wd, registry)}
    assert statuses == ALL_PRESENT


@pytest.mark.parametrize("corrupt", ["one_byte", "truncated"])
def test_corrupt_file_fails_verify_and_resolve(
    tmp_path: Path, registry: dict[str, w.WeightEntry], corrupt: str
) -> None:
    entry, wd = registry["pinned"], tmp_path / "weights"
    path = _write(w.path_for(entry, wd), PAYLOAD)
    assert w.verify_entry(entry, wd).status == "verified"  # sidecar now cached
    data = bytearray(PAYLOAD)
    if corrupt == "one_byte":
        data[100] ^= 0x01
    else:
        data = data[: len(data) // 2]
    _write(path, bytes(data), settle=False)  # a fresh mtime, as any real rewrite gets
    ver = w.verify_entry(entry, wd)
    assert ver.status == "mismatch"
    for needle in (str(path), entry.sha256, _sha(bytes(data))):
        assert needle in ver.message
    _write(w.path_for(entry, wd, demo=True), b"demo")
    with pytest.raises(w.WeightsError) as info:
        w.resolve("pinned", wd, allow_demo=True, registry=registry)  # never a silent fallback to the demo
    assert not isinstance(info.value, w.WeightsNotFound)
    for needle in (str(path), str(entry.sha256), _sha(bytes(data))):
        assert needle in str(info.value)


def test_sidecar_cache_hashes_once(
    tmp_path: Path, registry: dict[str, w.WeightEntry], monkeypatch: pytest.MonkeyPatch
) -> None:
    entry, wd = registry["pinned"], tmp_path / "weights"
    path = _write(w.path_for(entry, wd), PAYLOAD)
    calls: list[Path] = []
    real = store.file_sha256

    def counting(p: Path) -> str:
        calls.append(Path(p))
        return real(p)

    monkeypatch.setattr(store, "file_sha256", counting)
    for _ in range(3):
        assert w.verify_entry(entry, wd).status == "verified"
    assert len(calls) == 1
    assert (path.parent / "model.pth.sha256.json").is_file()
    os.utime(path, ns=(OLD_NS, OLD_NS + 10**9))  # size same, mtime changed: hash again
    assert w.verify_entry(entry, wd).status == "verified"
    assert len(calls) == 2


def test_sidecar_not_trusted_for_a_file_just_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path / "f.bin", PAYLOAD, settle=False)
    assert w.cached_sha256(path) == _sha(PAYLOAD)
    assert not (tmp_path / "f.bin.sha256.json").exists()  # same clock tick as a rewrite could be: no cache yet


# ------------------------------------------------------------------------------------------------ resolve


def test_resolve_real_demo_and_not_found(tmp_path: Path, registry: dict[str, w.WeightEntry]) -> None:
    wd = tmp_path / "weights"
    entry = registry["pinned"]
    with pytest.raises(w.WeightsNotFound) as info:
        w.resolve("pinned", wd, allow_demo=True, registry=registry)
    msg = str(info.value)
    assert "tetrad weights fetch pinned" in msg and "tetrad weights import DIR" in msg
    assert str(w.path_for(entry, wd)) in msg
    demo = _write(w.path_for(entry, wd, demo=True), b"random demo weights")
    with pytest.raises(w.WeightsNotFound):
        w.resolve("pinned", wd, allow_demo=False, registry=registry)
    got = w.resolve("pinned", wd, allow_demo=True, registry=registry)
    assert (got.source, got.path, got.sha256) == ("demo-random", demo, _sha(b"random demo weights"))
    real = _write(w.path_for(entry, wd), PAYLOAD)
    got = w.resolve("pinned", wd, allow_demo=True, registry=registry)
    assert (got.name, got.source, got.path, got.sha256) == ("pinned", "real", real, entry.sha256)


def test_resolve_manual_message_and_unknown_name(tmp_path: Path, registry: dict[str, w.WeightEntry]) -> None:
    with pytest.raises(w.WeightsNotFound) as info:
        w.resolve("by_hand", tmp_path, registry=registry)
    assert "Google Drive id XYZ" in str(info.value) and "tetrad weights import DIR" in str(info.value)
    with pytest.raises(KeyError) as kinfo:
        w.resolve("nope", tmp_path, registry=registry)
    assert "pinned" in str(kinfo.value) and "by_hand" in str(kinfo.value)
    with pytest.raises(w.WeightsNotFound) as info:
        w.resolve("lipforensics_ff", tmp_path)
    assert "1wfZnxZpyNd5ouJs0LjVls7zU0N_W73L7" in str(info.value)


def test_resolve_explicit_path(tmp_path: Path) -> None:
    own = _write(tmp_path / "mine" / "my_head.pth", OTHER)
    got = w.resolve(str(own), tmp_path / "weights")
    assert (got.path, got.source, got.sha256) == (own, "real", _sha(OTHER))
    assert w.resolve(own, tmp_path / "weights").sha256 == _sha(OTHER)
    assert not (own.parent / "my_head.pth.sha256.json").exists()  # no litter next to the user's file
    with pytest.raises(w.WeightsNotFound):
        w.resolve(str(tmp_path / "absent" / "x.pth"), tmp_path / "weights")


# ------------------------------------------------------------------------------------------------ fetch


def test_fetch_file_url(tmp_path: Path, registry: dict[str, w.WeightEntry], src: Path) -> None:
    wd = tmp_path / "weights"
    paths = w.fetch(["pinned"], wd, registry=registry, progress=False)
    target = w.path_for(registry["pinned"], wd)
    assert paths == [target] and target.read_bytes() == PAYLOAD
    assert sorted(p.name for p in target.parent.iterdir()) == ["model.pth", "model.pth.sha256.json"]
    assert w.verify_entry(registry["pinned"], wd).status == "verified"
    (src / "model.pth").unlink()  # already verified: no second download
    assert w.fetch(["pinned"], wd, registry=registry, progress=False) == [target]


def test_fetch_sha_mismatch_deletes_and_raises(tmp_path: Path, registry: dict[str, w.WeightEntry], src: Path) -> None:
    wd = tmp_path / "weights"
    _write(src / "model.pth", PAYLOAD[:-1] + b"X")
    with pytest.raises(w.WeightsError) as info:
        w.fetch(["pinned"], wd, registry=registry, progress=False)
    target = w.path_for(registry["pinned"], wd)
    msg = str(info.value)
    assert str(target) in msg and str(registry["pinned"].sha256) in msg and _sha(PAYLOAD[:-1] + b"X") in msg
    assert list(target.parent.iterdir()) == []  # temp file deleted, nothing renamed in


def test_fetch_network_error_is_one_line(tmp_path: Path, registry: dict[str, w.WeightEntry], src: Path) -> None:
    (src / "model.pth").unlink()
    with pytest.raises(w.WeightsError) as info:
        w.fetch(["pinned"], tmp_path / "weights", registry=registry, progress=False, timeout=1)
    assert "cannot download weights 'pinned'" in str(info.value) and "\n" not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert list((tmp_path / "weights" / "audio").iterdir()) == []


def test_fetch_unpinned_and_manual(tmp_path: Path, registry: dict[str, w.WeightEntry], src: Path) -> None:
    _write(src / "free.bin", OTHER)
    wd = tmp_path / "weights"
    with pytest.raises(w.ManualDownloadRequired) as info:
        w.fetch(["unpinned", "by_hand"], wd, registry=registry, progress=False)
    assert "Google Drive id XYZ" in str(info.value)
    assert info.value.fetched == [w.path_for(registry["unpinned"], wd)]
    assert w.verify_entry(registry["unpinned"], wd).status == "present-unpinned"


def test_fetch_hf_dir_uses_snapshot_download(
    tmp_path: Path, registry: dict[str, w.WeightEntry], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, object] = {}

    def fake_snapshot(repo_id: str, **kwargs: object) -> str:
        seen.update(kwargs, repo_id=repo_id)
        local = Path(str(kwargs["local_dir"]))
        for name in ("config.json", "model.safetensors"):
            (local / name).write_bytes(b"x")
        return str(local)

    monkeypatch.setitem(sys.modules, "huggingface_hub", types.SimpleNamespace(snapshot_download=fake_snapshot))
    wd = tmp_path / "weights"
    assert w.fetch(["hf"], wd, registry=registry, timeout=7) == [wd / "audio" / "hf-model"]
    assert seen["repo_id"] == "someone/hf-model" and seen["etag_timeout"] == 7
    assert w.verify_entry(registry["hf"], wd).status == "present-unpinned"


def test_fetch_hf_dir_error(
    tmp_path: Path, registry: dict[str, w.WeightEntry], monkeypatch: pytest.MonkeyPatch
) -> None:
    def offline(repo_id: str, **kwargs: object) -> str:
        raise ConnectionError("no route to host")

    monkeypatch.setitem(sys.modules, "huggingface_hub", types.SimpleNamespace(snapshot_download=offline))
    with pytest.raises(w.WeightsError, match="no route to host"):
        w.fetch(["hf"], tmp_path / "weights", registry=registry)


# ------------------------------------------------------------------------------------------------ import


def test_import_by_sha_alias_and_hf_dir(tmp_path: Path, registry: dict[str, w.WeightEntry]) -> None:
    folder = tmp_path / "colleague"
    _write(folder / "deep" / "renamed_anything.bin", PAYLOAD)  # pinned: found by sha256 under another name
    _write(folder / "model.pth", PAYLOAD[:-1] + b"?")  # right name, wrong content: skipped
    _write(folder / "other_free.bin", OTHER)  # unpinned: found by alias
    _write(folder / "hf_alias" / "config.json", b"{}")
    _write(folder / "hf_alias" / "model.safetensors", b"w")
    _write(folder / "hf-model" / "config.json", b"{}")  # incomplete copy under the main name: not chosen
    wd = tmp_path / "weights"
    got = dict(w.import_dir(folder, wd, registry=registry))
    assert set(got) == {"pinned", "unpinned", "hf"}
    assert got["pinned"].read_bytes() == PAYLOAD and got["pinned"] == w.path_for(registry["pinned"], wd)
    assert got["unpinned"] == wd / "visual" / "free.bin"
    assert (got["hf"] / "model.safetensors").read_bytes() == b"w"
    statuses = {v.name: v.status for v in w.list_status(wd, registry)}
    assert statuses == ALL_PRESENT
    assert w.import_dir(folder, wd, registry=registry) == []  # already there
    assert not list(folder.rglob("*.sha256.json"))  # the source folder is left untouched


def test_import_hashes_only_same_size_files(
    tmp_path: Path, registry: dict[str, w.WeightEntry], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "big"
    for i in range(5):
        _write(folder / f"noise{i}.bin", b"n" * (i + 1))
    _write(folder / "x.bin", PAYLOAD)
    calls: list[str] = []
    real = store.file_sha256
    monkeypatch.setattr(store, "file_sha256", lambda p: calls.append(Path(p).name) or real(p))
    got = w.import_dir(folder, tmp_path / "weights", registry={"pinned": registry["pinned"]})
    assert [n for n, _ in got] == ["pinned"]
    assert "x.bin" in calls and not any(c.startswith("noise") for c in calls)


def test_import_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(w.WeightsError, match="not a folder"):
        w.import_dir(tmp_path / "absent", tmp_path / "weights")


@pytest.mark.skipif(_shared_upstream() is None, reason="shared upstream-data folder not available")
def test_import_shared_upstream_data(tmp_path: Path) -> None:
    upstream = _shared_upstream()
    assert upstream is not None
    wd = tmp_path / "weights"
    got = dict(w.import_dir(upstream, wd))
    assert {"ufd_fc", "aasist", "aasist_l", "lipforensics_mean_face"} <= set(got)
    status = {v.name: v.status for v in w.list_status(wd)}
    for name in ("ufd_fc", "aasist", "aasist_l", "lipforensics_mean_face"):
        assert status[name] == "verified", name
        res = w.resolve(name, wd)
        assert res.source == "real" and res.sha256 == w.get_entry(name).sha256
    assert w.path_for(w.get_entry("ufd_fc"), wd) == wd / "semantic" / "fc_weights.pth"


# ------------------------------------------------------------------------------------------------ CLI


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tetrad")
    w.add_cli(parser.add_subparsers(dest="command"))
    return parser


def test_cli_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wd = tmp_path / "weights"
    _write(w.path_for(w.get_entry("aasist"), wd, demo=True), b"demo")
    args = _parser().parse_args(["weights", "list", "--dir", str(wd)])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    for needle in ("name", "licence", "demo-random", "ufd_fc", "sbi_ffraw", "missing", "MIT", "research-only"):
        assert needle in out
    aasist_row = next(line for line in out.splitlines() if line.startswith("aasist "))
    assert " yes " in aasist_row


def test_cli_verify_fetch_import(tmp_path: Path, registry: dict[str, w.WeightEntry], src: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    wd = tmp_path / "weights"
    parser = _parser()

    def run(*argv: str) -> int:
        args = parser.parse_args(["weights", *argv, "--dir", str(wd)])
        args.registry = registry
        return int(args.func(args))

    assert run("verify", "--all") == 1  # nothing fetched: every entry is missing
    assert run("fetch", "pinned") == 0
    assert run("fetch", "by_hand") == 2 and "Google Drive id XYZ" in capsys.readouterr().out
    assert run("fetch", "nope") == 1
    assert run("import", str(tmp_path / "absent")) == 1
    _write(w.path_for(registry["pinned"], wd), b"corrupt", settle=False)
    assert run("verify", "--all") == 1
    assert "mismatch" in capsys.readouterr().out


def test_cli_fetch_defaults_to_automatic(tmp_path: Path, registry: dict[str, w.WeightEntry], src: Path,
                                         capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(repo_id: str, **kwargs: object) -> str:
        raise OSError("offline")

    monkeypatch.setitem(sys.modules, "huggingface_hub", types.SimpleNamespace(snapshot_download=offline))
    _write(src / "free.bin", OTHER)
    args = _parser().parse_args(["weights", "fetch", "--dir", str(tmp_path / "w")])
    args.registry = registry
    assert args.func(args) == 1  # the hf entry failed (offline), the two files came
    captured = capsys.readouterr()
    assert "cannot download weights 'hf'" in captured.err and "Traceback" not in captured.err
    assert "manual: by_hand" in captured.out
    assert (tmp_path / "w" / "audio" / "model.pth").is_file() and (tmp_path / "w" / "visual" / "free.bin").is_file()


def test_weights_without_subcommand_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    args = _parser().parse_args(["weights"])
    assert args.func(args) == 2
    assert "list" in capsys.readouterr().out


def test_import_from_read_only_folder_gives_writable_cache(
    tmp_path: Path, registry: dict[str, w.WeightEntry]
) -> None:
    folder = tmp_path / "ro"
    _write(folder / "pinned_model.pth", PAYLOAD)
    _write(folder / "hf-model" / "config.json", b"{}")
    _write(folder / "hf-model" / "model.safetensors", b"w")
    for p in (folder / "pinned_model.pth", folder / "hf-model" / "config.json", folder / "hf-model" / "model.safetensors"):
        p.chmod(0o444)
    (folder / "hf-model").chmod(0o555)
    wd = tmp_path / "weights"
    try:
        got = dict(w.import_dir(folder, wd, registry=registry))
    finally:
        (folder / "hf-model").chmod(0o755)
    assert set(got) == {"pinned", "hf"}
    assert os.access(got["pinned"], os.W_OK) and os.access(got["hf"], os.W_OK)
    (got["hf"] / "model.safetensors").unlink()  # a broken copy in the cache is replaced by the next import
    assert w.verify_entry(registry["hf"], wd).status == "incomplete"
    assert dict(w.import_dir(folder, wd, registry=registry)) == {"hf": got["hf"]}
