"""Event conservation on the asynchronous chip, from the public statistics: every event offered
is served, dropped or still in flight, under stalls and under drops; and an event lost inside
the network (a queue kernel that forgets one) is caught, not reported as a clean run."""
import pytest

from chips.engines.kernels import queues as Q
from neurosim.run.simulate import simulate
from tests.fuzz.bases import tiny_graph, tiny_inputs

GRAPH, X = tiny_graph(), tiny_inputs(3)


def _balance(stats: dict) -> None:
    assert stats["events_in"] > 0
    assert stats["events_in"] == (stats["events_served"] + stats["events_dropped"]
                                  + stats["events_in_flight"])
    assert stats["events_in_flight"] == 0                 # every sample runs to completion


@pytest.mark.parametrize("async_mode", ["windowed", "free"])
@pytest.mark.parametrize("overflow,depth", [("stall", None), ("stall", 2), ("drop", 2)])
def test_events_in_equal_served_plus_dropped(async_mode, overflow, depth):
    kw = {} if depth is None else {"fifo_depth": depth}
    r = simulate(GRAPH, "speck-xl", X, mode="async", async_mode=async_mode, overflow=overflow,
                 **kw)
    s = r.stats
    _balance(s)
    if overflow == "drop":
        assert s["events_dropped"] > 0 and s["drops"] == s["events_dropped"]
        assert s["events_served"] < s["events_in"]
    else:
        assert s["events_dropped"] == 0 and s["events_served"] == s["events_in"]


def _losing(kernel):
    """``kernel`` that reports one event fewer than it was given: an event lost in a queue.
    The queue kernels take their result array third from last (``res, busy, trace``)."""
    def lossy(*args):
        kernel(*args)
        res = args[-3]
        assert res.shape == Q.new_res().shape
        if res[Q.RES_EVENTS] > 0:
            res[Q.RES_EVENTS] -= 1
    return lossy


@pytest.mark.parametrize("async_mode,kernel", [("windowed", "route_dense"),
                                               ("free", "core_list")])
def test_an_event_lost_in_the_network_is_caught(monkeypatch, async_mode, kernel):
    monkeypatch.setattr(Q, kernel, _losing(getattr(Q, kernel)))
    kw = {"windowed_schedule": "simpy"} if async_mode == "windowed" else {}   # Python calls
    with pytest.raises(RuntimeError, match="lost events"):
        simulate(GRAPH, "speck-xl", X[:1], mode="async", async_mode=async_mode, **kw)
