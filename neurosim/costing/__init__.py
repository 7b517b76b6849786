"""Prices on counts: ``energy`` joins a run's operation counts with a chip's energy table and
static power (architecture, per-action costs and counts kept apart, joined in one pure function);
``paper`` is the seed papers' analytic estimate and its exact comparison with the event count."""
