"""The IR layer: what every other layer speaks. numpy + networkx only; importing it loads no
torch, numba, SimPy or matplotlib (tests/test_layers.py).

- ``ops``: the operations (graph nodes) as validating dataclasses; ``checks``: per-node input
  checks; ``graph``: the ``Graph`` DAG, its pipeline stages and its file format.
- ``semantics``: the integer and neuron rules that the interpreter and every engine implement
  bit for bit; ``addressing``: spike addresses and convolution fan-out.
- ``counts``: operation categories and exact counters; ``result``: ``RunResult``, what an engine
  returns; ``units``: SI quantities and tables for people.
"""
