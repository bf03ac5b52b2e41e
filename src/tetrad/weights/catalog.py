"""The catalog of checkpoints: what each one is (`WeightEntry`) and where the entries are declared.

Each detector declares the checkpoints it can load in its own module, as a literal top-level
`WEIGHTS = (WeightEntry(...), ...)`. This module reads those declarations with `ast`, without importing the
detector modules: they import torch and model libraries, and `tetrad weights list` must stay fast and light.
Entries can also be registered at run time with `add_entries`.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tetrad.schemas import LAYERS as DETECTOR_LAYERS

Kind = Literal["file", "hf_dir"]
# Checkpoints live in <dir>/<layer>/: one folder per detector layer, and "face" for the face/mouth extractors' assets.
LAYERS: tuple[str, ...] = (*DETECTOR_LAYERS, "face")
KINDS: tuple[str, ...] = ("file", "hf_dir")
# Packages whose modules may declare `WEIGHTS`; their files are scanned, never imported.
# tetrad.faces: the face detectors' checkpoints (RetinaFace's release zip).
DECLARING_PACKAGES: tuple[str, ...] = ("tetrad.layers", "tetrad.media", "tetrad.faces")
DECLARATION = "WEIGHTS"
# Licences (SPDX ids, lower case) that let anyone download and use the weights; `make demo` fetches only these.
OPEN_LICENCES: frozenset[str] = frozenset({"mit", "apache-2.0", "bsd-2-clause", "bsd-3-clause", "cc-by-4.0"})


@dataclass(frozen=True)
class WeightEntry:
    """One checkpoint the detectors can use."""

    name: str
    layer: str  # one of LAYERS
    filename: str  # relative to <dir>/<layer>/; a folder name for kind "hf_dir"
    kind: Kind = "file"
    url: str | None = None  # direct download URL, or the Hugging Face repo id for kind "hf_dir"
    sha256: str | None = None  # None where upstream pins none
    size: int | None = None  # bytes
    licence: str = ""
    source: str = ""  # repo@commit:path, or a page
    manual: str | None = None  # exact human instructions when it cannot be downloaded automatically
    aliases: tuple[str, ...] = ()  # other file (or folder) names it is known by
    hf_files: tuple[str, ...] = ()  # kind "hf_dir": files that must exist in the folder

    def __post_init__(self) -> None:
        if self.layer not in LAYERS:
            raise ValueError(f"{self.name}: layer {self.layer!r} is not one of {LAYERS}")
        if self.kind not in KINDS:
            raise ValueError(f"{self.name}: kind {self.kind!r} is not one of {KINDS}")
        if self.kind == "hf_dir" and not self.hf_files:
            raise ValueError(f"{self.name}: an hf_dir entry needs hf_files")
        if self.sha256 is not None and (len(self.sha256) != 64 or self.sha256.lower() != self.sha256):
            raise ValueError(f"{self.name}: sha256 must be 64 lower-case hex digits")
        if self.manual is None and not self.url:
            raise ValueError(f"{self.name}: an entry needs a url or manual instructions")

    @property
    def automatic(self) -> bool:
        """True when `fetch` can download it without a human."""
        return self.manual is None

    @property
    def openly_licensed(self) -> bool:
        """True when the licence is an open one (OPEN_LICENCES) and covers the weights themselves.

        The licence text starts with its SPDX id; "MIT (code); no separate licence stated for the weights" is
        the code's licence only, so it does not count.
        """
        spdx = self.licence.replace(";", " ").replace("(", " ").split(maxsplit=1)
        return bool(spdx) and spdx[0].lower() in OPEN_LICENCES and "(code)" not in self.licence

    @property
    def names(self) -> tuple[str, ...]:
        """The file (or folder) name and its aliases."""
        return (self.filename, *self.aliases)


_RUNTIME: dict[str, WeightEntry] = {}  # what add_entries registered, in registration order


# --------------------------------------------------------------------------------------------------- static read


def _declaration(tree: ast.Module, path: Path) -> ast.expr | None:
    """The value assigned to the top-level WEIGHTS, or None when the module declares none."""
    values = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == DECLARATION
                                                for t in node.targets):
            values.append(node.value)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) \
                and node.target.id == DECLARATION and node.value is not None:
            values.append(node.value)
    if len(values) > 1:
        raise ValueError(f"{path}:{values[1].lineno}: {DECLARATION} is assigned more than once")
    return values[0] if values else None


def _is_weight_entry(func: ast.expr) -> bool:
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    return name == WeightEntry.__name__


def _entry_from_node(node: ast.expr, path: Path) -> WeightEntry:
    """One `WeightEntry(key=literal, ...)` call, evaluated without running any code of the module."""
    where = f"{path}:{node.lineno}"
    if not isinstance(node, ast.Call) or not _is_weight_entry(node.func) or node.args:
        raise ValueError(f"{where}: each {DECLARATION} item must be a WeightEntry(...) call with keyword "
                         f"arguments only")
    kwargs = {}
    for kw in node.keywords:
        if kw.arg is None:
            raise ValueError(f"{where}: WeightEntry(**...) cannot be read without importing the module")
        try:
            kwargs[kw.arg] = ast.literal_eval(kw.value)
        except (ValueError, TypeError, SyntaxError):
            raise ValueError(f"{path}:{kw.value.lineno}: WeightEntry {kw.arg}= must be a literal "
                             f"({DECLARATION} is read without importing the module)") from None
    try:
        return WeightEntry(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: {exc}") from None


def declared_weights(path: Path | str) -> tuple[WeightEntry, ...]:
    """The entries of a module file's top-level `WEIGHTS = (WeightEntry(...), ...)`, read without importing it.

    A file without a top-level WEIGHTS declares none. Anything but a tuple or list of WeightEntry calls whose
    keyword arguments are literals raises ValueError naming the file and line.
    """
    path = Path(path)
    source = path.read_text(encoding="utf-8")
    if DECLARATION not in source:  # most modules: no need to parse them
        return ()
    value = _declaration(ast.parse(source, filename=str(path)), path)
    if value is None:
        return ()
    if not isinstance(value, (ast.Tuple, ast.List)):
        raise ValueError(f"{path}:{value.lineno}: {DECLARATION} must be a literal tuple of WeightEntry(...) calls")
    return tuple(_entry_from_node(item, path) for item in value.elts)


def _module_files(packages: Iterable[str]) -> list[Path]:
    """The .py files of packages, found without importing them (find_spec imports only their parents)."""
    files: list[Path] = []
    for package in packages:
        spec = importlib.util.find_spec(package)
        if spec is None or spec.submodule_search_locations is None:
            raise ImportError(f"cannot find the package {package} to read its {DECLARATION}")
        for folder in spec.submodule_search_locations:
            files += sorted(Path(folder).glob("*.py"))
    return files


@functools.lru_cache(maxsize=None)
def _declared() -> tuple[WeightEntry, ...]:
    """Every statically declared entry, by layer then name (files do not change while we run)."""
    found: dict[str, tuple[WeightEntry, Path]] = {}
    for path in _module_files(DECLARING_PACKAGES):
        for entry in declared_weights(path):
            if entry.name in found and found[entry.name][0] != entry:
                raise ValueError(f"{path}: weights entry {entry.name!r} is also declared, differently, in "
                                 f"{found[entry.name][1]}")
            found[entry.name] = (entry, path)
    return tuple(sorted((e for e, _ in found.values()), key=lambda e: (LAYERS.index(e.layer), e.name)))


# --------------------------------------------------------------------------------------------------- lookup


def entries() -> dict[str, WeightEntry]:
    """Every known entry, name -> entry: the declared ones (by layer, then name), then those added at run time."""
    known = {e.name: e for e in _declared()}
    known.update(_RUNTIME)  # add_entries never lets a runtime entry differ from a declared one
    return known


def add_entries(new: Iterable[WeightEntry]) -> None:
    """Register entries at run time (e.g. a plug-in's checkpoints).

    An entry equal to a known one of the same name is a no-op; a different one with a known name is a
    ValueError, and then nothing of `new` is registered.
    """
    known = entries()
    batch = list(new)
    for entry in batch:
        if not isinstance(entry, WeightEntry):
            raise TypeError(f"add_entries takes WeightEntry objects, got {type(entry).__name__}")
        old = known.setdefault(entry.name, entry)
        if old != entry:
            raise ValueError(f"weights entry {entry.name!r} is already registered with other fields: {old}")
    for entry in batch:
        _RUNTIME.setdefault(entry.name, entry)


def registry_or_entries(registry: Mapping[str, WeightEntry] | None) -> Mapping[str, WeightEntry]:
    """The registry a function was given, or every known entry (the default of every `registry` parameter)."""
    return entries() if registry is None else registry


def get_entry(name: str, registry: Mapping[str, WeightEntry] | None = None) -> WeightEntry:
    """The entry called `name`; KeyError listing the known names otherwise."""
    reg = registry_or_entries(registry)
    if name not in reg:
        raise KeyError(f"unknown weights entry {name!r}; known: {', '.join(sorted(reg))}")
    return reg[name]
