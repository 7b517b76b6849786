"""neurosim: what a trained spiking transformer costs on a neuromorphic chip.

    graph  = neurosim.lower(model, example_input, weight_bits=8)
    result = neurosim.interpret(graph, inputs)          # the reference interpreter
    neurosim.load_graph(directory); graph.save(directory)
    chip   = neurosim.load_chip("tianjic-x16")
    result = neurosim.simulate(graph, chip, inputs, mode="sync" | "async")
    cmp    = neurosim.compare(graph, ["tianjic-x16", "speck-xl"], inputs, labels)

A lazy facade (PEP 562): each name is imported on first use, so ``import neurosim`` loads
neither torch nor numba. Layers, each importing only those before it (tests/test_layers.py):

    neurosim.ir -> neurosim.reference -> neurosim.frontends -> chips
        -> neurosim.costing -> neurosim.run -> neurosim.report -> neurosim.cli
"""
from importlib import import_module

__version__ = "0.1.0"

_API = {  # public name -> (module, attribute)
    "Graph": ("neurosim.ir.graph", "Graph"),
    "GraphError": ("neurosim.ir.graph", "GraphError"),
    "RunResult": ("neurosim.ir.result", "RunResult"),
    "load_graph": ("neurosim.ir.graph", "load_graph"),
    "interpret": ("neurosim.reference.interp", "run"),
    "lower": ("neurosim.frontends.user_models", "lower"),
    "LoweringError": ("neurosim.frontends.lower", "LoweringError"),
    "register_lowering": ("neurosim.frontends.user_models", "register_lowering"),
    "stepwise": ("neurosim.frontends.stepwise", "stepwise"),
    "load_chip": ("chips.spec", "load_chip"),
    "simulate": ("neurosim.run.simulate", "simulate"),
    "compare": ("neurosim.run.compare", "compare"),
}

__all__ = sorted(_API)


def __getattr__(name: str):
    try:
        module, attr = _API[name]
    except KeyError:
        raise AttributeError(f"module 'neurosim' has no attribute {name!r}") from None
    value = getattr(import_module(module), attr)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_API))
