"""The layers of the code base, enforced from the source: every import (module level or inside a
function) goes down the stack, never up, and no two modules import each other through a cycle.

    models, workloads  (the training stack and the data; below the simulator)
    neurosim.ir  ->  neurosim.reference  ->  neurosim.frontends  ->  chips
        ->  neurosim.costing  ->  neurosim.run  ->  neurosim.report  ->  neurosim.cli

``neurosim/__init__.py`` is a lazy facade above all of them (it names modules as strings).
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("neurosim", "chips", "models", "workloads")

STACK = ["neurosim.ir", "neurosim.reference", "neurosim.frontends", "chips", "neurosim.costing",
         "neurosim.run", "neurosim.report", "neurosim.cli"]
# each layer may import itself and the layers listed; models/workloads sit below everything
ALLOWED = {
    "models": {"models", "workloads"},
    "workloads": {"workloads"},
    "neurosim.ir": {"neurosim.ir"},
    "neurosim.reference": {"neurosim.ir", "neurosim.reference"},
    "neurosim.frontends": {"neurosim.ir", "neurosim.reference", "neurosim.frontends",
                           "models", "workloads"},
    "chips": {"neurosim.ir", "chips"},          # chips know the IR, not how it was made
}
for i, layer in enumerate(STACK[4:], start=4):  # costing and above: everything below them
    ALLOWED[layer] = set(STACK[:i + 1]) | {"models", "workloads"}
ALLOWED["neurosim"] = set(STACK) | {"models", "workloads", "neurosim"}
# third-party modules a layer must never import (it would load them for every user of it)
FORBIDDEN_THIRD_PARTY = {
    "neurosim.ir": {"torch", "numba", "simpy", "matplotlib", "scipy", "nir"},
    "neurosim.reference": {"torch", "numba", "simpy", "matplotlib"},
    "chips": {"torch", "matplotlib", "nir"},
}


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for f in sorted((ROOT / pkg).rglob("*.py")):
            rel = f.relative_to(ROOT).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            out[".".join(parts)] = f
    return out


MODULES = _modules()


def layer_of(module: str) -> str | None:
    for layer in sorted(ALLOWED, key=len, reverse=True):
        if module == layer or module.startswith(layer + "."):
            return layer
    return None


def imports_of(module: str, path: Path) -> list[tuple[str, int]]:
    """(imported module, line) for every import statement in the file, relative ones resolved;
    ``from pkg import name`` names the submodule ``pkg.name`` when there is one."""
    is_pkg = path.name == "__init__.py"
    base = module.split(".") if is_pkg else module.split(".")[:-1]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                pkg = ".".join(base[:len(base) - node.level + 1] + ([node.module] if node.module
                                                                     else []))
            else:
                pkg = node.module
            for a in node.names:
                sub = f"{pkg}.{a.name}"
                out.append((sub if sub in MODULES else pkg, node.lineno))
    return out


def _project_edges():
    for mod, path in MODULES.items():
        for target, line in imports_of(mod, path):
            yield mod, path, target, line


def test_every_import_goes_down_the_stack():
    bad = []
    for mod, path, target, line in _project_edges():
        src, dst = layer_of(mod), layer_of(target)
        if dst is None:                                    # third party or stdlib
            top = target.split(".")[0]
            if top in FORBIDDEN_THIRD_PARTY.get(src, ()) and not mod.startswith("chips.engines"):
                bad.append(f"{path.relative_to(ROOT)}:{line} ({src}) imports {target}")
            continue
        if dst not in ALLOWED[src]:
            bad.append(f"{path.relative_to(ROOT)}:{line} ({src}) imports {target} ({dst})")
    assert not bad, "imports against the layer rule:\n" + "\n".join(bad)


def test_no_import_cycles():
    g = nx.DiGraph()
    for mod, _, target, _ in _project_edges():
        if target in MODULES and target != mod:
            g.add_edge(mod, target)
    cycles = [c for c in nx.simple_cycles(g)]
    assert not cycles, "module-level import cycles:\n" + "\n".join(" -> ".join(c + c[:1])
                                                                   for c in cycles[:10])


def test_the_rule_itself_catches_an_upward_import(tmp_path):
    """The checker is not vacuous: an import from chips into the run layer is reported."""
    f = tmp_path / "probe.py"
    f.write_text("from neurosim.run.simulate import simulate\nimport torch\n")
    found = imports_of("chips.probe", f)
    assert ("neurosim.run.simulate", 1) in found
    assert layer_of("neurosim.run.simulate") not in ALLOWED["chips"]
    assert "torch" in FORBIDDEN_THIRD_PARTY["chips"]


@pytest.mark.parametrize("module", ["neurosim", "neurosim.ir", "neurosim.ir.graph",
                                    "neurosim.reference.interp", "chips.spec", "chips.mapping"])
def test_light_modules_load_no_torch_or_numba(module):
    code = (f"import sys, {module}; heavy = sorted({{'torch', 'numba'}} & set(sys.modules)); "
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "", f"import {module} loaded {out}"
