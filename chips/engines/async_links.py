"""The asynchronous chip's event network: links with bandwidth, router queues, core FIFOs and
the computed service schedule of every batch (``chips.engines.asynchronous`` module doc).

Queues (Numba kernels in ``chips.engines.kernels.queues``): one input FIFO per core (its server
is the core: ``ops x synop_service`` per event), one queue per link (its server is the link:
``1 / link_events_per_s`` per event) and one for the off-chip input port. Links: on a mesh,
one per direction between neighbouring routers (XY routes; cores of one tile share a router);
on an all-to-all chip, one shared event bus. Every queue holds ``fifo_depth`` events. A batch
copy for one destination core walks its route: input port or links (each followed by the hop
latency; the last by the per-layer ``event_latency``), then the core's FIFO. ``overflow``
"stall": a full queue holds the event back, the server before it waits, a full first queue
holds the sender; "drop": the congestion balancer drops an event that finds its queue full, so
drops follow how full each queue is over time (a slower link or core drops more). Event lists
(free-running mode) are scheduled event by event, a multicast's copies merged in time; dense batches (windowed mode) in runs of up
to ``fifo_depth / 4`` consecutive events (one event at depth 7 or less), each run entering a
queue when there is room for all of it and leaving it evenly over its service.

Counts are kept per sample: ``sent`` (events offered, counted by the caller from the batch it
sends), ``queued`` and ``dropped`` (counted by the kernels event by event) and ``served``
(added by the caller when a copy's last event has been served). ``check()`` compares them:
sent = served + dropped + in flight, in flight = queued - served.
"""
from __future__ import annotations

import numpy as np

from chips import topology
from chips.engines.kernels import queues as Q

RUN_FRACTION = 4           # dense batches are scheduled in runs of up to depth / 4 events
BUSY_ROWS = 256            # timeline intervals per batch copy; the last one absorbs the rest
_NO_ROWS = np.zeros((0, 2))


