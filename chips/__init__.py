"""Chip models, one layer above the IR (they import ``neurosim.ir`` and nothing else of neurosim):
``spec`` (chip files: the TOML beside this package, with a source for every number),
``energy_table`` (per-action energies, ``energy/*.toml``), ``toml_schema`` (reading, merging and
checking those files), ``topology`` (mesh geometry, hops, routes), ``mapping`` (graph -> cores:
layer needs, capacity checks, placement) and ``engines`` (the synchronous and asynchronous
chip engines)."""
