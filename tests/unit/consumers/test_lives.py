"""The lives of a topic (consumers/lives.py): when a new one begins, and when it must not."""

from __future__ import annotations

import pytest

from privaudit.consumers.lives import Lives
from privaudit.errors import BrokerError


class _Sink:
    """The ``incarnations`` table, as the sink reads and writes it (the newest row per life wins)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, int], tuple[str, str]] = {}

    def incarnations(self, topic):
        return sorted((n, i) for (t, n), (i, _) in self.rows.items() if t == topic)

    def record_incarnation(self, topic, number, topic_id, reason):
        self.rows[(topic, number)] = (topic_id, reason)


class _Broker:
    def __init__(self, topic_id: str | None) -> None:
        self.id: str | None = topic_id
        self.down = False

    def __call__(self, topic):
        if self.down:
            raise BrokerError("the broker is away")
        return self.id


def test_the_first_read_is_life_0_with_the_topics_id_and_the_same_id_keeps_it():
    sink, broker = _Sink(), _Broker("A")
    lives = Lives(sink, broker)  # type: ignore[arg-type]
    assert lives.current("t") == 0 and lives.current("t") == 0
    assert sink.incarnations("t") == [(0, "A")]
    assert not lives.moved("t", "A") and not lives.moved("t", None)


def test_a_new_id_begins_the_next_life_once_and_an_old_id_seen_again_is_stale_metadata(caplog):
    sink, broker = _Sink(), _Broker("A")
    lives = Lives(sink, broker)  # type: ignore[arg-type]
    lives.current("t")
    broker.id = "B"
    assert lives.moved("t", "B")
    assert lives.current("t") == 1 and lives.current("t") == 1
    assert "changed from A to B" in caplog.text
    # a member whose metadata is older still says A: no third life
    assert not lives.moved("t", "A")
    assert lives.current("t", "A") == 1
    assert sink.incarnations("t") == [(0, "A"), (1, "B")]


def test_a_log_cut_below_what_was_read_begins_the_next_life_which_other_members_then_find():
    sink, broker = _Sink(), _Broker("A")
    first, second = Lives(sink, broker), Lives(sink, broker)  # type: ignore[arg-type]
    assert first.current("t") == second.current("t") == 0
    broker.id = "B"
    assert first.after(("t", 0), 0, "the log of partition 0 ends at 3") == 1
    assert sink.incarnations("t") == [(0, "A"), (1, "B")]
    # the other member sees partition 1 cut too: the same life, not a third
    assert second.after(("t", 1), 0, "the log of partition 1 ends at 0") == 1
    assert second.current("t") == 1 and not second.moved("t", "B")


def test_a_cut_log_whose_id_did_not_change_waits_for_its_id_and_does_not_count_twice():
    """A broker answering with the old id (or metadata older than the cut) leaves the new life's id
    unknown: the next id seen is taken as this life's, not as one more."""
    sink, broker = _Sink(), _Broker("A")
    lives = Lives(sink, broker)  # type: ignore[arg-type]
    lives.current("t")
    assert lives.after(("t", 0), 0, "cut") == 1
    assert sink.incarnations("t") == [(0, "A"), (1, "")]
    assert lives.current("t", "B") == 1
    assert sink.incarnations("t") == [(0, "A"), (1, "B")]


@pytest.mark.parametrize("broker_id", [None, "down"])
def test_without_a_topic_id_the_life_recorded_stands(broker_id):
    sink, broker = _Sink(), _Broker(None)
    lives = Lives(sink, broker)  # type: ignore[arg-type]
    assert lives.current("t") == 0
    assert lives.after(("t", 2), 0, "cut") == 1
    broker.down = broker_id == "down"
    assert lives.current("t") == 1  # nothing to compare: the log's end is what tells
    assert sink.incarnations("t") == [(0, ""), (1, "")]
