"""`tetrad weights fetch --open` (what `make demo` runs) against a local HTTP server standing in for the upstream
hosts (`--mirror` / $TETRAD_WEIGHTS_MIRROR): real files fetched, a wrong sha256 refused (nothing placed, not even
a demo file, exit 1), and offline (nothing listening) found at the first connection and not an error."""

from __future__ import annotations

import argparse
import hashlib
import http.server
import re
import socket
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from tetrad import weights as w
from tetrad.weights.fetch import MIRROR_ENV

ROOT = Path(__file__).resolve().parents[2]
PARAMS = ROOT / "params.yaml"
# What the issue names: AASIST, AASIST-L, UFD's head, CLIP ViT-L/14, LipForensics' mean face.
OPEN = {"aasist", "aasist_l", "ufd_fc", "clip_vitl14", "lipforensics_mean_face"}
PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _standin(name: str) -> bytes:
    return f"stand-in checkpoint {name}\n".encode() * 20


@dataclass
class Mirror:
    url: str  # http://127.0.0.1:PORT
    root: Path  # served folder, laid out like the upstream URL paths
    requests: list[str]  # paths asked for, in order

    def put(self, entry: w.WeightEntry, data: bytes) -> None:
        path = self.root / urllib.parse.urlsplit(str(entry.url)).path.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


@pytest.fixture()
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """urllib would send 127.0.0.1 through a proxy named in the environment."""
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)


@pytest.fixture()
def mirror(tmp_path: Path, no_proxy: None) -> Iterator[Mirror]:
    """A threaded http.server on 127.0.0.1 serving a tmp folder."""
    served = Mirror("", tmp_path / "mirror", [])
    served.root.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(served.root), **kwargs)

        def do_GET(self) -> None:
            served.requests.append(self.path)
            super().do_GET()

        def log_message(self, *args: Any) -> None:  # keep the test output quiet
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    served.url = f"http://127.0.0.1:{httpd.server_port}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield served
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture()
def dead_url(no_proxy: None) -> str:
    """A 127.0.0.1 port nothing listens on: every connection is refused at once (an offline machine)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture()
def registry() -> dict[str, w.WeightEntry]:
    """The real catalog with the open entries' sha256 and size set to small stand-in files (same URLs)."""
    reg = dict(w.entries())
    for name in OPEN:
        data = _standin(name)
        reg[name] = replace(reg[name], sha256=_sha(data), size=len(data))
    return reg


