"""Training-free architecture search for spiking transformers (AutoST, seed ``autost``).

    space = search.get_space("micro-tiny")            # or search.load_space("space.toml")
    window = search.parse_window("0.1M:0.15M")
    legal = search.Legality(space, window)              # members with 0.1M..0.15M parameters
    result = search.evolve(legal, search.batch(lambda a: search.flops_paper(a, space.inputs)))

* :mod:`models.search.space`: architectures (``Arch``), search spaces (the paper's tiny / small /
  base and ``micro-*`` spaces of the same structure with 1/8 the widths), parameter windows and
  legality checks.
* :mod:`models.search.analytic`: the exact parameter count and the paper's FLOPs (eq. 4-5 x T),
  both closed-form (no torch).
* :mod:`models.search.syops`: the released code's count (syops-counter rules on an all-ones
  input; torch).
* :mod:`models.search.evolution`: the released code's evolutionary search, seeded.
* :mod:`models.search.nsga`: NSGA-II parent order (non-dominated front, crowding distance) for
  energy-accuracy searches.
* :mod:`models.search.rank`: Kendall / Spearman tau with bootstrap confidence intervals.

Scores that need the simulator (event-level energy, "fits chip X") live above the models layer,
in :mod:`neurosim.run.search_eval`.
"""
from .analytic import flops_paper, param_count
from .evolution import SearchResult, batch, evolve
from .space import (SPACES, Arch, InputSpec, Legality, SearchSpace, SearchSpaceError,
                    get_space, list_spaces, load_space, parse_window)

__all__ = ["SPACES", "Arch", "InputSpec", "Legality", "SearchResult", "SearchSpace",
           "SearchSpaceError", "batch", "evolve", "flops_paper", "get_space", "list_spaces",
           "load_space", "param_count", "parse_window"]
