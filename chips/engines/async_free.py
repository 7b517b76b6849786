"""Free-running execution of the asynchronous engine: events integrated in time order.

Time is cut into slices of ``slice_ns`` (one SimPy event per core and busy slice, never one
per spike). A batch (the events one node part sends one destination core in one slice) crosses
its route's links event by event when it is sent (``Network.send_links``: queues, bandwidth,
drops); at the destination, a slice's arrivals from all sources, merged in arrival order, go
through the core's FIFO (``Network.serve``: drops, stalls, service times) and its nodes take
them in that order (Numba kernels, ``async_free_nodes``), each output at the time its cause was
served: every core integrates its events in time order. Neurons fire the moment they cross
threshold; nothing waits for a clock. With ``slice_ns`` at most the per-layer
``event_latency_ns`` (which every delivery pays) the FIFO order is exact too (an event cannot
arrive in the slice it was caused in: conservative synchronisation with lookahead); a longer
slice (the default, ten latencies, for speed) may serve an event caused in the same slice after
events that arrived later in that slice. Backpressure from a full core FIFO is not passed back
to the links in this mode: the stall is counted at the core.

A core sends a batch's graded changes once per address (``coalesce``): the last value, at the
time of the last change (so at most once per slice). Spikes always travel one by one.

Windows. Events carry the time step (window) they descend from; a node opens window t when
its first event of window t arrives (neurons: the leak tick, where the baseline input alone
may fire them), and integrates a late event (an older window's) into its current window.
Operations that need a complete operand (``Complete`` nodes) compute window t when it is
closed, per ``realisation``:

  token    Every node part sends each destination core an end-of-window token after its
           window-t events (on the same route, so after them); a part whose inputs' tokens
           for t have all arrived closes t (a ``Complete`` node computes it; others open t + 1)
           and forwards its own token. Exact.
  timeout  A ``Complete`` node closes window t ``settle_ns`` after the last event of t it
           received; events of t arriving later are late and lost (counted, ``late_events``).

When the event queue runs dry, every node still short of the last window is advanced to it
(windows without events: baseline-driven spikes) and every open window closed, until nothing
more happens. Latency is the time the readout closed its last window.
"""
from __future__ import annotations

import heapq

import numpy as np
import simpy

from chips import topology
from chips.engines.async_free_nodes import Msgs, baselines, make_node
from chips.engines.base import SampleRun, Tally
from chips.engines.executors import CAT


def coalesce(m: Msgs) -> Msgs:
    """Graded changes a core sends in one batch: one event per address, at its last change,
    carrying the final value and the summed change (the core sends what it has accumulated,
    not every intermediate value)."""
    last = len(m) - 1 - np.unique(m.addr[::-1], return_index=True)[1]
    if len(last) == len(m):
        return m
    order = np.argsort(m.addr, kind="stable")
    a = m.addr[order]
    starts = np.flatnonzero(np.r_[True, a[1:] != a[:-1]])
    dv = np.add.reduceat(m.d[order], starts)                  # per address, ascending
    last = np.sort(last)
    out = m.take(last)
    out.d = dv[np.searchsorted(a[starts], out.addr)]
    return out


