"""Ways into the IR (torch lives here): ``lower`` (a trained PyTorch model -> ``Graph``, a
registry {module type: lowering function}), ``twin`` (the quantized PyTorch twin, bit-exact with
the graph) and ``nir`` (NIR export and import, for snntorch, norse, sinabs and others)."""
