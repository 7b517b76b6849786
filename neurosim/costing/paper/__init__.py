"""Paper mode: the seed papers' analytic energy estimate (``estimate``) and its exact comparison
with the event-level count of the same model (``compare``)."""
from neurosim.costing.paper.compare import DELTAS, PaperComparison, compare_paper_event
from neurosim.costing.paper.estimate import PAPER_TABLE, PaperEstimate, PaperLayer, paper_estimate

__all__ = ["DELTAS", "PAPER_TABLE", "PaperComparison", "PaperEstimate", "PaperLayer",
           "compare_paper_event", "paper_estimate"]
