"""An append-only JSON-lines log of completed evaluations, so that an interrupted sweep, search
or study resumes from its completed points.

Line 1 is ``{"header": {...}}`` (what the log belongs to: e.g. the hash of the sweep config);
every further line is one completed evaluation ``{"key": ..., ...}``, written, flushed and
fsynced as soon as the evaluation finishes. A process killed while writing leaves at most one
incomplete last line (no newline, or not valid JSON): reading the log discards such lines,
rewrites the file without them (atomically) and counts them in ``discarded``; their points
are simply run again. A log whose header differs from the caller's is another run's: opening
it is an error unless ``restart`` (which starts a new log).
"""
from __future__ import annotations

import json
import os
from pathlib import Path


class ResultLogError(ValueError):
    """The log belongs to a different run (the message names the file and how to proceed)."""


class ResultLog:
    """Completed evaluations by key (``done``), read from ``path`` and appended to."""

    def __init__(self, path, header: dict, *, restart: bool = False):
        self.path, self.header = Path(path), json.loads(json.dumps(header, sort_keys=True))
        self.done: dict[str, dict] = {}
        self.discarded = 0
        if restart and self.path.exists():
            self.path.unlink()
        if self.path.exists():
            self._read()
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._rewrite()

    @staticmethod
    def _line(obj: dict) -> str:
        return json.dumps(obj, sort_keys=True, allow_nan=False) + "\n"

    def _read(self) -> None:
        text = self.path.read_bytes().decode("utf-8", errors="replace")
        *lines, tail = text.split("\n")
        bad = 1 if tail else 0                        # the last line has no newline: cut short
        recs = []
        for line in lines:
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                bad += 1
                continue
            recs.append(obj)
        if not recs or "header" not in recs[0]:       # even the header was cut short
            self.discarded, self.done = bad + len(recs), {}
            self._rewrite()
            return
        if recs[0]["header"] != self.header:
            raise ResultLogError(
                f"{self.path} holds the results of another run (header {recs[0]['header']}, "
                f"this run {self.header}); write to another directory or restart it")
        for r in recs[1:]:
            if isinstance(r, dict) and isinstance(r.get("key"), str):
                self.done[r["key"]] = r
            else:
                bad += 1
        self.discarded = bad
        if bad:
            self._rewrite()

    def _rewrite(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w") as f:
            f.write(self._line({"header": self.header}))
            for r in self.done.values():
                f.write(self._line(r))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def append(self, key: str, record: dict) -> dict:
        """Record one completed evaluation (durably) and return the stored record."""
        rec = {**record, "key": key}
        line = self._line(rec)
        with open(self.path, "a") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        self.done[key] = json.loads(line)
        return self.done[key]


__all__ = ["ResultLog", "ResultLogError"]
