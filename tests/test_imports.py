"""Imports inside ``wwm_fast`` flow one way (issue 12): no cycle, and downward through the layers

    CLI -> API -> runners -> shard work -> stages -> utilities -> native kernels

Three checks:

* every module imports on its own in a fresh interpreter (nothing depends on what another
  module happened to import first, e.g. on the order of lines in ``__init__.py``);
* the import graph, read from the source with ``ast`` (every import statement, also those inside
  functions, plus the lazy tables ``segmentation._EXPORTS`` and ``cli.COMMANDS``), has no cycle;
* every edge of that graph goes to a module of the same or a lower layer (``LAYERS``).

A new module gets a layer here (``_layer`` says which modules are placed by rule).
"""

from __future__ import annotations

import ast
import importlib.machinery
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Set

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "wwm_fast"

CLI, API, RUNNERS, SHARD, STAGES, UTILITIES, KERNELS = 6, 5, 4, 3, 2, 1, 0
LAYERS = {
    "wwm_fast.cli": CLI, "wwm_fast.__main__": CLI, "wwm_fast.commands": CLI,
    "wwm_fast": API, "wwm_fast.create": API,
    "wwm_fast.pool": RUNNERS, "wwm_fast.beam": RUNNERS, "wwm_fast.compat": RUNNERS,
    "wwm_fast.compat_garden": RUNNERS,
    # the segmentation facade re-exports the runners below, so it sits with them
    "wwm_fast.segmentation": RUNNERS, "wwm_fast.segmentation.pipeline": RUNNERS,
    "wwm_fast.segmentation.refs": RUNNERS, "wwm_fast.segmentation.train": RUNNERS,
    "wwm_fast.shard": SHARD, "wwm_fast.stats": SHARD,
    "wwm_fast.tokenization": STAGES, "wwm_fast.alignment": STAGES,
    "wwm_fast.instances": STAGES, "wwm_fast.masking": STAGES, "wwm_fast.tfrecord": STAGES,
    "wwm_fast.files": UTILITIES,
}


def _modules() -> Dict[str, Path]:
    """Module name -> source file (.py), or the package dir for a native extension."""
    found: Dict[str, Path] = {}
    ext = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    for root, dirs, files in os.walk(PACKAGE):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "__")))
        rel = Path(root).relative_to(PACKAGE.parent)
        prefix = ".".join(rel.parts)
        for name in sorted(files):
            if name == "__init__.py":
                found[prefix] = Path(root) / name
            elif name.endswith(".py"):
                found[f"{prefix}.{name[:-3]}"] = Path(root) / name
            elif name.endswith(ext) or name.endswith(".pyx"):
                found.setdefault(f"{prefix}.{name.split('.')[0]}", Path(root))
    return found


MODULES = _modules()


def _layer(module: str) -> int:
    if module in LAYERS:
        return LAYERS[module]
    if module.startswith("wwm_fast.commands."):
        return CLI
    if module.startswith("wwm_fast.segmentation."):  # segmenters, the registry, the cache
        return STAGES
    path = MODULES[module]
    if module.count(".") == 1 and module.split(".")[1].startswith("_"):
        # private top-level modules: native kernels, or small dependency-free helpers
        return KERNELS if path.is_dir() else UTILITIES
    raise AssertionError(f"{module} has no layer: add it to LAYERS in {__file__}")


def _resolve(module: str, is_package: bool, node) -> str:
    """The absolute name of what an ``ImportFrom`` names (``from ..x import y``: ``pkg.x``)."""
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _edges(module: str, path: Path) -> Set[str]:
    if path.is_dir():  # a native extension imports nothing of ours
        return set()
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    is_package = path.name == "__init__.py"
    out: Set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, is_package, node)
            for a in node.names:
                sub = f"{target}.{a.name}"
                out.add(sub if sub in MODULES else target)
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(
                node.targets[0], ast.Name):
            # lazy imports by table: the segmentation facade and the CLI's subcommands
            name, value = node.targets[0].id, node.value
            if name == "_EXPORTS" and is_package and isinstance(value, ast.Dict):
                out.update(f"{module}.{v.value}" for v in value.values)
            elif name == "COMMANDS" and module == "wwm_fast.cli":
                out.update(f"wwm_fast.commands.{t.elts[1].value}" for t in value.elts)
    return {m for m in out if m in MODULES and m != module}


