"""Running graphs on chips: ``simulate`` (engine registry: one call builds the mapping and the
engine and runs it), ``compare`` (the same inputs on several chips and modes, batching of long
runs), ``inputs`` (a model's workload as engine inputs) and ``bench`` (kernel and engine speed)."""