class Network:
    """Queues, routes and counters of one chip (module doc). ``record``: keep this sample's
    busy intervals (timeline items) and per-batch FIFO occupancy points; ``trace_events``:
    also the occupancy at every event's entry (FIFO traces, only when asked)."""

    def __init__(self, chip, *, depth: int, drop: bool, link_events_per_s: float,
                 hop_s: float, event_s: float, service_s: float, trace_events: bool = False):
        self.chip, self.n_cores = chip, chip.n_cores
        self.depth, self.drop = int(depth), bool(drop)
        self.link_s = 1.0 / link_events_per_s
        self.hop_s, self.event_s, self.service_s = hop_s, event_s, service_s
        self.trace_events = trace_events
        self.gap_s = event_s            # timeline: shorter idle gaps are not shown
        self.run_events = max(1, self.depth // RUN_FRACTION)
        self.links: dict = {}
        self._routes: dict = {}
        self.input_port = self.n_cores
        self.n_queues = self.n_cores + 1
        self.reset(record=False)

    # -------------------------------------------------------------------------- routes
    def _link(self, key) -> int:
        if key not in self.links:
            self.links[key] = self.n_queues
            self.n_queues += 1
            self._grow()
        return self.links[key]

    def _grow(self) -> None:
        n = self.n_queues - self.ring.shape[0]
        if n > 0:
            ring, qs = Q.new_state(n, self.depth)
            self.ring, self.qs = np.vstack([self.ring, ring]), np.vstack([self.qs, qs])

    def route(self, src: int, dst: int) -> tuple[np.ndarray, np.ndarray]:
        """(queue ids, latency after each) from core ``src`` (-1: the off-chip input) to core
        ``dst``'s FIFO."""
        key = (src, dst)
        if key not in self._routes:
            chip = self.chip
            if src < 0:
                hops = [self.input_port]
            elif src == dst:
                hops = []
            elif topology.is_mesh(chip):
                tiles = [topology.tile(chip, src)] + [topology.tile(chip, c)
                                                      for c in topology.path(chip, src, dst)]
                hops = [self._link((a, b)) for a, b in zip(tiles, tiles[1:])]
            else:
                hops = [self._link("bus")]
            lat = [self.hop_s if src >= 0 else 0.0] * len(hops) + [0.0]
            if hops:
                lat[len(hops) - 1] += self.event_s
            self._routes[key] = (np.array(hops + [dst], np.int64), np.array(lat))
        return self._routes[key]

    # -------------------------------------------------------------------------- state
    def reset(self, record: bool) -> None:
        """Empty queues and zero counters for a new sample."""
        self.ring, self.qs = Q.new_state(getattr(self, "n_queues", self.n_cores + 1), self.depth)
        self.record = record
        self.sent = self.queued = self.served = self.dropped = 0
        self.dropped_link = 0
        self.stalls, self.stall_s = 0, 0.0
        self.max_occ = np.zeros(self.n_cores, np.int64)
        self.busy_s = np.zeros(self.n_cores)
        self.items: list = []
        self.fifo: dict[int, list] = {}

    def _after(self, dst: int, res: np.ndarray, busy: np.ndarray, trace: np.ndarray, node: str,
               kind: str) -> None:
        n, d = int(res[Q.RES_EVENTS]), int(res[Q.RES_DROPPED])
        self.queued += n - d
        self.dropped += d
        self.dropped_link += int(res[Q.RES_DROPPED_LINK])
        self.stalls += int(res[Q.RES_STALLED])
        self.stall_s += float(res[Q.RES_STALL_S])
        self.max_occ[dst] = max(self.max_occ[dst], int(res[Q.RES_MAX_OCC]))
        self.busy_s[dst] += float(res[Q.RES_BUSY_S])
        if not self.record or n == d:
            return
        self.items.extend([dst, s, e, node, kind] for s, e in busy[:int(res[Q.RES_BUSY])].tolist())
        pts = self.fifo.setdefault(dst, [])
        if self.trace_events:
            pts.extend((float(t), int(o)) for t, o in trace[:int(res[Q.RES_TRACE])])
        else:                            # per batch: first entry, peak, last departure
            pts.extend([(float(res[Q.RES_FIRST_ARRIVAL]), 1),
                        (float(res[Q.RES_PEAK_T]), int(res[Q.RES_MAX_OCC])),
                        (float(res[Q.RES_LAST_LEAVE]), 0)])

    def fifo_trace(self) -> dict[int, list] | None:
        """This sample's FIFO occupancy points per core, (time s, events), sorted by time:
        batches are scheduled in call order, not time order, so ``_after`` appends them
        unsorted. A stable sort: equal times keep their scheduling order, no point is lost.
        None when the sample was not recorded."""
        if not self.record:
            return None
        return {c: sorted(pts, key=lambda p: p[0]) for c, pts in self.fifo.items() if pts}

    def _buffers(self, n_events: int) -> tuple[np.ndarray, np.ndarray]:
        if not self.record:
            return _NO_ROWS, _NO_ROWS
        busy = np.zeros((max(1, min(n_events, BUSY_ROWS)), 2))
        trace = np.zeros((n_events, 2)) if self.trace_events else _NO_ROWS
        return busy, trace

    # -------------------------------------------------------------------------- traffic
    def send_dense(self, cnt: np.ndarray, svc_pos: np.ndarray, porder: np.ndarray,
                   t0: float, dur: float, src: int, dst: int, node: str, n_events: int):
        """One copy of a batch held as a map, given its events and their core service per
        position (``route_dense``), from core ``src`` to core ``dst``; ``n_events`` is the
        sender's count of the events it offers. Returns (time its last event was served,
        events queued, events dropped per position or None when none was)."""
        path, lat = self.route(src, dst)
        if len(path) == 1:
            t0 += self.event_s
        dropped = np.zeros(len(cnt), np.int64)
        res = Q.new_res()
        busy, trace = self._buffers(n_events)
        Q.route_dense(cnt, svc_pos, porder, float(n_events), t0, dur, self.run_events, path,
                      lat, self.link_s, self.depth, self.drop, self.ring, self.qs, self.gap_s,
                      dropped, res, busy, trace)
        self.sent += n_events
        self._after(dst, res, busy, trace, node, "synops")
        d = int(res[Q.RES_DROPPED])
        return (float(res[Q.RES_LAST_LEAVE]), int(res[Q.RES_EVENTS]) - d,
                dropped if d else None)

    def send_links(self, src: int, copies: list) -> list:
        """Event lists from core ``src`` (-1: the input) towards destination cores' FIFOs
        through their routes' links, event by event and merged in emission order over all
        copies (a multicast shares the sender's queues in time; ``links_multi``).
        ``copies``: [(dst, t_emit non-decreasing)]. Returns each copy's arrival times at its
        FIFO, -1 where a link queue dropped the event. Counts the events as sent."""
        out: list = [None] * len(copies)
        routed = []
        for k, (dst, t_emit) in enumerate(copies):
            t_emit = np.ascontiguousarray(t_emit, np.float64)
            self.sent += len(t_emit)
            path, lat = self.route(src, dst)
            if len(path) == 1:
                out[k] = t_emit + self.event_s
            else:
                routed.append((k, t_emit, path[:-1], lat[:-1]))
        if not routed:
            return out
        width = max(len(p) for _, _, p, _ in routed)
        paths = np.zeros((len(routed), width), np.int64)
        lats = np.zeros((len(routed), width))
        n_hops = np.array([len(p) for _, _, p, _ in routed], np.int64)
        for r, (_, _, p, lat) in enumerate(routed):
            paths[r, :len(p)], lats[r, :len(p)] = p, lat
        t_all = np.concatenate([t for _, t, _, _ in routed])
        copy = np.repeat(np.arange(len(routed), dtype=np.int64), [len(t) for _, t, _, _ in routed])
        order = np.argsort(t_all, kind="stable")
        arrive = np.empty(len(t_all))
        res = Q.new_res()
        Q.links_multi(t_all[order], copy[order], paths, lats, n_hops, self.link_s, self.depth,
                      self.drop, self.ring, self.qs, arrive, res)
        back = np.empty(len(t_all))
        back[order] = arrive
        d = int(res[Q.RES_DROPPED])
        self.dropped += d
        self.dropped_link += d
        self.stalls += int(res[Q.RES_STALLED])
        self.stall_s += float(res[Q.RES_STALL_S])
        self.queued += len(t_all) - d
        starts = np.cumsum([0] + [len(t) for _, t, _, _ in routed])
        for r, (k, *_) in enumerate(routed):
            out[k] = back[starts[r]:starts[r + 1]]
        return out

    def serve(self, core: int, t_arr: np.ndarray, ops: np.ndarray, node: str) -> np.ndarray:
        """Events reaching ``core``'s FIFO at ``t_arr`` (in order; ``core_list``): each one's
        service completion, -1 where the full FIFO dropped it. The events were counted as
        queued when they left their link (``send_links``)."""
        leave = np.empty(len(t_arr))
        res = Q.new_res()
        busy, trace = self._buffers(len(t_arr))
        Q.core_list(np.ascontiguousarray(t_arr, np.float64),
                    np.ascontiguousarray(ops, np.float64), self.service_s, core, self.depth,
                    self.drop, self.ring, self.qs, self.gap_s, leave, res, busy, trace)
        self.queued -= len(t_arr)                 # re-counted by _after: queued - dropped
        self._after(core, res, busy, trace, node, "synops")
        self.served += len(t_arr) - int(res[Q.RES_DROPPED])
        return leave

    def work(self, core: int, ready: float, seconds: float, node: str, kind: str = "fire"
             ) -> tuple[float, float]:
        """Occupy ``core``'s server for ``seconds`` from ``ready`` (or when it is next free):
        work that holds no FIFO slot (neuron updates, spike products). Returns (start, end)."""
        start = max(ready, float(self.qs[core, Q.QS_FREE]))
        end = start + seconds
        self.qs[core, Q.QS_FREE] = end
        self.busy_s[core] += seconds
        if self.record and seconds > 0:
            self.items.append([core, start, end, node, kind])
        return start, end

    def check(self, where: str) -> None:
        """Event conservation from the independent counts (module doc), at the end of a
        sample, when nothing may be left in flight: raise if broken."""
        in_flight = self.queued - self.served
        if self.sent != self.served + self.dropped + in_flight or in_flight != 0:
            raise RuntimeError(
                f"async engine lost events ({where}): {self.sent} sent, {self.served} served, "
                f"{self.dropped} dropped, {in_flight} still in flight after the sample ended "
                f"({self.queued} queued)")


__all__ = ["Network"]