GRAPH = {m: _edges(m, p) for m, p in MODULES.items()}


def _cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """Strongly connected components of more than one module (Tarjan), each as a path."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    found: List[List[str]] = []

    def visit(v: str):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_is_read():
    """The checks below see the real imports (guards against a reader that finds nothing)."""
    assert "wwm_fast.shard" in GRAPH["wwm_fast.create"]
    assert "wwm_fast.shard" in GRAPH["wwm_fast.beam"]
    assert "wwm_fast.segmentation.pipeline" in GRAPH["wwm_fast.segmentation"]
    assert "wwm_fast.commands.create" in GRAPH["wwm_fast.cli"]
    assert "wwm_fast._wordpiece" in GRAPH["wwm_fast.tokenization"]
    assert "wwm_fast.segmentation.ltp" in GRAPH["wwm_fast.segmentation.registry"]


def test_no_import_cycle():
    assert _cycles(GRAPH) == []


def test_cycle_check_finds_a_cycle():
    """The check itself: the cycles issue 12 removed are found when put back."""
    graph = {m: set(e) for m, e in GRAPH.items()}
    graph["wwm_fast.segmentation.base"].add("wwm_fast.segmentation.registry")  # base -> kinds
    graph["wwm_fast.shard"].add("wwm_fast.beam")  # create <-> beam, through the shard
    cycles = _cycles(graph)
    assert any({"wwm_fast.segmentation.base", "wwm_fast.segmentation.registry"} <= set(c)
               for c in cycles)
    assert any({"wwm_fast.shard", "wwm_fast.beam"} <= set(c) for c in cycles)


def test_imports_flow_downward():
    upward = [f"{a} (layer {_layer(a)}) imports {b} (layer {_layer(b)})"
              for a in sorted(GRAPH) for b in sorted(GRAPH[a]) if _layer(b) > _layer(a)]
    assert upward == []


def test_beam_imports_only_shard_and_stats_of_create():
    assert GRAPH["wwm_fast.beam"] <= {"wwm_fast.shard", "wwm_fast.stats", "wwm_fast.files"}


_OPTIONAL = {"wwm_fast.beam": "apache_beam"}  # module -> what it needs beyond the test deps


def test_start_up_loads_only_what_create_needs():
    """``wwm-fast create`` starts in ~0.2 s: the segmentation package, the progress bar, the
    process pool's machinery, Beam and hashlib load when they are used, not at import."""
    code = ("import sys, wwm_fast, wwm_fast.cli, wwm_fast.commands.create\n"
            "print(' '.join(sorted(sys.modules)))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=PACKAGE.parent, timeout=300, check=True)
    loaded = set(r.stdout.split())
    lazy = {"wwm_fast.segmentation", "tqdm", "concurrent.futures.process", "multiprocessing",
            "apache_beam", "hashlib", "tensorflow"}
    assert sorted(loaded & lazy) == []


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m != "wwm_fast.__main__"))
def test_all_names_exist(module):
    """``__all__`` is accurate: every name it lists is there (lazy ones included), once."""
    import importlib

    if _OPTIONAL.get(module):
        pytest.importorskip(_OPTIONAL[module])
    mod = importlib.import_module(module)
    names = list(getattr(mod, "__all__", []))
    assert len(names) == len(set(names))
    assert [n for n in names if not hasattr(mod, n)] == []


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m != "wwm_fast.__main__"))
def test_imports_alone_in_a_fresh_interpreter(module):
    need = _OPTIONAL.get(module)
    if need is not None:
        pytest.importorskip(need)
    r = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True,
                       text=True, cwd=PACKAGE.parent, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
