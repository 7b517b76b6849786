"""neurosim: what a trained spiking transformer costs on a neuromorphic chip.

    graph  = neurosim.lower(model, example_input, weight_bits=8)
    result = neurosim.interpret(graph, inputs)          # the reference interpreter
    neurosim.load_graph(directory); graph.save(directory)
"""
__version__ = "0.1.0"

from .graph import Graph, GraphError
from .lower import lower, LoweringError
from .interp import run as interpret


def load_graph(directory) -> Graph:
    """Read a graph written by ``Graph.save`` / ``neurosim lower --out``."""
    return Graph.load(directory)


__all__ = ["Graph", "GraphError", "lower", "LoweringError", "interpret", "load_graph"]
