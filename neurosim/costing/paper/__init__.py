"""Paper mode: the seed papers' analytic energy estimate (``estimate``), the named conventions
the papers used (``conventions``) and its exact comparison with the event-level count of the
same model (``compare``)."""
from neurosim.costing.paper.compare import DELTAS, PaperComparison, compare_paper_event
from neurosim.costing.paper.conventions import (CONVENTIONS, Convention, get_convention,
                                                published_energy_j,
                                                spikformer_published_energies)
from neurosim.costing.paper.estimate import PAPER_TABLE, PaperEstimate, PaperLayer, paper_estimate

__all__ = ["CONVENTIONS", "Convention", "DELTAS", "PAPER_TABLE", "PaperComparison",
           "PaperEstimate", "PaperLayer", "compare_paper_event", "get_convention",
           "paper_estimate", "published_energy_j", "spikformer_published_energies"]
