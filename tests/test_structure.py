"""The structure the architecture doc promises: DVC deps equal the code each stage runs, the runtime never
imports development tools, and the fast CLI commands import no model code."""

from __future__ import annotations

import ast
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"


def module_file(name: str, src: Path = SRC) -> Path | None:
    """The file of a `tetrad` module inside `src`, or None (third-party, or not a module)."""
    if name != "tetrad" and not name.startswith("tetrad."):
        return None
    base = src.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def imported_modules(path: Path) -> set[str]:
    """Every module an `import` in the file can load, function-level imports included (they run too); imports
    under `if TYPE_CHECKING:` never run and are left out."""
    names: set[str] = set()
    tree = ast.parse(path.read_text(), str(path))
    typing_only = {id(n) for block in ast.walk(tree) if _is_type_checking(block) for n in ast.walk(block)}
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)  # `from pkg import module`
    with_parents = set()
    for name in names:  # importing a.b.c runs a/__init__ and a/b/__init__ first
        parts = name.split(".")
        with_parents.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return with_parents


def _is_type_checking(node: ast.AST) -> bool:
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def import_closure(entry: Path, src: Path = SRC) -> set[Path]:
    """The project files an entry point runs: itself and every `tetrad` module reachable by imports."""
    seen: set[Path] = set()
    todo = [entry]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        todo += [f for f in (module_file(m, src) for m in imported_modules(path)) if f is not None]
    return seen


def entry_point(cmd: str, root: Path = ROOT) -> Path:
    """The file a stage command runs: `python stages/x.py ...` or the `tetrad` console script."""
    words = shlex.split(cmd)
    if words[0] == "tetrad":
        return root / "src/tetrad/cli.py"
    return root / next(w for w in words if w.endswith(".py"))


def uncovered(files: set[Path], deps: list[str], root: Path = ROOT) -> list[str]:
    """Files of the closure that no dep names, itself or through a folder above it."""
    dep_paths = [(root / d).resolve() for d in deps]
    return sorted(str(f.relative_to(root)) for f in files
                  if not any(f.resolve() == d or d in f.resolve().parents for d in dep_paths))


def stage_deps(dvc_yaml: Path = ROOT / "dvc.yaml") -> dict[str, tuple[str, list[str]]]:
    """Stage -> (cmd, code deps) as dvc.yaml writes them (templated deps of data are left out)."""
    stages = yaml.safe_load(dvc_yaml.read_text())["stages"]
    out = {}
    for name, stage in stages.items():
        body = stage.get("do", stage)
        deps = [d for d in body.get("deps", []) if "${" not in d]
        out[name] = (body["cmd"].split("${")[0], deps)
    return out


@pytest.mark.parametrize("stage", sorted(stage_deps()))
def test_dvc_deps_cover_the_code_each_stage_runs(stage):
    cmd, deps = stage_deps()[stage]
    missing = uncovered(import_closure(entry_point(cmd)), deps)
    assert not missing, f"stage {stage}: `{cmd}` runs {missing}, which its deps in dvc.yaml do not list"


def test_the_check_catches_a_module_left_out_of_deps(tmp_path):
    """The check is not vacuous: a stage importing a helper its deps do not name is caught."""
    pkg = tmp_path / "src/tetrad"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "rules.py").write_text("LABEL = 'audio_label'\n")
    (pkg / "stage.py").write_text("from tetrad.rules import LABEL\n\ndef run():\n    from tetrad import lazy\n")
    (pkg / "lazy.py").write_text("")
    closure = import_closure(pkg / "stage.py", tmp_path / "src")
    assert uncovered(closure, ["src/tetrad/stage.py", "src/tetrad/__init__.py"], tmp_path) == [
        "src/tetrad/lazy.py", "src/tetrad/rules.py"]


def is_development_tool(path: Path) -> bool:
    """The parity checks and the bench's modules (tetrad.bench, tetrad.benchagree, tetrad.benchset, ...)."""
    return "parity" in path.parts or path.name.startswith("bench")


def test_runtime_never_imports_development_tools():
    runtime = set()
    for cmd, _ in stage_deps().values():
        runtime |= import_closure(entry_point(cmd))
    runtime |= import_closure(SRC / "tetrad/cli.py")
    dev = {p for p in runtime if is_development_tool(p)}
    assert not dev, f"the runtime imports development tools: {sorted(str(p) for p in dev)}"


def test_every_bench_module_counts_as_a_development_tool():
    bench = sorted(p.name for p in (SRC / "tetrad").glob("bench*.py"))
    assert {"bench.py", "benchagree.py", "benchset.py"} <= set(bench)
    assert all(is_development_tool(SRC / "tetrad" / name) for name in bench)
    assert not is_development_tool(SRC / "tetrad/stages/extract.py")


@pytest.mark.parametrize("argv", [["--help"], ["where"], ["weights", "list"], ["doctor", "--help"]])
def test_fast_commands_import_no_model_code(argv, tmp_path):
    """`tetrad --help`, `where`, `weights list` and `doctor` never load torch or a model library."""
    heavy = ["torch", "open_clip", "transformers", "efficientnet_pytorch", "facenet_pytorch", "mlflow", "dlib"]
    code = ("import sys, runpy\n"
            f"sys.argv = ['tetrad', *{argv!r}]\n"
            "try:\n    from tetrad.cli import main\n    main()\nexcept SystemExit:\n    pass\n"
            f"loaded = [m for m in {heavy!r} if m in sys.modules]\n"
            "print('LOADED', loaded)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert "LOADED []" in proc.stdout, f"tetrad {' '.join(argv)} loaded {proc.stdout[-300:]}{proc.stderr[-2000:]}"


def test_tetrad_run_runs_every_dvc_stage_after_its_dependencies():
    from tetrad.stages.runner import stage_commands

    commands = stage_commands(ROOT)
    names = [name for name, _ in commands]
    assert set(names) >= {"mini", "mini_fakeavceleb", "manifest@mini", "extract@mini", "aggregate@mini", "summary"}
    assert {f"detect@mini-{layer}" for layer in ("audio", "visual", "lip", "semantic")} <= set(names)
    order = names.index
    assert order("mini") < order("manifest@mini") < order("extract@mini") < order("detect@mini-audio")
    assert order("detect@mini-semantic") < order("aggregate@mini") < order("summary")
    assert all(cmd.startswith("python stages/") for _, cmd in commands)