@pytest.fixture()
def connects(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The URLs urllib was asked to open, in order."""
    seen: list[str] = []
    real = urllib.request.urlopen

    def counting(url: str, *args: Any, **kwargs: Any) -> Any:
        seen.append(url)
        return real(url, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", counting)
    return seen


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tetrad")
    w.add_cli(parser.add_subparsers(dest="command"))
    return parser


def _cli(registry: Mapping[str, w.WeightEntry]) -> Callable[..., int]:
    def run(*argv: str) -> int:
        args = _parser().parse_args(["weights", "fetch", *argv])
        args.registry = registry
        return int(args.func(args))

    return run


def _serve_all(mirror: Mirror, reg: Mapping[str, w.WeightEntry], wrong: str | None = None) -> None:
    for name in OPEN:
        mirror.put(reg[name], _standin(name) + (b"tampered" if name == wrong else b""))


def _rows(out: str) -> dict[str, str]:
    """The will-run lines: row -> state."""
    return {m[1]: m[2] for m in re.finditer(r"^  (\w[\w ]*?)\s{2,}(\S+)\s{2,}", out, re.M)}


# ------------------------------------------------------------------------------------------------ pieces


def test_mirrored_replaces_scheme_and_host_and_keeps_the_path() -> None:
    path = "/clovaai/aasist/a04c/models/weights/AASIST.pth?x=1"
    url = f"https://raw.githubusercontent.com{path}"
    assert w.mirrored(url, None) == url and w.mirrored(url, "") == url
    assert w.mirrored(url, "http://127.0.0.1:8000") == f"http://127.0.0.1:8000{path}"
    assert w.mirrored(url, "http://m.local/up/") == f"http://m.local/up{path}"  # a path prefix is kept too
    assert w.mirrored("file:///srv/a.pth", "http://m.local") == "file:///srv/a.pth"  # only http(s) is redirected
    for bad in ("127.0.0.1:8000", "ftp://m.local", "http://"):
        with pytest.raises(w.WeightsError, match="mirror"):
            w.mirrored(url, bad)


def test_open_entries_are_the_openly_licensed_pinned_files() -> None:
    assert {e.name for e in w.open_entries()} == OPEN
    assert not w.get_entry("lipforensics_ff").openly_licensed  # "MIT (code)": not the weights' licence
    assert not w.get_entry("sbi_ffc23").openly_licensed and w.get_entry("retinaface_resnet50").openly_licensed
    assert w.get_entry("retinaface_resnet50") not in w.open_entries()  # upstream pins no sha256: not checked


# ------------------------------------------------------------------------------------------------ fetch_open


def test_fetch_open_from_a_local_mirror(tmp_path: Path, mirror: Mirror,
                                        registry: dict[str, w.WeightEntry]) -> None:
    _serve_all(mirror, registry)
    wd = tmp_path / "weights"
    done = w.fetch_open(wd, registry=registry, mirror=mirror.url, progress=False)
    assert sorted(done.fetched) == sorted(OPEN) and not (done.refused or done.unavailable or done.offline)
    statuses = {v.name: v.status for v in w.list_status(wd, registry) if v.name in OPEN}
    assert statuses == dict.fromkeys(OPEN, "verified")
    assert w.path_for(registry["clip_vitl14"], wd).read_bytes() == _standin("clip_vitl14")
    assert "/clip/models/" in " ".join(mirror.requests)  # the upstream path, on the mirror's host
    again = w.fetch_open(wd, registry=registry, mirror=mirror.url, progress=False)
    assert sorted(again.present) == sorted(OPEN) and again.fetched == [] and len(mirror.requests) == len(OPEN)


def test_fetch_open_refuses_a_wrong_sha256(tmp_path: Path, mirror: Mirror,
                                           registry: dict[str, w.WeightEntry]) -> None:
    _serve_all(mirror, registry, wrong="aasist")
    wd = tmp_path / "weights"
    done = w.fetch_open(wd, registry=registry, mirror=mirror.url, progress=False)
    assert list(done.refused) == ["aasist"] and "sha256 mismatch" in done.refused["aasist"]
    assert sorted(done.fetched) == sorted(OPEN - {"aasist"})  # the others still come
    entry = registry["aasist"]
    assert not w.path_for(entry, wd).exists() and not w.path_for(entry, wd, demo=True).exists()
    assert sorted(p.name for p in (wd / "audio").iterdir()) == ["AASIST-L.pth", "AASIST-L.pth.sha256.json"]


def test_fetch_open_offline_stops_at_the_first_failure(tmp_path: Path, dead_url: str, connects: list[str],
                                                       registry: dict[str, w.WeightEntry]) -> None:
    start = time.monotonic()
    done = w.fetch_open(tmp_path / "weights", registry=registry, mirror=dead_url, progress=False)
    assert time.monotonic() - start < 5
    assert done.offline is not None and "cannot reach 127.0.0.1" in done.offline
    assert done.fetched == [] and len(connects) == 1  # the other hosts are not tried


def test_an_http_error_is_no_offline(tmp_path: Path, mirror: Mirror, registry: dict[str, w.WeightEntry]) -> None:
    _serve_all(mirror, registry)
    (mirror.root / urllib.parse.urlsplit(str(registry["ufd_fc"].url)).path.lstrip("/")).unlink()
    done = w.fetch_open(tmp_path / "weights", registry=registry, mirror=mirror.url, progress=False)
    assert list(done.unavailable) == ["ufd_fc"] and "404" in done.unavailable["ufd_fc"]
    assert done.offline is None and sorted(done.fetched) == sorted(OPEN - {"ufd_fc"})


# ------------------------------------------------------------------------------------------------ the command


def test_cli_connected_says_what_runs_real(tmp_path: Path, mirror: Mirror, registry: dict[str, w.WeightEntry],
                                           monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _serve_all(mirror, registry)
    monkeypatch.setenv(MIRROR_ENV, mirror.url)  # the environment, as `make demo` passes it
    wd = tmp_path / "weights"
    assert _cli(registry)("--open", "--dir", str(wd), "--params", str(PARAMS)) == 0
    out = capsys.readouterr().out
    assert out.startswith("weights: fetched ") and "(sha256 verified)" in out
    assert _rows(out) == {"audio": "real", "visual": "demo-random", "lip": "demo-random", "semantic": "real",
                          "sync": "demo-random", "mouth crops": "real", "face crops": "demo-random"}
    assert "`tetrad weights fetch sbi_ffc23` says how" in out


def test_cli_wrong_sha256_exits_1_and_places_nothing(tmp_path: Path, mirror: Mirror,
                                                      registry: dict[str, w.WeightEntry],
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    _serve_all(mirror, registry, wrong="ufd_fc")
    wd = tmp_path / "weights"
    assert _cli(registry)("--open", "--dir", str(wd), "--mirror", mirror.url, "--params", str(PARAMS)) == 1
    captured = capsys.readouterr()
    assert "sha256 mismatch for weights 'ufd_fc'" in captured.err and "refused" in captured.err
    assert "REFUSED ufd_fc (wrong sha256)" in captured.out
    assert "will run" not in captured.out  # `make demo` stops here: no demo-weights step follows
    entry = registry["ufd_fc"]
    assert not w.path_for(entry, wd).exists() and not w.path_for(entry, wd, demo=True).exists()


def test_cli_offline_is_quick_and_says_so(tmp_path: Path, dead_url: str, registry: dict[str, w.WeightEntry],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    start = time.monotonic()
    rc = _cli(registry)("--open", "--dir", str(tmp_path / "w"), "--mirror", dead_url, "--timeout", "3",
                        "--params", str(PARAMS))
    assert rc == 0 and time.monotonic() - start < 5
    out = capsys.readouterr().out
    assert out.startswith("weights: offline (cannot reach 127.0.0.1:") and "nothing fetched" in out
    assert set(_rows(out).values()) == {"demo-random"}


def test_cli_fetch_usage_errors(registry: dict[str, w.WeightEntry], capsys: pytest.CaptureFixture[str]) -> None:
    run = _cli(registry)
    assert run("--mirror", "not-a-url", "aasist") == 2
    assert run("--open", "aasist") == 2
    assert "mirror" in capsys.readouterr().err


def test_make_demo_imports_then_fetches_open_then_writes_demo_weights() -> None:
    lines = (ROOT / "Makefile").read_text().split("\ndemo:", 1)[1].split("\n\n", 1)[0]
    order = [lines.index(step) for step in ("weights import", "weights fetch --open", "tetrad demo-weights")]
    assert order == sorted(order)


def test_tetrad_parser_has_the_fetch_options() -> None:
    from tetrad.cli import parser

    args = parser().parse_args(["weights", "fetch", "--open"])
    assert args.open and args.mirror is None and args.params is None and args.timeout == 30
