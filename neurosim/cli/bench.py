"""``neurosim bench``: benchmark the simulator on this machine."""
from __future__ import annotations

from neurosim.cli.common import UsageError, emit


def _flat(d, prefix="") -> list[str]:
    out = []
    for k, v in d.items():
        if isinstance(v, dict):
            out += _flat(v, f"{prefix}{k}.")
        elif isinstance(v, float):
            out.append(f"{prefix}{k}: {v:.4g}")
        else:
            out.append(f"{prefix}{k}: {v}")
    return out


def cmd_bench(args) -> int:
    from neurosim.run import bench as bench
    if args.what == "kernels":
        res = bench.bench_kernels(repeat=args.repeat)
    else:
        fn = getattr(bench, "bench_model", None)
        if fn is None:
            raise UsageError("this installation has no neurosim.run.bench.bench_model")
        res = fn()
    emit(args, res, _flat(res))
    return 0
