"""neurosim: what a trained spiking transformer costs on a neuromorphic chip.

The simulator core: event-level graph IR, lowering, reference interpreter, mapping, energy,
reports, plots and the ``neurosim`` command line.
"""
__version__ = "0.1.0"
