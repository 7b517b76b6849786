"""``neurosim lower``: lower a checkpoint to the event-level graph and print its nodes."""
from __future__ import annotations

from neurosim.cli.common import emit, load_model, lower_from_args


def cmd_lower(args) -> int:
    from neurosim.ir.units import format_table
    from neurosim.report.graph_table import COLUMNS, graph_rows, totals

    model = load_model(args)
    graph = lower_from_args(model, args)
    out = graph.save(args.out) if args.out else None
    rows, tot = graph_rows(graph), totals(graph)
    emit(args, {"graph_dir": str(out) if out else None, "totals": tot, "nodes": rows},
         [format_table(rows, COLUMNS), "",
          f"{tot['nodes']} nodes, {tot['neurons']:,} neurons, {tot['weights']:,} weights "
          f"({graph.meta['weight_bits']}-bit), {tot['spike_edges']} spike / "
          f"{tot['graded_edges']} graded edges, T={tot['T']}, RepConv {graph.meta['repconv']}, "
          f"SSC {'on' if graph.meta['ssc'] else 'off'}"]
         + ([f"graph written to {out}"] if out else []))
    return 0