class FreeSim:
    """One input sample through the chip in free-running mode (module doc)."""

    def __init__(self, eng, x: np.ndarray, b: int, tally: Tally):
        self.eng, self.x, self.b, self.tally = eng, x, b, tally
        self.env = simpy.Environment()
        self.net = eng.net
        self.net.reset(record=b == 0)
        self.T, self.window = x.shape[0], eng.input_window()
        self.token = eng.realisation == "token"
        self.slice_s = eng.slice_s
        if getattr(eng, "free_base", None) is None:
            eng.free_base = baselines(eng)
        self.base = eng.free_base
        self.counts = {v: eng.new_counts(v) for v in eng.execs}
        self.rec = {v: np.zeros((self.T, self.base[v].size)) for v in eng.execs
                    if v in tally.spikes}
        self.totals = {v: np.zeros(self.T) for v in eng.execs if v in tally.spike_counts}
        self.nodes = {v: make_node(self, v) for v in eng.order if v in eng.execs}
        self.cur = {(v, c): 0 for v in self.nodes for c in eng.core_part[v]}
        self.core_nodes: dict[int, list] = {}
        for v in self.nodes:
            for c in eng.core_part[v]:
                self.core_nodes.setdefault(c, []).append(v)
        self.expect = self._expected_tokens()
        self.tok: dict = {}
        self.done_w = {key: -1 for key in self.cur}
        self.last_in: dict = {}
        self.inbox: dict[int, list] = {c: [] for c in self.core_nodes}
        self.seq = 0
        self.booked: dict[int, set] = {c: set() for c in self.core_nodes}
        self.route_last: dict = {}
        self.late = self.timeouts = self.batches = 0
        self.out_time = 0.0

    def _expected_tokens(self) -> dict:
        """Tokens per window each (node, core) waits for: one per source part sending it."""
        eng, out = self.eng, {}
        for v in self.nodes:
            for c in eng.core_part[v]:
                n = 0
                for u in eng.inputs_of[v]:
                    if eng.internal[(u, v)]:
                        n += 1
                    else:
                        n += sum(1 for i in range(len(eng.src_parts[u]))
                                 if any(d == c for d, _ in eng.dest.get((u, i, v), ())))
                out[(v, c)] = n
        return out

    def record(self, v: str, w: int, arr: np.ndarray, idx: np.ndarray) -> None:
        """Window ``w`` of node ``v`` on the cores of ``idx``: its output (spike counts or
        values)."""
        if v in self.rec:
            self.rec[v][w, idx] = arr[idx]
        if v in self.totals:
            self.totals[v][w] += arr[idx].sum()

    def _at(self, t: float, fn, *a) -> None:
        ev = self.env.timeout(max(0.0, t - self.env.now))
        ev.callbacks.append(lambda _e: fn(*a))

    # -------------------------------------------------------------------------- arrivals
    def _post(self, dst: int, t: float, v: str, port: int | None, m, ops=None) -> None:
        """An arrival at ``dst``'s FIFO from ``t`` on: events (``m`` with arrival times,
        ``ops`` per event) for input ``port`` of ``v``, or a token (``port`` None, ``m`` its
        window); book the slice it starts in."""
        self.seq += 1
        heapq.heappush(self.inbox[dst], (t, self.seq, v, port, m, ops, 0))
        self._book(dst, t)

    def _book(self, core: int, t: float) -> None:
        k = int(t // self.slice_s)
        if k not in self.booked[core]:
            self.booked[core].add(k)
            self._at(k * self.slice_s, self.activate, core, k)

    def _due(self, core: int, end: float) -> tuple[list, list]:
        """Take the events and tokens that reach ``core`` before ``end`` from its inbox."""
        box, ev, tokens = self.inbox[core], [], []
        while box and box[0][0] < end:
            t, seq, v, port, m, ops, i = heapq.heappop(box)
            if port is None:
                tokens.append((t, v, m))
                continue
            cut = i + int(np.searchsorted(m.t[i:], end))
            ev.append((v, port, m.take(slice(i, cut)), ops[i:cut]))
            if cut < len(m):
                heapq.heappush(box, (float(m.t[cut]), seq, v, port, m, ops, cut))
        if box:
            self._book(core, box[0][0])
        return ev, tokens

    def activate(self, core: int, k: int) -> None:
        """Slice k on ``core``: its arrivals, in arrival order, through the core's FIFO and
        its nodes (tokens in their place among them)."""
        self.booked[core].discard(k)
        ev, tokens = self._due(core, (k + 1) * self.slice_s)
        if ev:
            t_arr = np.concatenate([m.t for _, _, m, _ in ev])
            order = np.argsort(t_arr, kind="stable")
            leave = np.empty(len(t_arr))
            leave[order] = self.net.serve(core, t_arr[order],
                                          np.concatenate([o for *_, o in ev])[order], ev[0][0])
            starts = np.cumsum([0] + [len(m) for _, _, m, _ in ev])
        tokens.sort(key=lambda a: a[0])
        done = -np.inf
        for bound in [tk[0] for tk in tokens] + [np.inf]:
            pending: dict = {}
            for i, (v, port, m, _) in enumerate(ev):
                a, b = starts[i], starts[i + 1]
                sel = (t_arr[a:b] <= bound) & (t_arr[a:b] > done) & (leave[a:b] >= 0)
                if sel.any():
                    mm = m.take(sel) if not sel.all() else m
                    mm.t = leave[a:b][sel]
                    pending.setdefault(v, []).append((port, mm))
            self._run_pending(core, pending)
            done = bound
            if tokens and bound < np.inf:
                _, v, w = tokens.pop(0)
                served = leave[(t_arr <= bound) & (leave >= 0)] if ev else np.zeros(0)
                self.token_in(v, core, w, max(bound, float(served.max()) if served.size
                                              else bound))

    # -------------------------------------------------------------------------- nodes
    def _run_pending(self, core: int, pending: dict) -> None:
        """Nodes of ``core`` in topological order on what reached them (``pending``: node ->
        [(port, Msgs)]), passing their outputs on."""
        for v in self.core_nodes[core]:
            ins = pending.pop(v, None)
            if ins:
                self.emit(v, core, self.feed(v, core, ins), pending)

    def feed(self, v: str, core: int, ins: list) -> Msgs | None:
        """Events into node ``v`` on ``core`` (``ins``: (port, Msgs)), split where a newer
        window starts; returns its output events."""
        node = self.nodes[v]
        if node.complete:
            for port, m in ins:
                self._accept(v, core, port, m)
            return None
        m = Msgs.join([mm for _, mm in ins])
        port = (np.concatenate([np.full(len(mm), p, np.int64) for p, mm in ins])
                [np.argsort(np.concatenate([mm.t for _, mm in ins]), kind="stable")]
                if len(ins) > 1 else np.full(len(m), ins[0][0], np.int64))
        outs, i, key = [], 0, (v, core)
        while i < len(m):
            ahead = np.flatnonzero(m.win[i:] > self.cur[key])
            j = i + int(ahead[0]) if len(ahead) else len(m)
            if j > i:
                self.late += int(np.count_nonzero(m.win[i:j] < self.cur[key]))
                outs.append(node.run(core, port[i:j], m.take(slice(i, j)), self.cur[key]))
            if j < len(m):
                outs += self.advance(v, core, min(int(m.win[j]), self.T - 1), float(m.t[j]))
            i = j
        outs = [o for o in outs if o is not None and len(o)]
        return Msgs.join(outs) if outs else None

    def _accept(self, v: str, core: int, port: int, m: Msgs) -> None:
        """Events into a ``Complete`` node; with the timeout realisation a window closes
        ``settle_ns`` after its last event, before a later one (which is then late)."""
        node = self.nodes[v]
        if not self.token:
            for w in np.unique(m.win):
                w = int(w)
                if node.closed[core] >= w:
                    continue
                key = (v, core, w)
                ts = m.t[m.win == w]
                gaps = np.diff(np.r_[self.last_in.get(key, ts[0]), ts]) > self.eng.settle_s
                if gaps.any():                      # silent long enough: close, then late
                    g = int(np.argmax(gaps))
                    prev = self.last_in.get(key, ts[0]) if g == 0 else ts[g - 1]
                    self.last_in[key] = prev
                    self._close_through(v, core, w, prev + self.eng.settle_s)
                    self.timeouts += 1
                    ts = ts[:g]
                if len(ts):
                    self.last_in[key] = float(ts[-1])
                    self._at(ts[-1] + self.eng.settle_s, self._timeout, v, core, w, float(ts[-1]))
        self.late += node.accept(core, port, m)

    def advance(self, v: str, core: int, w: int, t: float) -> list:
        """Close the current window of a streaming node and open the next ones up to ``w``."""
        node, key, outs = self.nodes[v], (v, core), []
        while self.cur[key] < w:
            node.close(core, self.cur[key], t)
            self.cur[key] += 1
            outs.append(node.open(core, self.cur[key], t))
        return outs

    def emit(self, v: str, core: int, m: Msgs | None, pending: dict, token: tuple = None):
        """Output events of ``v`` on ``core``: to internal consumers now, to the others over
        the network (with the end-of-window ``token`` (window, time) when given)."""
        eng = self.eng
        if m is not None and len(m):
            for v2 in eng.consumers[v]:
                if eng.internal[(v, v2)]:
                    pending.setdefault(v2, []).append((eng.inputs_of[v2].index(v), m))
        if (m is not None and len(m)) or token is not None:
            self.send(v, core, m, token)

    # -------------------------------------------------------------------------- network
    def send(self, v: str, core: int, m: Msgs | None, token: tuple | None) -> None:
        eng, net = self.eng, self.net
        C = eng.graph.op(v).shape[0]
        spike = eng.sends[v] == "spike"           # a folded output pool sends spike events
        parts = [i for i, (c, _, _) in enumerate(eng.src_parts[v]) if c == core]
        if not spike and m is not None and len(m) and v != eng.inp:
            m = coalesce(m)
        copies, tokens = [], []
        for v2 in eng.consumers[v]:
            if eng.internal[(v, v2)]:
                continue
            port = eng.inputs_of[v2].index(v)
            dests = {d: need for i in parts for d, need in eng.dest.get((v, i, v2), ())}
            for dst, need in dests.items():
                sub = m.take(need[m.addr % C] != 0) if m is not None and len(m) else None
                if sub is not None and len(sub):
                    copies.append((v2, port, dst, sub))
                if token is not None:
                    tokens.append((v2, dst))
        arrivals = net.send_links(core, [(dst, sub.t) for _, _, dst, sub in copies])
        for (v2, port, dst, sub), arrive in zip(copies, arrivals):
            self._ship(v, v2, port, core, dst, sub, spike, arrive)
        for v2, dst in tokens:                    # after the events, on the same routes
            path, lat = net.route(core, dst)
            at = max(token[1] + float(lat.sum()) + (net.event_s if len(path) == 1 else 0.0),
                     self.route_last.get((core, dst), 0.0))
            self._post(dst, at, v2, None, token[0])

    def _ship(self, v, v2, port, core, dst, sub: Msgs, spike: bool, arrive: np.ndarray
              ) -> None:
        """Events of ``v`` to ``v2`` on core ``dst``, which crossed the links (``arrive``: at
        the core's FIFO, -1 if dropped): counted, into its inbox."""
        eng = self.eng
        self.batches += 1
        n = len(sub)
        if core >= 0 and dst != core:
            row = self.counts[v][eng.core_part[v][core][0]]
            hops = topology.hops(eng.chip, core, dst)
            if spike:
                row[CAT["noc_messages"]] += n
                row[CAT["noc_hops"]] += n * hops
                row[CAT["noc_hops_ns"]] += n * topology.hops_ns(eng.chip, core, dst)
                self.counts[v2][eng.core_part[v2][dst][0], CAT["noc_messages_in"]] += n
            else:
                row[CAT["graded_messages"]] += n
                row[CAT["graded_hops"]] += n * hops
        kept = arrive >= 0
        if not kept.any():
            return
        got = sub.take(kept)
        got.t = arrive[kept]
        order = np.argsort(got.t, kind="stable")
        got = got.take(order)
        fan_pos, fan_ch = eng.fans[(v2, port, dst)]
        C_in = len(fan_ch)
        ops = (fan_pos[got.addr // C_in] if len(fan_pos) > 1 else fan_pos[0]) * \
            fan_ch[got.addr % C_in]
        self.route_last[(core, dst)] = max(self.route_last.get((core, dst), 0.0),
                                           float(got.t[-1]))
        self._post(dst, float(got.t[0]), v2, port, got, np.asarray(ops, np.float64))

    # -------------------------------------------------------------------------- windows
    def token_in(self, v: str, core: int, w: int, t: float) -> None:
        """One end-of-window token for (v, core) at ``t``; complete the windows it finishes."""
        key = (v, core)
        self.tok[(v, core, w)] = self.tok.get((v, core, w), 0) + 1
        while self.tok.get((v, core, self.done_w[key] + 1), 0) == self.expect[key]:
            self.complete(v, core, self.done_w[key] + 1, t)

    def complete(self, v: str, core: int, w: int, t: float) -> None:
        """Window ``w`` of (v, core) is complete: compute or move on, forward the token."""
        node, pending = self.nodes[v], {}
        self.done_w[(v, core)] = w
        if node.complete:
            out = self._close(v, core, w, t)
        else:
            out = self.advance(v, core, w + 1, t) if w + 1 < self.T else []
            out = [o for o in out if o is not None and len(o)]
            out = Msgs.join(out) if out else None
        self.emit(v, core, out, pending, token=(w, t))
        self._run_pending(core, pending)              # internal consumers: events first,
        for v2 in self.eng.consumers[v]:              # then the token
            if self.eng.internal[(v, v2)]:
                self.token_in(v2, core, w, t)

    def _close(self, v: str, core: int, w: int, t: float) -> Msgs | None:
        """Close window ``w`` of a ``Complete`` node at ``t``; its work occupies the core
        first."""
        node = self.nodes[v]
        before = self.counts[v][:, CAT["aux_ops"]].sum()
        out = node.close(core, w, t)
        secs = (self.counts[v][:, CAT["aux_ops"]].sum() - before) * self.eng.service_s
        _, end = self.net.work(core, t, float(secs), v, "complete")
        if v == self.eng.out:
            self.out_time = max(self.out_time, end)
        if out is not None:
            out.t = np.maximum(out.t, end)
        return out

    def _timeout(self, v: str, core: int, w: int, last: float) -> None:
        if self.last_in.get((v, core, w)) != last or self.nodes[v].closed[core] >= w:
            return
        self.timeouts += 1
        self._close_through(v, core, w, self.env.now)

    def _close_through(self, v: str, core: int, w: int, t: float) -> None:
        node, pending = self.nodes[v], {}
        while node.closed[core] < w:
            self.emit(v, core, self._close(v, core, node.closed[core] + 1, t), pending)
        self._run_pending(core, pending)

    # -------------------------------------------------------------------------- driver
    def source(self):
        """The input: window t's events (nonzero values) leave in ``input_order`` over
        [t, t + 1) x input_window_s, each window followed by its token."""
        eng, env = self.eng, self.env
        graded = eng.graph.op(eng.inp).kind == "graded"
        for t in range(self.T):
            at = t * self.window
            yield env.timeout(max(0.0, at - env.now))
            xt = np.asarray(self.x[t], np.float64).reshape(-1)
            addr = np.flatnonzero(xt)
            if eng.input_order == "saliency":
                addr = addr[np.argsort(-np.abs(xt[addr]), kind="stable")]
            if graded:
                a = d = xt[addr]
            else:
                addr = np.repeat(addr, xt[addr].astype(np.int64))
                a, d = np.ones(len(addr)), None
            n = len(addr)
            times = at + self.window * np.arange(n) / max(n, 1)
            m = Msgs(times, addr.astype(np.int64), np.full(n, t, np.int64), a, d)
            self.send(eng.inp, -1, m, (t, at + self.window) if self.token else None)

    def drain(self) -> bool:
        """Advance every node to the last window and close what is open; True if that sent
        anything (module doc)."""
        before = (self.net.sent, self.batches)
        last, now = self.T - 1, self.env.now
        for v, node in self.nodes.items():
            for c in self.eng.core_part[v]:
                if node.complete:
                    if node.closed[c] < last:
                        self._close_through(v, c, last, now)
                elif self.cur[(v, c)] < last:
                    pending = {}
                    out = [o for o in self.advance(v, c, last, now) if o is not None and len(o)]
                    self.emit(v, c, Msgs.join(out) if out else None, pending)
                    self._run_pending(c, pending)
        return (self.net.sent, self.batches) != before or self.env.peek() != float("inf")

    def run(self) -> None:
        for v, node in self.nodes.items():            # window 0 opens at power-up
            for c in self.eng.core_part[v]:
                if not node.complete:
                    pending = {}
                    self.emit(v, c, node.open(c, 0, 0.0), pending)
                    self._run_pending(c, pending)
        self.env.process(self.source())
        self.env.run()
        while self.drain():
            self.env.run()
        for v, node in self.nodes.items():
            if not node.complete:
                for c in self.eng.core_part[v]:
                    node.close(c, self.cur[(v, c)], self.env.now)
        self.net.check(f"sample {self.b}")

    def outcome(self) -> SampleRun:
        eng, tally = self.eng, self.tally
        for v, c in self.counts.items():
            tally.account(v, c)
        for v in self.nodes:
            shape = self.base[v].shape
            for w in range(self.T):
                if v in self.rec:
                    tally.output(v, w, self.b, self.rec[v][w].reshape(shape))
                elif v in self.totals:
                    tally.output(v, w, self.b, np.array([self.totals[v][w]]))
        acc = eng.execs[eng.out].acc
        # [1, ...] channels-last (base flattens a map readout in (C, H, W) order)
        logits = np.zeros(eng.graph.op(eng.out).size) if acc is None else acc[0]
        stats = dict(eng.sample_stats(), batches=self.batches, late_events=self.late,
                     timeouts=self.timeouts)
        return SampleRun(logits=logits / self.T, latency_s=self.out_time or self.env.now,
                         timeline=eng.timeline() if self.b == 0 else None, stats=stats)


__all__ = ["FreeSim", "coalesce"]
