"""neurosim: what a trained spiking transformer costs on a neuromorphic chip.

    graph  = neurosim.lower(model, example_input, weight_bits=8)
    result = neurosim.interpret(graph, inputs)          # the reference interpreter
    neurosim.load_graph(directory); graph.save(directory)
    chip   = neurosim.load_chip("tianjic-x16")
    result = neurosim.simulate(graph, chip, inputs, mode="sync" | "async")
    cmp    = neurosim.compare(graph, ["tianjic-x16", "speck-xl"], inputs, labels)
"""
__version__ = "0.1.0"

from .graph import Graph, GraphError
from .lower import lower, LoweringError
from .interp import run as interpret
from chips.spec import load_chip
from .simulate import simulate
from .compare import compare


def load_graph(directory) -> Graph:
    """Read a graph written by ``Graph.save`` / ``neurosim lower --out``."""
    return Graph.load(directory)


__all__ = ["Graph", "GraphError", "lower", "LoweringError", "interpret", "load_graph",
           "load_chip", "simulate", "compare"]
