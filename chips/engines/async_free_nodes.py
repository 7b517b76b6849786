"""Node state of free-running asynchronous execution (``chips.engines.async_free``).

Messages (``Msgs``) are events in time order: a spike (count 1), or a graded value change
(value after, change), tagged with the window (time step) of the node that emitted it. Every
node keeps per-window state; a window starts at the *baselines* of its inputs, what the chip
holds before any event of the window (``baselines``: biases and what follows from them; 0
for spikes and for operations that need a complete operand, which have produced nothing yet).

* ``Projection`` (Conv, Linear): each input event scatters into an exact integer accumulator
  (graded inputs first requantized: the change of the quantized input is the event) and
  every output it changes is emitted as a graded change (Numba kernels, ``kernels.free``).
* ``Sum`` (Add): each input change re-evaluates the sum in port order.
* ``Population`` (Neurons): each input change re-evaluates the membrane; the neuron fires the
  moment it reaches threshold, at most once per window (IF / LIF) or D times (SFA bursts). A
  window's start is the leak tick: the membrane carries over (lif_charge applies the leak) and
  neurons the baseline input alone drives over threshold fire then.
* ``Complete`` (SpikeMatmul, TokenSum, Mask, TokenMean, Pool, Readout): operations that need a
  complete operand accumulate their inputs per window and compute when the window is closed
  (by the end-of-window token or the timeout, ``async_free``); later events of a closed
  window are late and lost.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurosim.ir import graph as G
from chips.engines import kernels as K
from chips.engines.executors import CAT, ConvExec
from chips.engines.kernels import free as F


@dataclass
class Msgs:
    """Events in time order: times, flat channels-last addresses, window tags, and ``a`` (a
    spike's count, or a graded value after the change) and ``d`` (the change; None for
    spikes)."""

    t: np.ndarray
    addr: np.ndarray
    win: np.ndarray
    a: np.ndarray
    d: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.t)

    def take(self, sel) -> "Msgs":
        return Msgs(self.t[sel], self.addr[sel], self.win[sel], self.a[sel],
                    None if self.d is None else self.d[sel])

    @staticmethod
    def join(parts: list["Msgs"]) -> "Msgs":
        """The messages of ``parts`` in one time order (stable: ties keep their order)."""
        if len(parts) == 1:
            return parts[0]
        m = Msgs(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("t", "addr", "win",
                                                                            "a")),
                 None if parts[0].d is None else np.concatenate([p.d for p in parts]))
        return m.take(np.argsort(m.t, kind="stable"))


def spikes(t: np.ndarray, addr: np.ndarray, w: int) -> Msgs:
    return Msgs(t, addr.astype(np.int64), np.full(len(t), w, np.int64), np.ones(len(t)))


COMPLETE = (G.SpikeMatmul, G.TokenSum, G.Mask, G.TokenMean, G.Pool, G.Readout)


def baselines(eng) -> dict[str, np.ndarray]:
    """What each node's consumers hold (channels-last) at the start of a window, before any
    event of it: the output of a projection or sum on its inputs' baselines (biases, and what
    follows from them: values configured on the chip); 0 for spikes, the input, and the
    operations that need a complete operand (nothing of theirs exists until they compute)."""
    graph, out = eng.graph, {}
    dummy = {}
    for v in eng.order:
        op = graph.op(v)
        shape = op.shape[1:] + op.shape[:1] if len(op.shape) == 3 else op.shape
        if isinstance(op, (G.Input, G.Neurons) + COMPLETE):
            out[v] = np.zeros(shape)
            continue
        c = dummy.setdefault(v, eng.new_counts(v))
        out[v] = np.asarray(eng.execs[v].step([out[u] for u in eng.inputs_of[v]], c),
                            np.float64).reshape(shape)
    return out


class Node:
    """State of one node on the cores holding its parts (module doc)."""

    complete = False

    def __init__(self, sim, v: str):
        self.sim, self.v = sim, v
        eng = sim.eng
        self.op, self.e = eng.graph.op(v), eng.execs[v]
        self.base = sim.base[v].reshape(-1)
        self.C = self.op.shape[0]
        self.ranges = {c: [eng.parts[v][j][1:] for j in idx]
                       for c, idx in eng.core_part[v].items()}
        n = self.base.size
        self.idx = {c: np.flatnonzero(np.isin(np.arange(n) % self.C,
                                              np.concatenate([np.arange(a, b) for a, b in r])))
                    for c, r in self.ranges.items()}
        self.val = self.base.copy()

    def count(self, core: int, cat: str, n) -> None:
        self.sim.counts[self.v][self.sim.eng.core_part[self.v][core][0], CAT[cat]] += int(n)

    def open(self, core: int, w: int, t: float) -> Msgs | None:
        """Start window ``w`` on ``core`` at time ``t``."""
        i = self.idx[core]
        self.val[i] = self.base[i]
        return None

    def close(self, core: int, w: int, t: float) -> Msgs | None:
        """End window ``w`` on ``core`` (records the window's output)."""
        self.sim.record(self.v, w, self.val, self.idx[core])
        return None

    def graded(self, t, addr, absv, dv, w: int) -> Msgs:
        keep = dv != 0
        return Msgs(t[keep], addr[keep], np.full(int(keep.sum()), w, np.int64), absv[keep],
                    dv[keep])


class Projection(Node):
    """Conv / Linear (module doc)."""

    def __init__(self, sim, v: str):
        super().__init__(sim, v)
        eng = sim.eng
        self.conv = isinstance(self.e, ConvExec)
        if self.conv and self.op.ssc:
            self.op.fail("free-running mode does not model spike sparse convolution (SSC); "
                         "lower without --ssc or use async_mode='windowed'")
        self.graded_in = self.e.graded
        u = eng.inputs_of[v][0]
        self.in_shape = sim.base[u].shape
        self.acc0 = self._acc(sim.base[u].reshape(-1))
        self.acc = self.acc0.copy()
        if self.graded_in:
            op = self.op
            self.lo, self.hi = -(2.0 ** (op.in_bits - 1)), 2.0 ** (op.in_bits - 1) - 1
            self.x0 = sim.base[u].reshape(-1).copy()
            self.q0 = np.clip(np.rint(self.x0 / op.in_scale), self.lo, self.hi)
            self.x = {c: self.x0.copy() for c in self.ranges}
            self.q = {c: self.q0.copy() for c in self.ranges}

    def _acc(self, x0: np.ndarray) -> np.ndarray:
        """The integer accumulator of the baseline input (quantized when graded)."""
        op = self.op
        acc = np.zeros(self.base.size, np.int64)
        if not self.e.graded or not np.any(x0):
            return acc
        q = np.clip(np.rint(x0 / op.in_scale), -(2.0 ** (op.in_bits - 1)),
                    2.0 ** (op.in_bits - 1) - 1)
        nz = np.flatnonzero(q)
        val = np.zeros(self.base.size)
        self._scatter(np.zeros(len(nz)), nz, q[nz].astype(np.int64), 0, self.C, acc, val)
        return acc

    def _scatter(self, t, addr, cnt, c0, c1, acc, val):
        op = self.op
        fan = (op.kernel ** 2 * (self.C // op.groups)) if self.conv else (c1 - c0)
        n = len(addr) * fan
        out = (np.empty(n), np.empty(n, np.int64), np.empty(n), np.empty(n))
        if self.conv:
            Ci, H, W = op.in_shape
            Co, Ho, Wo = op.shape
            m = F.conv_events(t, addr, cnt, Ci, W, self.e.w_cl, op.stride, op.padding,
                              op.groups, Ho, Wo, Co, c0, c1, acc, op.scale, op.bias, val, *out)
        else:
            idx = addr
            if self.e.map_input:                # channels-last -> the graph's channel-major
                H, W, Ci = self.in_shape
                idx = (addr % Ci) * (H * W) + addr // Ci
            m = F.linear_events(t, idx, cnt, self.e.w_t, c0, c1, acc, op.scale, op.bias, val,
                                *out)
        return tuple(a[:m] for a in out)

    def open(self, core, w, t):
        i = self.idx[core]
        self.acc[i] = self.acc0[i]
        if self.graded_in:
            self.x[core][:] = self.x0
            self.q[core][:] = self.q0
        return super().open(core, w, t)

    def run(self, core, port, m: Msgs, cur: int) -> Msgs | None:
        if self.graded_in:
            dq = np.empty(len(m))
            F.requantize(m.addr, m.win == cur, m.a, m.d, self.x[core], self.q[core],
                         float(self.op.in_scale), self.lo, self.hi, dq)
            # a folded output pool's events (pooled spikes, ``events_in``) cost ACs
            cnt, cat = dq.astype(np.int64), "ac" if self.e.events_in else "mac"
        else:
            cnt, cat = m.a.astype(np.int64), "ac"
        fan_pos, fan_ch = self.sim.eng.fans[(self.v, 0, core)]
        C = self.in_shape[-1]
        f = (fan_pos[m.addr // C] if len(fan_pos) > 1 else fan_pos[0]) * fan_ch[m.addr % C]
        ops = int(np.rint(np.sum(f * (np.abs(cnt) if cat == "ac" else (cnt != 0)))))
        for name in (cat, "weight_reads"):
            self.count(core, name, ops)
        if self.sim.eng.chip.core.membrane_rmw_per_synop:
            self.count(core, "membrane_reads", ops)
            self.count(core, "membrane_writes", ops)
        outs = [self._scatter(m.t, m.addr, cnt, c0, c1, self.acc, self.val)
                for c0, c1 in self.ranges[core]]
        t, addr, absv, dv = (np.concatenate([o[k] for o in outs]) for k in range(4))
        order = np.argsort(t, kind="stable")
        self.count(core, "graded_values", len(t))
        return self.graded(t[order], addr[order], absv[order], dv[order], cur)


class OutputPool(Node):
    """A sum pool folded into its producer's cores (``Engine.folded``, Speck's output
    pooling): address arithmetic, no cost here. Each spike at (y, x, c) leaves at once as an
    event at (y // k, x // k, c) carrying the pooled count so far (a graded change of +1 per
    spike, so consumers see the same values as from the Conv; routed as spike events,
    ``Engine.sends``). Spikes outside the pooled map (cropped border) go nowhere."""

    def __init__(self, sim, v):
        super().__init__(sim, v)
        op, k = self.op, self.op.kernel
        C, H, W = op.in_shape
        _, Ho, Wo = op.shape
        a = np.arange(C * H * W)
        y, x, c = a // C // W, a // C % W, a % C
        self.target = np.where((y // k < Ho) & (x // k < Wo), ((y // k) * Wo + x // k) * C + c,
                               -1).astype(np.int64)

    def run(self, core, port, m: Msgs, cur: int) -> Msgs | None:
        tg = self.target[m.addr]
        keep = tg >= 0
        t, tg, a = m.t[keep], tg[keep], m.a[keep]
        order = np.argsort(tg, kind="stable")           # running pooled count per address
        cs = np.cumsum(a[order])
        first = np.r_[True, tg[order][1:] != tg[order][:-1]]
        before = np.maximum.accumulate(np.where(first, np.arange(len(tg)), 0))
        run = np.empty(len(tg))
        run[order] = self.val[tg[order]] + cs - np.where(before > 0, cs[before - 1], 0.0)
        np.add.at(self.val, tg, a)
        return self.graded(t, tg, run, a.astype(np.float64), cur)


class Sum(Node):
    """Add (module doc)."""

    def __init__(self, sim, v):
        super().__init__(sim, v)
        self.bases = [sim.base[u].reshape(-1) for u in sim.eng.inputs_of[v]]
        self.copies = np.stack(self.bases)

    def open(self, core, w, t):
        i = self.idx[core]
        for p, b in enumerate(self.bases):
            self.copies[p, i] = b[i]
        return super().open(core, w, t)

    def run(self, core, port, m: Msgs, cur: int) -> Msgs | None:
        n = len(m)
        if self.sim.eng.graph.out_kind(self.v) == "spike":    # spikes + spikes: pass them on
            self.count(core, "aux_ops", n)
            np.add.at(self.val, m.addr, m.a)
            return spikes(m.t, m.addr, cur)
        same, dv = (m.win == cur, m.d) if m.d is not None else (np.zeros(n, bool), m.a)
        out = (np.empty(n), np.empty(n, np.int64), np.empty(n), np.empty(n))
        k = F.add_events(m.t, port, m.addr, same, m.a, dv, self.copies, self.val, *out)
        self.count(core, "aux_ops", n)
        self.count(core, "graded_values", k)
        return Msgs(out[0][:k], out[1][:k], np.full(k, cur, np.int64), out[2][:k], out[3][:k])


class Population(Node):
    """Neurons (module doc)."""

    def __init__(self, sim, v):
        super().__init__(sim, v)
        op, n = self.op, self.base.size
        self.sfa = op.model == "sfa"
        self.budget = op.D if self.sfa else 1
        self.x0 = sim.base[sim.eng.inputs_of[v][0]].reshape(-1)
        self.lo, self.hi = op.v_range
        self.ch = np.arange(n) % self.C
        self.X, self.V, self.XF = self.x0.copy(), np.tile(op.v_reset, n // self.C), np.zeros(n)
        self.K, self.touched = np.zeros(n, np.int64), np.zeros(n, np.uint8)
        if not self.sfa:
            self.codes = K.neuron_codes(op)
        self.spk = np.zeros(n)

    def _h(self, i: np.ndarray) -> np.ndarray:
        """Membrane (unclipped) of IF / LIF neurons ``i`` in the current window
        (``F.membrane``; the soft reset's v_th per spike is taken off after clipping)."""
        op = self.op
        V, X, vr = self.V[i], self.X[i], op.v_reset[self.ch[i]]
        if op.model == "if":
            h = V + X
        elif op.decay_input:
            h = V + (X - (V - vr)) / op.tau
        else:
            h = V - (V - vr) / op.tau + X
        k = self.K[i]
        if op.reset == "hard":
            g = 1.0 / op.tau if (op.model != "if" and op.decay_input) else 1.0
            h = np.where(k > 0, vr + g * (X - self.XF[i]), h)
        return h

    def close(self, core, w, t):
        i = self.idx[core]
        op = self.op
        if self.sfa:
            h = self.X[i] + 0.5 * op.v_th[self.ch[i]]
        else:
            h = self._h(i)
            hc = np.clip(h, self.lo, self.hi)
            if op.reset == "soft":             # clip, then one v_th per spike (fire_reset)
                hc = hc - op.v_th[self.ch[i]] * self.K[i]
            self.V[i] = hc
        self.count(core, "saturations", np.count_nonzero((h < self.lo) | (h > self.hi)))
        touched = np.bincount(self.ch[i][self.touched[i] != 0], minlength=self.C)
        n = int(touched.sum()) * (op.D if self.sfa else 1)
        self.count(core, "neuron_updates", n)
        self.count(core, "membrane_writes", n)
        if not self.sim.eng.chip.core.membrane_rmw_per_synop:
            self.count(core, "membrane_reads", n)
        self.sim.record(self.v, w, self.spk, i)
        self.spk[i] = 0
        return None

    def open(self, core, w, t):
        """The leak tick: baseline input, no spikes yet; neurons it drives over threshold
        fire now (an SFA neuron its burst, ``isi`` apart)."""
        i = self.idx[core]
        op = self.op
        self.X[i], self.K[i], self.touched[i] = self.x0[i], 0, 0
        vth = op.v_th[self.ch[i]]
        if self.sfa:
            h = np.clip(self.X[i] + 0.5 * vth, self.lo, self.hi)
            k = np.zeros(len(i), np.int64)
            for _ in range(op.D):
                s = h >= vth
                k += s
                h = np.where(s, h - vth, h)
        else:
            k = (np.clip(self._h(i), self.lo, self.hi) >= vth).astype(np.int64)
        if not k.any():
            return None
        self.K[i] = k
        self.XF[i] = self.X[i]
        who = np.repeat(i, k)
        d = np.concatenate([np.arange(n) for n in k[k > 0]]) if self.sfa else 0
        return self._emit(core, t + d * self.sim.eng.isi_s, who, w)

    def _emit(self, core, t, addr, w) -> Msgs:
        t = np.broadcast_to(np.asarray(t, np.float64), addr.shape).copy()
        order = np.argsort(t, kind="stable")
        np.add.at(self.spk, addr, 1.0)
        self.count(core, "spikes", len(addr))
        return spikes(t[order], addr[order], w)

    def run(self, core, port, m: Msgs, cur: int) -> Msgs | None:
        n = len(m) * self.budget
        out_t, out_a = np.empty(n), np.empty(n, np.int64)
        same, d = (m.win == cur, m.d) if m.d is not None else (np.zeros(len(m), bool), m.a)
        op = self.op
        if self.sfa:
            k = F.sfa_events(m.t, m.addr, same, m.a, d, self.C, self.X, self.K, self.touched,
                             op.v_th, op.D, self.sim.eng.isi_s, self.lo, self.hi, out_t, out_a)
        else:
            c = self.codes
            k = F.lif_events(m.t, m.addr, same, m.a, d, self.C, self.X, self.V, self.K, self.XF,
                             self.touched, op.v_th, op.v_reset, c["model"], c["tau"],
                             c["reset"], c["decay_input"], self.lo, self.hi, self.budget,
                             out_t, out_a)
        return self._emit(core, out_t[:k], out_a[:k], cur) if k else None


class Complete(Node):
    """Operations that need a complete operand (module doc): per (core, window) input copies,
    computed when the window is closed."""

    complete = True

    def __init__(self, sim, v):
        super().__init__(sim, v)
        eng = sim.eng
        self.ins = eng.inputs_of[v]
        self.spike_in = [eng.graph.out_kind(u) == "spike" for u in self.ins]
        self.spike_out = eng.graph.out_kind(v) == "spike"
        self.win: dict = {}                        # (core, w) -> input copies
        self.closed: dict = {c: -1 for c in self.ranges}

    def _copies(self, core, w):
        key = (core, w)
        if key not in self.win:
            self.win[key] = [self.sim.base[u].reshape(-1).copy() for u in self.ins]
        return self.win[key]

    def accept(self, core, port: int, m: Msgs) -> int:
        """File messages into their window's copies; returns how many were late (their
        window already closed: lost)."""
        late = m.win <= self.closed[core]
        for w in np.unique(m.win[~late]):
            sel = (m.win == w) & ~late
            cp = self._copies(core, int(w))[port]
            if self.spike_in[port]:
                np.add.at(cp, m.addr[sel], m.a[sel])
            else:                                 # the last value of each address wins
                cp[m.addr[sel]] = m.a[sel]
        return int(late.sum())

    def close(self, core, w, t):
        """Compute window ``w`` from its copies and emit what differs from the baseline."""
        self.closed[core] = w
        sim, eng = self.sim, self.sim.eng
        cps = self.win.pop((core, w), None) or [sim.base[u].reshape(-1).copy() for u in self.ins]
        c = eng.new_counts(self.v)
        out = np.asarray(self.e.step([a.reshape(sim.base[u].shape) for a, u in zip(cps, self.ins)],
                                     c), np.float64).reshape(-1)
        rows = eng.core_part[self.v][core]
        sim.counts[self.v][rows] += c[rows]
        i = self.idx[core]
        self.val[i] = out[i]
        sim.record(self.v, w, out, i)
        if isinstance(self.op, G.Readout):
            return None
        if self.spike_out:
            cnt = np.rint(out[i]).astype(np.int64)
            who = np.repeat(i, cnt)
            return spikes(np.full(len(who), t), who, w)
        ch = i[out[i] != self.base[i]]
        dv = out[ch] - self.base[ch]
        return Msgs(np.full(len(ch), t), ch, np.full(len(ch), w, np.int64), out[ch], dv)


def make_node(sim, v: str) -> Node:
    op = sim.eng.graph.op(v)
    if v in sim.eng.folded:
        return OutputPool(sim, v)
    if isinstance(op, (G.Conv, G.Linear)):
        return Projection(sim, v)
    if isinstance(op, G.Add):
        return Sum(sim, v)
    if isinstance(op, G.Neurons):
        return Population(sim, v)
    if isinstance(op, COMPLETE):
        return Complete(sim, v)
    op.fail("free-running mode has no realisation for this operation")


__all__ = ["Complete", "Msgs", "Node", "OutputPool", "Population", "Projection", "Sum", "baselines",
           "make_node", "spikes"]
