"""Chip engines: ``base`` (the run scaffold both share: set-up, routing counts, tallies,
recording, result), ``sync`` (global clock, pipelined ticks), ``asynchronous`` (event-driven on
SimPy), ``executors`` (one node's time step, channels-last, with exact counts) and ``kernels``
(Numba scatter, neuron and exact dense kernels)."""
