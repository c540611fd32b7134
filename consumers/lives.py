"""The lives of a topic: its offsets name records only until they start again from 0.

A Kafka offset names a record within one log. When a topic is deleted and created again, or its
broker comes back with empty storage (the local broker keeps its logs in memory), the offsets start
again from 0 and the group's committed offsets are gone with it: read as before, the new records
would be taken for what was loaded already (their offsets' tokens and journal ranges are those of
the old records) and dropped. So each topic has numbered **lives** (``incarnations``: 0 for the
first), every row carries its life (``kafka_incarnation``), and a new life begins when:

- the broker gives the topic a new id (KIP-516 topic ids: asked when partitions are assigned and
  every ``life_check_s``, and compared at every poll with the client's latest metadata, so that no
  record of the new log is taken for the old one's), or
- a partition's log ends below what was read of it (``after``; the only sign a broker without
  topic ids gives, and only once its new log is still shorter than the old one).

Several members and processes may see the same change: the first records the life, the others find
it recorded. Nothing of an earlier life is changed or dropped; its rows stay, under its number.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from privaudit.bus import TP
from privaudit.errors import BrokerError

from .sink import Sink

log = logging.getLogger("privaudit.consumer")

TopicId = Callable[[str], "str | None"]


class Lives:
    def __init__(self, sink: Sink, topic_id: TopicId, name: str = "consumer") -> None:
        self.sink = sink
        self.topic_id = topic_id
        self.name = name
        self._known: dict[str, tuple[int, str]] = {}  # per topic: its life now, and the id it has
        self._old: dict[str, set[str]] = {}  # per topic: the ids of its earlier lives

    def moved(self, topic: str, seen: str | None) -> bool:
        """Whether ``seen``, the topic's id in the client's metadata, is a new one (not the id of its
        life now, nor of an earlier one: metadata older than what was asked is no new life)."""
        known = self._known.get(topic)
        return bool(seen and known is not None and known[1] and known[1] != seen
                    and seen not in self._old.get(topic, ()))

    def _ask(self, topic: str) -> str | None:
        """The broker's id of the topic; None when it gives none or cannot be asked now (the next
        check asks again; the log's end is watched meanwhile)."""
        try:
            return self.topic_id(topic)
        except BrokerError as exc:
            log.info("%s: the id of topic %s could not be asked (%s)", self.name, topic, exc)
            return None

    def current(self, topic: str, found: str | None = None) -> int:
        """The topic's life now, recorded if new: the first one seen is 0; a topic id other than
        the one recorded begins the next. ``found``: the id, when known already (else asked)."""
        found = found or self._ask(topic)
        lives = self.sink.incarnations(topic)
        self._old[topic] = {i for _, i in lives[:-1] if i}
        if not lives:
            number, known = 0, found or ""
            self.sink.record_incarnation(topic, number, known, "first read")
        else:
            number, known = lives[-1]
            if found and not known:  # recorded when the broker gave no id: this is its id
                known = found
                self.sink.record_incarnation(topic, number, found, "the topic's id, first given")
            elif found and found != known and found not in self._old[topic]:
                self._old[topic].add(known)
                reason = (f"the topic's id changed from {known} to {found}: it was re-created or its broker came "
                          "back empty")
                log.warning("%s: %s; its offsets start again: read as life %d of the topic", self.name, reason,
                            number + 1)
                number, known = number + 1, found
                self.sink.record_incarnation(topic, number, found, reason)
        self._known[topic] = (number, known)
        return number

    def after(self, tp: TP, life: int, reason: str) -> int:
        """The life that follows ``life`` of ``tp``'s topic, whose log ended below what was read of
        it: one recorded since (by another member, or from the topic's id), else the next number."""
        topic = tp[0]
        lives = self.sink.incarnations(topic)
        self._old[topic] = {i for _, i in lives[:-1] if i}
        if lives and lives[-1][0] > life:
            self._known[topic] = lives[-1]
            return lives[-1][0]
        number, found = (lives[-1][0] if lives else life) + 1, self._ask(topic) or ""
        if lives and lives[-1][1]:
            self._old[topic].add(lives[-1][1])
            if found == lives[-1][1]:  # the old life's id (the log was cut, or the answer is older)
                found = ""  # the next id seen is this life's
        self.sink.record_incarnation(topic, number, found, reason)
        self._known[topic] = (number, found)
        return number
