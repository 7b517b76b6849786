"""What users read: ``markdown`` (report.md, CSVs and result.json from a comparison, re-rendered
byte for byte), ``plots`` (energy, latency, timelines, energy vs accuracy) and ``graph_table``
(the per-node table of ``neurosim lower``)."""
