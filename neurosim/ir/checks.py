"""Per-node input checks used by ``Graph.validate``: shapes and edge kinds of each port."""
from __future__ import annotations

from neurosim.ir import ops as G


def check_node(op: "G.Node", ins: list["G.Node"], kinds: list[str]) -> None:
    shapes = [i.shape for i in ins]

    def need(cond: bool, msg: str):
        if not cond:
            op.fail(msg + f" (inputs: {', '.join(f'{i.name} {i.shape}' for i in ins)})")

    if isinstance(op, (G.Conv, G.Linear, G.Pool)):
        need(shapes[0] == op.in_shape, f"expects input shape {op.in_shape}")
    elif isinstance(op, (G.Neurons, G.Readout)):
        need(shapes[0] == op.shape, f"expects input shape {op.shape}")
    elif isinstance(op, G.Add):
        need(all(s == op.shape for s in shapes), f"all inputs must have shape {op.shape}")
    elif isinstance(op, G.SpikeMatmul):
        q, k, v = shapes
        need(len(q) == 3 and q == k, "q and k must share a (C, H, W) shape")
        need(len(v) == 3 and v[1:] == q[1:], "v must have the tokens of q")
        need(op.shape == v, f"output shape must equal v's {v}")
        need(all(kd == "spike" for kd in kinds), "spike x spike product needs spike inputs")
    elif isinstance(op, G.TokenSum):
        need(all(s == shapes[0] for s in shapes) and len(shapes[0]) == 3,
             "inputs must share a (C, H, W) shape")
        need(op.shape == (shapes[0][0], 1, 1), f"output must be {(shapes[0][0], 1, 1)}")
        need(all(kd == "spike" for kd in kinds), "token sum of products needs spike inputs")
    elif isinstance(op, G.Mask):
        a, b = shapes
        need(len(a) == 3 and len(b) == 3 and a[0] == b[0], "mask inputs need equal channels")
        need(all(x == y or y == 1 or x == 1 for x, y in zip(a[1:], b[1:])),
             "mask inputs must broadcast over tokens")
        need(op.shape == (a[0], max(a[1], b[1]), max(a[2], b[2])), "wrong output shape")
    elif isinstance(op, G.TokenMean):
        need(len(shapes[0]) == 3 and op.shape == (shapes[0][0],),
             f"maps (C, H, W) to (C,), got {shapes[0]} -> {op.shape}")
    elif hasattr(op, "check_inputs"):            # node types that check their own inputs
        op.check_inputs(shapes, kinds, need)
