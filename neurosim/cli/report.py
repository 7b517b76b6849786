"""``neurosim report``: re-render a run directory's report from its result.json."""
from __future__ import annotations

from neurosim.cli.common import emit


def cmd_report(args) -> int:
    from neurosim.report.markdown import render_report

    path = render_report(args.run_dir)
    d = path.parent
    files = sorted(str(p.relative_to(d)) for p in d.rglob("*") if p.is_file())
    emit(args, {"report": str(path), "files": files},
         [f"re-rendered {path} from {d / 'result.json'}",
          f"{sum(f.endswith('.png') for f in files)} plots, "
          f"{sum(f.endswith('.csv') for f in files)} CSV tables in {d}/"])
    return 0
