"""Hypothesis mutators shared by the fuzz tests: structured edits of a parsed document (JSON or
TOML as nested dicts and lists), raw byte edits of a file, a small TOML writer, and the harness
that runs one case and classifies its outcome.

A structured edit walks from the root to a random node (stopping at each level with some
probability, so top-level structure is hit as often as deep leaves) and deletes it, replaces it
with a hostile value, copies another node's value there (plausible but wrong structure), scales a
number, or adds a key. Byte edits flip, delete, insert, duplicate or truncate.
"""
from __future__ import annotations

import copy
import json
import math
from collections import Counter

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

HOSTILE = st.one_of(
    st.none(), st.booleans(),
    st.sampled_from([0, 1, -1, 2, 3, 2 ** 31, -2 ** 31, 2 ** 63 - 1, 2 ** 63, 10 ** 9, 10 ** 30]),
    st.integers(-10 ** 6, 10 ** 6),
    st.sampled_from([0.0, -0.0, 0.5, -1.5, 1e-300, 1e300, -1e300, math.inf, -math.inf,
                     math.nan, 1e18, 2.5e9]),
    st.floats(allow_subnormal=False, width=64),
    st.sampled_from(["", "zzz", "0", "1e3", "true", "null", "\u00e9\u20ac", "a/b", "..",
                     "tianjic", "speck", "sync", "async", "mesh", "flat", "lif", "spike"]),
    st.text(max_size=6),
    st.just([]), st.just({}), st.lists(st.integers(-3, 3), max_size=3),
    st.dictionaries(st.sampled_from(["value", "source", "x"]), st.integers(0, 3), max_size=2),
)

# number of cases run per format by the soak tests (pytest -m soak)
SOAK_CASES = 1100
DEFAULT = dict(deadline=None, database=None, derandomize=True,
               suppress_health_check=list(HealthCheck))
SOAK = dict(deadline=None, database=None, max_examples=SOAK_CASES,
            suppress_health_check=list(HealthCheck))


def fuzz_settings(n: int):
    """Settings of a default-suite fuzz test: ``n`` cases from a fixed seed (never red by
    chance: the same cases every run)."""
    return settings(max_examples=n, **DEFAULT)


def soak_settings():
    return settings(**SOAK)


def fuzz_cases(check, *args, n: int | None = None, **kw) -> "Outcomes":
    """Run ``check(data, *args, outcomes=..., **kw)`` on hypothesis-drawn cases: ``n`` cases
    with :func:`fuzz_settings` (the default suite), or the soak settings when ``n`` is None.
    Returns the classified outcomes."""
    from hypothesis import given
    out = Outcomes()

    @(fuzz_settings(n) if n else soak_settings())
    @given(st.data())
    def run(data):
        check(data, *args, outcomes=out, **kw)
    run()
    return out


# ----------------------------------------------------------------------------- structured
def _children(node) -> list:
    if isinstance(node, dict):
        return list(node)
    if isinstance(node, list):
        return list(range(len(node)))
    return []


def _walk(data, doc) -> list:
    """A random path (list of keys / indices) from the root of ``doc``."""
    path, node = [], doc
    while True:
        kids = _children(node)
        if not kids or (path and data.draw(st.integers(0, 9)) < 3):
            return path
        k = kids[data.draw(st.integers(0, len(kids) - 1))]
        path.append(k)
        node = node[k]


def _get(doc, path):
    for k in path:
        doc = doc[k]
    return doc


