"""Weights catalog: WEIGHTS read from module files without importing them, runtime registration, light imports."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tetrad import weights as w
from tetrad.weights import catalog

KNOWN = {
    "aasist", "aasist_l", "w2v2_deepfake_v2", "clip_vitl14", "ufd_fc", "sbi_ffc23", "sbi_ffraw",
    "lipforensics_ff", "lipforensics_mean_face", "retinaface_resnet50", "syncnet_v2",
}


def _module(tmp_path: Path, body: str, name: str = "detector.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


@pytest.fixture()
def runtime(monkeypatch: pytest.MonkeyPatch) -> dict[str, w.WeightEntry]:
    """A fresh runtime registry, so registrations do not leak into other tests."""
    fresh: dict[str, w.WeightEntry] = {}
    monkeypatch.setattr(catalog, "_RUNTIME", fresh)
    return fresh


def _entry(name: str = "extra", **fields: object) -> w.WeightEntry:
    return w.WeightEntry(**{"name": name, "layer": "audio", "filename": f"{name}.pth", "url": "https://x/y",
                            **fields})  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------ declared_weights


def test_declared_weights_reads_literals_without_running_the_module(tmp_path: Path) -> None:
    path = _module(tmp_path, '''
        """A detector."""
        import no_such_module_anywhere  # never imported: the file is only parsed
        from tetrad.weights.catalog import WeightEntry

        WEIGHTS = (
            WeightEntry(name="a", layer="audio", filename="a.pth", url="https://example.org/"
                        "a.pth", sha256="''' + "0" * 64 + '''", size=12, aliases=("a_a.pth",)),
            WeightEntry(name="b", layer="lip", filename="b.pth", manual="by hand"),
        )
        raise SystemExit("executed")
    ''')
    a, b = w.declared_weights(path)
    assert a == w.WeightEntry(name="a", layer="audio", filename="a.pth", url="https://example.org/a.pth",
                              sha256="0" * 64, size=12, aliases=("a_a.pth",))
    assert (b.name, b.layer, b.automatic) == ("b", "lip", False)


def test_declared_weights_none_declared(tmp_path: Path) -> None:
    assert w.declared_weights(_module(tmp_path, "x = 1\n")) == ()
    assert w.declared_weights(_module(tmp_path, "def f():\n    WEIGHTS = ()\n", "nested.py")) == ()


@pytest.mark.parametrize("body, line, needle", [
    ('WEIGHTS = (\n    WeightEntry(name="a", layer="audio", filename="a.pth",\n        url=BASE + "a.pth"),\n)\n',
     3, "url= must be a literal"),
    ('WEIGHTS = (WeightEntry("a", "audio", "a.pth", url="u"),)\n', 1, "keyword arguments only"),
    ('WEIGHTS = (\n    ENTRY,\n)\n', 2, "WeightEntry(...) call"),
    ('WEIGHTS = make_weights()\n', 1, "literal tuple"),
    ('WEIGHTS = (WeightEntry(**FIELDS),)\n', 1, "without importing"),
    ('WEIGHTS = (WeightEntry(name="a", layer="nope", filename="f", url="u"),)\n', 1, "layer 'nope'"),
    ('WEIGHTS = (WeightEntry(name="a", layer="audio", filename="f", url="u", colour="red"),)\n', 1, "colour"),
    ('WEIGHTS = ()\nWEIGHTS = ()\n', 2, "more than once"),
])
def test_declared_weights_rejects_what_needs_running(tmp_path: Path, body: str, line: int, needle: str) -> None:
    path = _module(tmp_path, body)
    with pytest.raises(ValueError) as info:
        w.declared_weights(path)
    assert f"{path}:{line}:" in str(info.value) and needle in str(info.value)


def test_conflicting_declarations_name_both_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    one = _module(tmp_path, 'WEIGHTS = (WeightEntry(name="a", layer="audio", filename="a.pth", url="u"),)\n', "one.py")
    two = _module(tmp_path, 'WEIGHTS = (WeightEntry(name="a", layer="audio", filename="b.pth", url="u"),)\n', "two.py")
    monkeypatch.setattr(catalog, "_module_files", lambda packages: [one, two])
    catalog._declared.cache_clear()
    try:
        with pytest.raises(ValueError, match="also declared") as info:
            w.entries()
        assert str(one) in str(info.value) and str(two) in str(info.value)
    finally:
        catalog._declared.cache_clear()  # the real scan again for the other tests


# ------------------------------------------------------------------------------------------------ entries


def test_entries_are_the_detectors_declarations(runtime: dict[str, w.WeightEntry]) -> None:
    known = w.entries()
    assert set(known) == KNOWN
    assert all(name == entry.name for name, entry in known.items())
    known.clear()  # a copy: callers cannot damage the catalog
    assert set(w.entries()) == KNOWN
    assert w.get_entry("lipforensics_mean_face").layer == "face"


def test_add_entries_duplicate_rules(runtime: dict[str, w.WeightEntry]) -> None:
    extra = _entry()
    w.add_entries([extra])
    assert w.entries()["extra"] == extra and list(w.entries())[-1] == "extra"
    w.add_entries([_entry()])  # equal: a no-op
    w.add_entries([w.get_entry("aasist")])  # equal to a declared one: a no-op
    assert set(w.entries()) == KNOWN | {"extra"}
    with pytest.raises(ValueError, match="'extra' is already registered"):
        w.add_entries([_entry(size=5)])
    with pytest.raises(ValueError, match="'aasist' is already registered"):
        w.add_entries([_entry("aasist")])
    with pytest.raises(ValueError):  # nothing of a rejected batch is registered
        w.add_entries([_entry("fresh"), _entry("fresh", size=1)])
    assert "fresh" not in w.entries() and w.get_entry("extra") == extra


def test_add_entries_needs_weight_entries(runtime: dict[str, w.WeightEntry]) -> None:
    with pytest.raises(TypeError):
        w.add_entries([{"name": "dict"}])  # type: ignore[list-item]


# ------------------------------------------------------------------------------------------------ light imports


def test_catalog_and_cli_import_no_model_code() -> None:
    code = textwrap.dedent("""
        import argparse, sys
        import tetrad.weights as w
        names = set(w.entries())
        parser = argparse.ArgumentParser(prog="tetrad")
        w.add_cli(parser.add_subparsers(dest="command"))
        parser.parse_args(["weights", "list"])
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in
                       ("torch", "torchvision", "open_clip", "transformers", "pandas")
                       or m.startswith(("tetrad.layers", "tetrad.media")))
        print(len(names), heavy)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{len(KNOWN)} []"
