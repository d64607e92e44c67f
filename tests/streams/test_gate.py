"""The point-in-time release rule on generated interleavings, without a broker."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from gnosis.streams.gate import MAX_ASKING, ReleaseGate, barrier_offsets

PARTITIONS = 3
SKEW = 2

ops = st.lists(st.one_of(
    st.tuples(st.just("bar"), st.integers(0, PARTITIONS - 1), st.integers(0, 6)),
    st.tuples(st.just("invalid"), st.integers(0, PARTITIONS - 1), st.just(0)),
    st.tuples(st.just("news"), st.integers(0, PARTITIONS - 1), st.integers(1, 3)),
    st.tuples(st.just("mark"), st.integers(0, PARTITIONS - 1), st.integers(0, PARTITIONS - 1)),
    st.tuples(st.just("tick"), st.integers(1, 4), st.just(0)),
    st.tuples(st.just("ask"), st.just(0), st.just(0)),
    st.tuples(st.just("answer"), st.booleans(), st.integers(0, MAX_ASKING - 1)),
), max_size=80)


@hsettings(max_examples=300)
@given(ops, st.one_of(st.none(), st.integers(1, 3)))
# A headline appended in the very tick its bar is known, after the barrier was asked for:
# a barrier asked without the skew would miss it.
@example([("bar", 0, 0), ("ask", 0, 0), ("news", 1, 1), ("answer", True, 0)], None)
# Bars keep arriving while a barrier waits for its due time: they join the next epoch.
@example([("bar", 0, 0), ("ask", 0, 0), ("tick", 1, 0), ("bar", 1, 0), ("tick", 4, 0),
          ("news", 1, 1), ("answer", True, 0)], None)
def test_a_bar_is_released_only_after_every_headline_known_before_it(script, limit) -> None:
    """Safety, order and liveness of :class:`ReleaseGate` against a model of the world.

    The broker stamps each headline with the clock when it is appended (its knowledge
    time); a bar read now was appended up to 6 ticks ago. A barrier is the end offsets at
    its request, or, per news partition, the first headline known after its bars where
    the log holds one when the answer comes (:func:`barrier_offsets`); several requests
    are in flight, answered in any order, and a failed one is sent again. A mark on ``p``
    for ``q`` never claims more than what exists, and a barrier is asked for only when the
    gate says it is due. When a bar is released, the marks seen on its partition must cover every
    headline known at or before the bar, in every news partition. With a ``limit`` each
    release hands out at most that many; releasing again while the gate says some line is
    :meth:`~ReleaseGate.unchecked` hands out the rest.
    """
    gate = ReleaseGate(SKEW)
    now = 10
    known: list[list[int]] = [[] for _ in range(PARTITIONS)]  # per news partition
    marks = [[0] * PARTITIONS for _ in range(PARTITIONS)]
    # In flight: [epoch, due, end offsets once the request has gone out]
    asked: list[list] = []
    released: list[tuple[int, tuple]] = []
    arrivals: list[tuple] = []

    def release() -> None:
        out = gate.release(now=0.0, limit=limit)
        assert limit is None or len(out) <= limit
        for p, item in out:
            _, _, bar_known, gated = item
            if gated:
                for q in range(PARTITIONS):
                    needed = sum(k <= bar_known for k in known[q])
                    assert marks[p][q] >= needed, "released before a headline known before it"
            released.append((p, item))

    for op, a, b in script:
        if op in ("bar", "invalid"):
            item = (a, len(arrivals), now - b, op == "bar")
            arrivals.append(item)
            gate.hold(a, item, 0.0, known=now - b, gated=op == "bar")
        elif op == "news":
            known[a].extend([now] * b)
        elif op == "mark":  # partition a sees the progress of news partition b, as it is now
            marks[a][b] = len(known[b])
            gate.mark(a, b, len(known[b]))
        elif op == "tick":
            now += a
        elif op == "ask":
            due = gate.barrier_due()
            assert due is None or len(asked) < MAX_ASKING
            if due is not None:
                asked.append([gate.ask_barrier(), due, None])
        elif op == "answer" and asked and asked[b % len(asked)][2] is not None:
            request = asked[b % len(asked)]
            if a:  # the broker's answer: the end offsets at the request, and where a
                # headline known after the bars is in the log by now, the first such one
                epoch, due, ends = request
                after = due - SKEW
                later = {q: next((i for i, k in enumerate(known[q]) if k > after), None)
                         for q in range(PARTITIONS)}
                gate.barrier(epoch, barrier_offsets(ends, later))
                asked.remove(request)
            else:  # failed: it is sent again
                request[2] = None
        for request in asked:
            if request[2] is None and now >= request[1]:
                # A request goes out once the clock reaches the due time read when asking.
                request[2] = {q: len(known[q]) for q in range(PARTITIONS)}
        release()

    # Liveness: once every partition has seen marks for all news and barriers are answered,
    # nothing stays held.
    ends = {q: len(known[q]) for q in range(PARTITIONS)}
    for p in range(PARTITIONS):
        for q in range(PARTITIONS):
            marks[p][q] = ends[q]
            gate.mark(p, q, ends[q])
    for epoch, _, _ in asked:
        gate.barrier(epoch, ends)
    now += 100
    while (due := gate.barrier_due()) is not None:
        assert due <= now
        gate.barrier(gate.ask_barrier(), ends)
    release()
    while gate.unchecked():
        release()
    assert gate.held() == 0
    assert sorted(item[1] for _, item in released) == list(range(len(arrivals)))
    for p in range(PARTITIONS):
        seqs = [item[1] for q, item in released if q == p]
        assert seqs == sorted(seqs), "a partition's line kept its order"


def test_a_barrier_is_due_only_once_the_clock_is_past_its_bars() -> None:
    """Every headline appended after the barrier's answer is known after its bars."""
    gate = ReleaseGate(skew_ns=5)
    assert gate.barrier_due() is None
    gate.hold(0, "bar-a", 0.0, known=100)
    gate.hold(1, "bar-b", 0.0, known=120)
    gate.hold(1, "invalid", 0.0, known=999, gated=False)  # keeps its place, needs no barrier
    assert gate.barrier_due() == 125
    gate.ask_barrier()
    assert gate.barrier_due() is None  # nothing new waits
    gate.hold(0, "bar-c", 0.0, known=130)
    assert gate.barrier_due() == 135  # its own request, beside the one in flight
    for n in range(MAX_ASKING - 1):
        gate.ask_barrier()
        gate.hold(0, f"bar-{n}", 0.0, known=140 + n)
    assert gate.barrier_due() is None  # as many requests in flight as there may be
    assert gate.asking() == MAX_ASKING
    gate.barrier(0, {0: 0})
    assert gate.barrier_due() == 140 + MAX_ASKING - 2 + 5


def test_ungated_items_keep_their_place_in_line() -> None:
    gate = ReleaseGate()
    gate.hold(0, "bar-1", 0.0)
    gate.hold(0, "invalid", 0.0, gated=False)
    assert gate.release(0.0) == []
    gate.barrier(gate.ask_barrier(), {0: 5})
    assert gate.release(0.0) == []
    gate.mark(0, 0, 5)
    assert gate.release(0.0) == [(0, "bar-1"), (0, "invalid")]
    gate.hold(1, "invalid-alone", 0.0, gated=False)
    assert gate.release(0.0) == [(1, "invalid-alone")]


def test_empty_news_partitions_never_block_and_the_stall_guard_is_opt_in() -> None:
    gate = ReleaseGate()
    gate.hold(0, "bar", 10.0)
    gate.barrier(gate.ask_barrier(), {0: 0, 1: 4})
    assert gate.release(12.0) == []
    assert gate.release(12.0, stall_after=5.0) == []
    assert gate.release(15.0, stall_after=5.0) == [(0, "bar")]