def mutate_doc(data, doc, max_edits: int = 3, extra_values=()):
    """A copy of ``doc`` (nested dicts and lists) with 1..max_edits random edits."""
    doc = copy.deepcopy(doc)
    for _ in range(data.draw(st.integers(1, max_edits))):
        path = _walk(data, doc)
        if not path:
            continue
        parent, key = _get(doc, path[:-1]), path[-1]
        op = data.draw(st.sampled_from(["delete", "hostile", "copy", "scale", "add", "hostile"]))
        if op == "delete":
            del parent[key]
        elif op == "hostile":             # a copy: later edits must not change the constants
            parent[key] = copy.deepcopy(data.draw(st.one_of(HOSTILE, *[st.just(v) for v in
                                                                       extra_values])))
        elif op == "copy":
            other = _walk(data, doc)
            parent[key] = copy.deepcopy(_get(doc, other))
        elif op == "scale":
            v = parent[key]
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                f = data.draw(st.sampled_from([-1, 0, 2, 1000, 10 ** 9, 1e-9, 0.5]))
                parent[key] = v * f
            else:
                parent[key] = copy.deepcopy(data.draw(HOSTILE))
        elif isinstance(parent, dict):
            name = data.draw(st.sampled_from(["extra", "value", "name", "T", "kind", key]))
            parent[f"{name}_" if name == key else name] = copy.deepcopy(data.draw(HOSTILE))
        else:
            parent.insert(key, copy.deepcopy(parent[key]))
    return doc


# ----------------------------------------------------------------------------- bytes
def mutate_bytes(data, raw: bytes, max_edits: int = 3) -> bytes:
    """``raw`` with 1..max_edits byte-level edits."""
    b = bytearray(raw)
    for _ in range(data.draw(st.integers(1, max_edits))):
        if not b:
            b += data.draw(st.binary(min_size=1, max_size=8))
            continue
        i = data.draw(st.integers(0, len(b) - 1))
        op = data.draw(st.sampled_from(["flip", "delete", "insert", "dup", "truncate", "set"]))
        if op == "flip":
            b[i] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "set":
            b[i] = data.draw(st.sampled_from([0, 0xFF, 0x7F, 0x80, ord("9"), ord('"')]))
        elif op == "delete":
            del b[i:i + data.draw(st.integers(1, 16))]
        elif op == "insert":
            b[i:i] = data.draw(st.binary(min_size=1, max_size=8))
        elif op == "dup":
            b[i:i] = b[i:i + data.draw(st.integers(1, 32))]
        else:
            del b[i:]
    return bytes(b)


# ----------------------------------------------------------------------------- TOML writer
def _key(k: str) -> str:
    bare = k and all(c.isalnum() or c in "-_" for c in k) and k.isascii()
    return k if bare else json.dumps(k)


def _val(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) \
            else repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_val(x) for x in v if x is not None) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_key(str(k))} = {_val(x)}" for k, x in v.items()
                               if x is not None) + "}"
    return json.dumps(str(v))


def to_toml(doc: dict) -> str:
    """TOML text of ``doc``: top-level tables of plain tables become ``[sections]``, everything
    else is written inline (None values are left out: TOML has no null)."""
    lines, sections = [], []
    for k, v in doc.items():
        if v is None:
            continue
        if isinstance(v, dict) and v and "value" not in v \
                and all(isinstance(x, dict) or x is None or isinstance(x, str) for x in
                        v.values()):
            sections.append((k, v))
        else:
            lines.append(f"{_key(str(k))} = {_val(v)}")
    for k, v in sections:
        lines += ["", f"[{_key(str(k))}]"]
        lines += [f"{_key(str(kk))} = {_val(x)}" for kk, x in v.items() if x is not None]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- harness
class Outcomes:
    """Outcome counts of a fuzz run: ``ok``, or the name of the typed error raised."""

    def __init__(self):
        self.counts: Counter = Counter()

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def run(self, fn, allowed: tuple):
        """Run one case; a typed error in ``allowed`` is an acceptable outcome (counted), any
        other exception escapes and fails the test (hypothesis shrinks it)."""
        try:
            fn()
        except allowed as e:
            self.counts[type(e).__name__] += 1
            assert str(e).strip(), f"{type(e).__name__} with an empty message"
            return e
        self.counts["ok"] += 1
        return None

    def __str__(self) -> str:
        return f"{self.total} cases: " + ", ".join(f"{k} {v}" for k, v in
                                                   sorted(self.counts.items()))
