"""The event-time release rule on generated interleavings, without a broker."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gnosis.streams.gate import ReleaseGate

PARTITIONS = 3

ops = st.lists(st.one_of(
    st.tuples(st.just("bar"), st.integers(0, PARTITIONS - 1), st.booleans()),
    st.tuples(st.just("news"), st.integers(0, PARTITIONS - 1), st.integers(1, 3)),
    st.tuples(st.just("mark"), st.integers(0, PARTITIONS - 1), st.integers(0, PARTITIONS - 1)),
    st.tuples(st.just("ask"), st.just(0), st.just(0)),
    st.tuples(st.just("answer"), st.booleans(), st.just(0)),
), max_size=80)


@given(ops)
def test_a_bar_is_released_only_after_every_headline_before_it(script) -> None:
    """Safety, order and liveness of :class:`ReleaseGate` against a model of the world.

    ``ends`` is each news partition's end offset; a mark on ``p`` for ``q`` never claims
    more than what exists (``marks_sent``). When a bar is released, the marks seen on its
    partition must cover the news end offsets as they were when the bar arrived.
    """
    gate = ReleaseGate()
    ends = [0] * PARTITIONS
    marks = [[0] * PARTITIONS for _ in range(PARTITIONS)]
    asked: int | None = None
    released: list[tuple[int, tuple]] = []
    arrivals: list[tuple] = []

    def release() -> None:
        for p, item in gate.release(now=0.0):
            *_, ends_then, gated = item
            if gated:
                assert all(marks[p][q] >= ends_then[q] for q in range(PARTITIONS)), (
                    "released before the news that existed when it arrived")
            released.append((p, item))

    for op, a, b in script:
        if op == "bar":
            item = (a, len(arrivals), list(ends), b)
            arrivals.append(item)
            gate.hold(a, item, 0.0, gated=b)
        elif op == "news":
            ends[a] += b
        elif op == "mark":  # partition a sees the progress of news partition b, as it is now
            marks[a][b] = ends[b]
            gate.mark(a, b, ends[b])
        elif op == "ask" and gate.wants_barrier():
            asked = gate.ask_barrier()
        elif op == "answer" and asked is not None:
            if a:  # the broker answers with offsets at least those at the request
                gate.barrier(asked, dict(enumerate(ends)))
            else:
                gate.barrier_failed(asked)
            asked = None
        release()

    # Liveness: once every partition has seen marks for all news and a barrier is answered,
    # nothing stays held.
    for p in range(PARTITIONS):
        for q in range(PARTITIONS):
            marks[p][q] = ends[q]
            gate.mark(p, q, ends[q])
    if asked is not None:
        gate.barrier(asked, dict(enumerate(ends)))
    while gate.wants_barrier():
        gate.barrier(gate.ask_barrier(), dict(enumerate(ends)))
    release()
    assert gate.held() == 0
    assert sorted(item[1] for _, item in released) == list(range(len(arrivals)))
    for p in range(PARTITIONS):
        seqs = [item[1] for q, item in released if q == p]
        assert seqs == sorted(seqs), "a partition's line kept its order"


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
