"""The ClickHouse schema, rendered for one node or for a cluster from the same description.

Single node (the embedded default and a lone server): MergeTree tables named as below.
Cluster (``--cluster NAME``): every statement ``ON CLUSTER NAME``; each table becomes
``<name>_local`` with a Replicated engine, and ``<name>`` a Distributed table over it, so queries and
inserts use the same names in both modes.

Inserts are deduplicated by ``insert_deduplication_token`` (see :mod:`privaudit.consumers.sink`):
tables keep the last ``DEDUP_WINDOW`` block tokens (``non_replicated_deduplication_window`` on one
node, ``replicated_deduplication_window`` on a cluster).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from privaudit.canonical import CONTENT_FIELDS, field_sql
from privaudit.settings import check_retention

DEDUP_WINDOW = 10_000
_TS = "DateTime64(3, 'UTC')"
_STR_N = "Nullable(String)"
_LC = "LowCardinality(String)"
_LC_N = "LowCardinality(Nullable(String))"
#: Which life of its topic a row comes from: 0, then one more each time the topic was found
#: re-created, or its broker back empty (offsets start again from 0; see ``incarnations``).
INCARNATION = ("kafka_incarnation", "UInt32 DEFAULT 0")
#: Where a row came from in one number, for sorting keys (migration 7): the topic's life (12 bits),
#: the partition (12 bits) and the offset (40 bits), see :func:`position`. In the sorting key of a
#: ReplacingMergeTree it lets the engine drop a row loaded twice from the same record (a replayed
#: range) and never one Kafka record's row for another's: a later record can no longer replace an
#: earlier one when parts merge. Rows loaded before migration 7 have 0.
POSITION = ("kafka_position", "UInt64")
#: SHA-256 of the event's canonical content (schemas/canonical.py); migration 7 on.
CONTENT_HASH = ("content_hash", "FixedString(32)")
#: SHA-256 of the event's verdicts as the chain takes them (privaudit/evidence/chain.py).
VERDICTS_HASH = ("verdicts_hash", "FixedString(32)")


def position(incarnation: int, partition: int, offset: int) -> int:
    """:data:`POSITION`'s number for a record."""
    if incarnation >= 1 << 12 or partition >= 1 << 12 or offset >= 1 << 40:
        raise ValueError(f"no position for life {incarnation}, partition {partition}, offset {offset}: "
                         "over 4095 lives or partitions, or offsets past 2^40")
    return incarnation << 52 | partition << 40 | offset


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[tuple[str, str], ...]
    order_by: str
    engine: str = "MergeTree"  # or e.g. "AggregatingMergeTree", "ReplacingMergeTree(updated_at)"
    partition_by: str | None = None
    ttl: bool = False  # the retention TTL from occurred_at
    indexes: tuple[str, ...] = ()
    dedup: bool = True
    shard_key: str = "rand()"
    comment: str = ""


@dataclass(frozen=True)
class View:
    name: str
    target: str
    select: str


_EVENT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("event_id", "UUID"),
    ("type", _LC),
    ("occurred_at", _TS),
    ("service", _LC),
    ("subject_id", "String"),
    ("policy_version", _STR_N),  # what the event claimed
    ("checked_version", _LC),  # the version it was checked against ('' for consent/membership)
    ("actor_id", _STR_N),
    ("actor_type", _LC_N),
    ("processor_id", _STR_N),
    ("from_processor_id", _STR_N),
    ("recipient_id", _STR_N),
    ("country", _LC_N),  # recipient_country or destination_country
    ("action", _LC_N),
    ("purpose", _LC_N),
    ("task", _STR_N),
    ("legal_basis", _LC_N),
    ("consent_id", _STR_N),
    ("data_items", "Array(LowCardinality(String))"),
    ("source_ip", _STR_N),
    ("record_count", "UInt32"),
    ("reason", _STR_N),
    ("scope", _LC_N),
    ("target", _STR_N),
    ("granted", "Nullable(Bool)"),
    ("purposes", "Array(LowCardinality(String))"),
    ("change", _LC_N),
    ("kafka_topic", _LC),
    ("kafka_partition", "UInt16"),
    ("kafka_offset", "UInt64"),
    INCARNATION,
    ("loaded_at", f"{_TS} DEFAULT now64(3)"),
    POSITION,
    CONTENT_HASH,
    VERDICTS_HASH,
)
EVENT_COLUMN_NAMES: tuple[str, ...] = tuple(n for n, _ in _EVENT_COLUMNS if n != "loaded_at")

EVENTS = Table(
    "events",
    _EVENT_COLUMNS,
    order_by="(type, service, occurred_at, event_id, kafka_position)",
    # One row per Kafka record: a record loaded twice (a replayed range) has the same sorting key
    # and merges into one. A repeated event (the emitter is at least once) is kept aside in
    # ``repeats`` by the consumer, and one with other content in ``rewrites``: the first stays as
    # it is. (Before migration 7 the key ended at event_id, and a later copy replaced the first.)
    engine="ReplacingMergeTree",
    partition_by="toYYYYMM(occurred_at)",
    ttl=True,
    indexes=(
        "INDEX subject_idx subject_id TYPE bloom_filter GRANULARITY 4",
        "INDEX actor_idx actor_id TYPE bloom_filter GRANULARITY 4",
        "INDEX offset_idx kafka_offset TYPE minmax GRANULARITY 1",
    ),
    shard_key="cityHash64(subject_id)",
    comment="one row per event, as loaded from Kafka",
)

VIOLATION_COLUMNS: tuple[tuple[str, str], ...] = (
    ("event_id", "UUID"),
    ("rule", _LC),
    ("severity", _LC),
    ("message", "String"),
    ("policy_version", _LC),
    ("occurred_at", _TS),
    ("type", _LC),
    ("service", _LC),
    ("subject_id", "String"),
    ("actor_id", _STR_N),
    ("counterparty", _STR_N),  # recipient or processor
    ("kafka_topic", _LC),
    ("kafka_partition", "UInt16"),
    ("kafka_offset", "UInt64"),
    INCARNATION,
    ("detected_at", f"{_TS} DEFAULT now64(3)"),
    POSITION,
    # the message as made: a text of the catalogue and its parameters (JSON), so either language
    # can say it (privaudit.i18n); empty for verdicts stored before migration 8
    ("message_template", "String DEFAULT ''"),
    ("message_args", "String DEFAULT ''"),
)
VIOLATION_COLUMN_NAMES: tuple[str, ...] = tuple(n for n, _ in VIOLATION_COLUMNS if n != "detected_at")

VIOLATIONS = Table(
    "violations",
    VIOLATION_COLUMNS,
    order_by="(rule, occurred_at, event_id, kafka_position)",
    engine="ReplacingMergeTree",
    partition_by="toYYYYMM(occurred_at)",
    ttl=True,
    indexes=("INDEX subject_idx subject_id TYPE bloom_filter GRANULARITY 4",),
    shard_key="cityHash64(subject_id)",
    comment="one row per (event, rule) verdict",
)

STATE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("kafka_topic", _LC),
    ("kafka_partition", "UInt16"),
    ("kafka_offset", "UInt64"),
    INCARNATION,
    ("subject_id", "String"),
    ("event_id", "UUID"),
    ("occurred_at", _TS),
    ("kind", _LC),  # consent | membership
    ("consent_id", _STR_N),
    ("scope", _LC_N),
    ("target", _STR_N),
    ("granted", "Nullable(Bool)"),
    ("purposes", "Array(String)"),
    ("data_items", "Array(String)"),
    ("change", _LC_N),
)
STATE_COLUMN_NAMES: tuple[str, ...] = tuple(n for n, _ in STATE_COLUMNS)

SUBJECT_STATE = Table(
    "subject_state",
    STATE_COLUMNS,
    order_by="(kafka_topic, kafka_partition, subject_id, kafka_offset)",
    shard_key="kafka_partition",
    comment="consent and membership changes: the checker state, restored per Kafka partition (no TTL)",
)

BATCHES = Table(
    "batches",
    (
        ("stream", _LC),
        ("kafka_topic", _LC),
        ("kafka_partition", "UInt16"),
        ("first_offset", "UInt64"),
        ("last_offset", "UInt64"),
        ("planned_at", f"{_TS} DEFAULT now64(3)"),
        INCARNATION,
    ),
    order_by="(stream, kafka_topic, kafka_partition, first_offset)",
    dedup=False,
    shard_key="kafka_partition",
    comment="the batch journal: offset ranges planned before loading, replayed exactly after a crash",
)

PROGRESS = Table(
    "progress",
    (
        ("kafka_topic", _LC),
        ("kafka_partition", "UInt16"),
        ("next_offset", "UInt64"),
        ("max_occurred_at", _TS),
        ("updated_at", f"{_TS} DEFAULT now64(3)"),
        ("high_watermark", "UInt64 DEFAULT 0"),  # the partition's end as the consumer last saw it (the lag)
        INCARNATION,
    ),
    order_by="(kafka_topic, kafka_partition)",
    engine="ReplacingMergeTree(updated_at)",
    dedup=False,
    shard_key="kafka_partition",
    comment="per partition: loaded up to next_offset, events up to max_occurred_at",
)

CAUGHT_UP = Table(
    "caught_up",
    (
        ("kafka_topic", _LC),
        ("kafka_partition", "UInt16"),
        ("next_offset", "UInt64"),  # loaded up to here ...
        ("high_watermark", "UInt64"),  # ... and this was the partition's end then
        ("idle_since", _TS),  # no record since
        ("consumer", _LC),
        ("updated_at", f"{_TS} DEFAULT now64(3)"),
        INCARNATION,
    ),
    order_by="(kafka_topic, kafka_partition)",
    engine="ReplacingMergeTree(updated_at)",
    dedup=False,
    shard_key="kafka_partition",
    comment="per partition: its owner says it is caught up and idle (renewed while it is), for the bulk stage",
)

_USAGE_KEY: tuple[tuple[str, str], ...] = (
    ("day", "Date"),
    ("service", _LC),
    ("type", _LC),
    ("purpose", _LC),
    ("counterparty", _LC),  # recipient or processor, '' for none
    ("action", _LC),
)
_USAGE_SELECT = (
    "SELECT toDate(occurred_at) AS day, service, type, ifNull(purpose, '') AS purpose, "
    "coalesce(recipient_id, processor_id, '') AS counterparty, ifNull(action, '') AS action, "
    "{events} AS events, uniqExactState(subject_id) AS subjects "
    "FROM {{db}}.{{events}}{{where}} GROUP BY day, service, type, purpose, counterparty, action"
)

#: Migration 1's usage statistics: ``events`` was a sum, so an event delivered twice (at least once
#: from the emitter) counted twice. Kept only to render migration 1 as released.
USAGE_DAILY_V1 = Table(
    "usage_daily",
    (*_USAGE_KEY, ("events", "SimpleAggregateFunction(sum, UInt64)"),
     ("subjects", "AggregateFunction(uniqExact, String)")),
    order_by="(day, service, type, purpose, counterparty, action)",
    engine="AggregatingMergeTree",
    partition_by="toYYYYMM(day)",
    shard_key="cityHash64(service)",
    comment="usage statistics: read with sum(events), uniqExactMerge(subjects)",
)
USAGE_DAILY_MV_V1 = View("usage_daily_mv", "usage_daily", _USAGE_SELECT.format(events="count()"))

#: Since migration 3: ``events`` counts distinct event ids, so a repeated event counts once
#: whenever it arrives (the consumer loads a repeat at its new offset; merges of ``events`` remove
#: it later, the statistics at once). ``uniqExact`` keeps 16 bytes per event a day.
USAGE_DAILY = Table(
    "usage_daily",
    (*_USAGE_KEY, ("events", "AggregateFunction(uniqExact, UUID)"),
     ("subjects", "AggregateFunction(uniqExact, String)")),
    order_by="(day, service, type, purpose, counterparty, action)",
    engine="AggregatingMergeTree",
    partition_by="toYYYYMM(day)",
    shard_key="cityHash64(service)",
    comment="usage statistics: read with uniqExactMerge(events), uniqExactMerge(subjects)",
)
USAGE_DAILY_MV = View("usage_daily_mv", "usage_daily", _USAGE_SELECT.format(events="uniqExactState(event_id)"))

TABLES: tuple[Table, ...] = (EVENTS, VIOLATIONS, SUBJECT_STATE, BATCHES, PROGRESS, USAGE_DAILY)
#: The tables as migration 1 created them.
TABLES_V1: tuple[Table, ...] = (EVENTS, VIOLATIONS, SUBJECT_STATE, BATCHES, PROGRESS, USAGE_DAILY_V1)

DEAD_LETTERS = Table(
    "dead_letters",
    (
        ("kafka_topic", _LC),
        ("kafka_partition", "UInt16"),
        ("kafka_offset", "UInt64"),
        ("kind", _LC),  # decode | contract | policy
        ("reason", "String"),
        ("recorded_at", f"{_TS} DEFAULT now64(3)"),
        INCARNATION,
        POSITION,
    ),
    order_by="(kafka_topic, kafka_partition, kafka_offset, kafka_position)",
    engine="ReplacingMergeTree",
    partition_by="toYYYYMM(recorded_at)",
    shard_key="kafka_partition",
    comment="records sent to privaudit.dlq, with the reason (the bytes stay in the topic)",
)
DEAD_LETTER_COLUMN_NAMES: tuple[str, ...] = ("kafka_topic", "kafka_partition", "kafka_offset", "kind", "reason",
                                             "kafka_incarnation", "kafka_position")

ALERT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("group_key", "String"),
    ("sink", _LC),  # '' with status 'unrouted': no route matched the group
    ("rule", _LC),
    ("severity", _LC),
    ("service", _LC),
    ("party", "String"),  # the recipient or processor, else the actor
    ("window_start", _TS),
    ("window_end", _TS),
    ("first_seen", _TS),  # event time of the group's first and last violation
    ("last_seen", _TS),
    ("count", "UInt32"),
    ("status", _LC),  # pending | retrying | delivered | rejected | unrouted
    ("attempts", "UInt32"),
    ("last_error", "String"),
    ("event_id", "UUID"),  # the first violation's event, as shown in the notification
    ("subject_id", "String"),
    ("policy_version", _LC),
    ("notified_at", f"Nullable({_TS})"),
    ("updated_at", _TS),
)
ALERT_COLUMN_NAMES: tuple[str, ...] = tuple(n for n, _ in ALERT_COLUMNS)

ALERTS = Table(
    "alerts",
    ALERT_COLUMNS,
    order_by="(group_key, sink)",
    engine="ReplacingMergeTree(updated_at)",
    partition_by="toYYYYMM(window_start)",
    dedup=False,
    shard_key="cityHash64(group_key)",
    comment="alert history: one row per (group, sink), the newest wins (read with FINAL)",
)

INCARNATIONS = Table(
    "incarnations",
    (
        ("kafka_topic", _LC),
        ("incarnation", "UInt32"),
        ("topic_id", "String"),  # the broker's id of the topic in this life ('' when it gives none)
        ("reason", "String"),  # why a new life began
        ("started_at", f"{_TS} DEFAULT now64(3)"),
    ),
    order_by="(kafka_topic, incarnation)",
    engine="ReplacingMergeTree(started_at)",
    dedup=False,
    shard_key="cityHash64(kafka_topic)",
    comment="the lives of each topic: a new one when it was re-created or its broker came back empty",
)

_SOURCE: tuple[tuple[str, str], ...] = (
    ("kafka_topic", _LC), ("kafka_partition", "UInt16"), ("kafka_offset", "UInt64"), INCARNATION, POSITION)
_SOURCE_ORDER = "(kafka_topic, kafka_partition, kafka_incarnation, kafka_offset, kafka_position)"

REPEATS = Table(
    "repeats",
    (
        *_SOURCE,
        ("event_id", "UUID"),
        ("occurred_at", _TS),
        CONTENT_HASH,
        ("first_offset", "UInt64"),  # the offset of the copy in ``events``, in the same life
        ("loaded_at", f"{_TS} DEFAULT now64(3)"),
    ),
    order_by=_SOURCE_ORDER,
    engine="ReplacingMergeTree",
    partition_by="toYYYYMM(occurred_at)",
    ttl=True,
    shard_key="kafka_partition",
    comment="records that repeat an event already stored, with the same content (at least once delivery)",
)
REPEAT_COLUMN_NAMES: tuple[str, ...] = tuple(n for n, _ in REPEATS.columns if n != "loaded_at")

REWRITES = Table(
    "rewrites",
    (*_EVENT_COLUMNS, ("first_offset", "UInt64")),  # the original's offset in ``events``
    order_by=_SOURCE_ORDER,
    engine="ReplacingMergeTree",
    partition_by="toYYYYMM(occurred_at)",
    ttl=True,
    shard_key="kafka_partition",
    comment="records that reuse a stored event id with other content (PA-016): kept aside, the original unchanged",
)
REWRITE_COLUMN_NAMES: tuple[str, ...] = (*EVENT_COLUMN_NAMES, "first_offset")

LEDGER = Table(
    "ledger",
    (
        ("kafka_topic", _LC),
        ("kafka_partition", "UInt16"),
        INCARNATION,
        ("first_offset", "UInt64"),
        ("last_offset", "UInt64"),
        ("prev_head", "FixedString(32)"),
        ("head", "FixedString(32)"),
        ("events", "UInt32"),
        ("dead_letters", "UInt32"),
        ("repeats", "UInt32"),
        ("rewrites", "UInt32"),
        ("absent", "UInt32"),
        ("min_occurred_at", _TS),  # of the range's events (the epoch when it has none)
        ("max_occurred_at", _TS),
        ("key_id", _LC),
        ("signature", "FixedString(64)"),  # Ed25519 over privaudit.evidence.keys.statement(...); zeros: unsigned
        ("signed_at", f"{_TS} DEFAULT now64(3)"),
    ),
    order_by="(kafka_topic, kafka_partition, kafka_incarnation, first_offset)",
    engine="ReplacingMergeTree",
    shard_key="kafka_partition",
    comment="the hash chain head of every loaded range, signed (no TTL: what verification starts from)",
)
LEDGER_COLUMN_NAMES: tuple[str, ...] = tuple(n for n, _ in LEDGER.columns if n != "signed_at")

EVENT_FIELDS = Table(
    "event_fields",
    (*_SOURCE, ("occurred_at", _TS), ("hashes", "Array(UInt64)")),
    order_by=_SOURCE_ORDER,
    engine="ReplacingMergeTree",
    partition_by="toYYYYMM(occurred_at)",
    ttl=True,
    shard_key="kafka_partition",
    comment="per event, a hash of each content field as loaded (fed by a view on insert), to name a changed field",
)
#: Fed by the engine on every insert into ``events``, never by an ALTER of it: what ``verify``
#: compares the fields of a changed row with.
EVENT_FIELDS_MV = View(
    "event_fields_mv", "event_fields",
    "SELECT kafka_topic, kafka_partition, kafka_offset, kafka_incarnation, kafka_position, occurred_at, "
    "[" + ", ".join(f"cityHash64({field_sql(name)})" for name in CONTENT_FIELDS) + "] AS hashes "
    "FROM {db}.{events}{where}",
)

EMITTER_SEQS = Table(
    "emitter_seqs",
    (
        ("emitter", "String"),  # the privaudit.emitter header; '' for the records of a range that had none
        ("service", _LC),
        ("first_seq", "UInt64"),  # a run of consecutive privaudit.seq numbers seen in one range
        ("last_seq", "UInt64"),
        ("records", "UInt32"),  # records in the run (more than its numbers when some repeat)
        ("min_occurred_at", _TS),  # of the run's events (the epoch when none decoded)
        ("max_occurred_at", _TS),
        ("kafka_topic", _LC),
        ("kafka_partition", "UInt16"),
        INCARNATION,
        ("first_offset", "UInt64"),  # the range the run was read in
        ("last_offset", "UInt64"),
        ("loaded_at", f"{_TS} DEFAULT now64(3)"),
    ),
    order_by="(emitter, first_seq, kafka_topic, kafka_partition, kafka_incarnation, first_offset)",
    engine="ReplacingMergeTree",
    shard_key="cityHash64(emitter)",
    comment="per emitter, the sequence numbers seen: a hole that stays open is an event that never reached Kafka",
)
EMITTER_SEQ_COLUMN_NAMES: tuple[str, ...] = tuple(n for n, _ in EMITTER_SEQS.columns if n != "loaded_at")

VERIFICATIONS = Table(
    "verifications",
    (
        ("verified_at", _TS),
        ("ok", "Bool"),
        ("events", "UInt64"),
        ("partitions", "UInt32"),
        ("months", "Array(String)"),
        ("period", "String"),  # the --from/--to asked, '' for all
        ("findings", "Array(String)"),  # one line each
        ("key_id", _LC),  # the public key the signatures were checked with
    ),
    order_by="verified_at",
    dedup=False,
    shard_key="rand()",
    comment="each run of privaudit verify: when, what it read, what it found",
)

#: Every table the migrations create today (``TABLES`` are the consumer's, created by migration 1).
ALL_TABLES: tuple[Table, ...] = (*TABLES, DEAD_LETTERS, ALERTS, CAUGHT_UP, INCARNATIONS, REPEATS, REWRITES, LEDGER,
                                 EVENT_FIELDS, VERIFICATIONS, EMITTER_SEQS)
_BY_NAME = {table.name: table for table in ALL_TABLES}

#: Columns a later migration added, with that migration's version: a table as an earlier migration
#: created it is its columns less these (:func:`as_of`), so released migrations render as released.
ADDED_COLUMNS: dict[tuple[str, str], int] = {
    ("progress", "high_watermark"): 2,
    **{(name, INCARNATION[0]): 6 for name in ("events", "violations", "subject_state", "batches", "progress",
                                              "caught_up", "dead_letters")},
    **{(name, POSITION[0]): 7 for name in ("events", "violations", "dead_letters")},
    ("events", CONTENT_HASH[0]): 7,
    ("events", VERDICTS_HASH[0]): 7,
    ("violations", "message_template"): 8,
    ("violations", "message_args"): 8,
}
#: Sorting keys a later migration extended (with columns it added): the version, and the key before.
EXTENDED_ORDER: dict[str, tuple[int, str]] = {
    "events": (7, "(type, service, occurred_at, event_id)"),
    "violations": (7, "(rule, occurred_at, event_id)"),
    "dead_letters": (7, "(kafka_topic, kafka_partition, kafka_offset)"),
}
#: Skip indexes a later migration added, with its version.
ADDED_INDEXES: dict[tuple[str, str], int] = {("events", "offset_idx"): 7}


def as_of(table: Table, version: int) -> Table:
    """``table`` as migration ``version`` knew it."""
    kept = tuple(c for c in table.columns if ADDED_COLUMNS.get((table.name, c[0]), 0) <= version)
    indexes = tuple(i for i in table.indexes if ADDED_INDEXES.get((table.name, i.split()[1]), 0) <= version)
    extended, before = EXTENDED_ORDER.get(table.name, (0, table.order_by))
    return replace(table, columns=kept, indexes=indexes, order_by=before if version < extended else table.order_by)


def extend_order(t: Target, table: Table, version: int) -> list[str]:
    """Migration ``version``'s columns of ``table`` added and its sorting key extended with them, in
    one statement (the engine takes new key columns only from the ALTER that adds them, and only
    without a default). Run again once done, the engine takes it as a no-op (the key is already
    that key), so a migration interrupted half-way runs again like the others."""
    db = _ident(t.database)
    added = [(name, kind) for name, kind in table.columns if ADDED_COLUMNS.get((table.name, name)) == version]
    adds = ", ".join(f"ADD COLUMN IF NOT EXISTS {name} {kind}" for name, kind in added)
    local = f"{table.name}_local" if t.cluster else table.name
    out = [f"ALTER TABLE {db}.{local}{t.on_cluster} {adds}, MODIFY ORDER BY {table.order_by}"]
    if t.cluster:
        out.append(f"ALTER TABLE {db}.{table.name}{t.on_cluster} {adds}")
    return out


def add_index(t: Target, table: Table, name: str) -> list[str]:
    """An index added to a table that has rows: declared, then built for them."""
    db = _ident(t.database)
    local = f"{table.name}_local" if t.cluster else table.name
    index = next(i for i in table.indexes if i.split()[1] == name)
    return [f"ALTER TABLE {db}.{local}{t.on_cluster} ADD {index.replace('INDEX ', 'INDEX IF NOT EXISTS ', 1)}",
            f"ALTER TABLE {db}.{local}{t.on_cluster} MATERIALIZE INDEX {name}"]


def columns_added(t: Target, version: int) -> list[str]:
    """The statements adding the columns migration ``version`` added."""
    out: list[str] = []
    for (name, column), added in ADDED_COLUMNS.items():
        if added == version:
            kind = dict(_BY_NAME[name].columns)[column]
            out += add_column(t, _BY_NAME[name], column, kind)
    return out


@dataclass(frozen=True)
class Target:
    """Where DDL goes: database, retention, and the cluster if any."""

    database: str = "privaudit"
    retention_days: int = 730
    cluster: str | None = None

    def __post_init__(self) -> None:
        check_retention(self.retention_days)

    @property
    def on_cluster(self) -> str:
        return f" ON CLUSTER {_ident(self.cluster)}" if self.cluster else ""


def _ident(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"not a plain identifier: {name!r}")
    return name


def create_database(t: Target) -> str:
    return f"CREATE DATABASE IF NOT EXISTS {_ident(t.database)}{t.on_cluster}"


def create_table(t: Target, table: Table) -> list[str]:
    """The statements creating ``table``: one on a node, two (local + Distributed) on a cluster."""
    db = _ident(t.database)
    local = f"{table.name}_local" if t.cluster else table.name
    columns = ",\n    ".join([f"{name} {kind}" for name, kind in table.columns] + list(table.indexes))
    engine = table.engine
    settings = []
    if t.cluster:
        base, _, args = engine.partition("(")
        args = args.rstrip(")")
        path = f"'/clickhouse/tables/{{shard}}/{db}/{local}', '{{replica}}'"
        engine = f"Replicated{base}({path}{', ' + args if args else ''})"
        if table.dedup:
            settings.append(f"replicated_deduplication_window = {DEDUP_WINDOW}")
    elif table.dedup:
        settings.append(f"non_replicated_deduplication_window = {DEDUP_WINDOW}")
    parts = [f"CREATE TABLE IF NOT EXISTS {db}.{local}{t.on_cluster}\n(\n    {columns}\n)", f"ENGINE = {engine}"]
    if table.partition_by:
        parts.append(f"PARTITION BY {table.partition_by}")
    parts.append(f"ORDER BY {table.order_by}")
    if table.ttl:
        parts.append(f"TTL {ttl_expression(t)}")
    if settings:
        parts.append("SETTINGS " + ", ".join(settings))
    if table.comment:
        parts.append(f"COMMENT '{table.comment}'")
    statements = ["\n".join(parts)]
    if t.cluster:
        statements.append(
            f"CREATE TABLE IF NOT EXISTS {db}.{table.name}{t.on_cluster} AS {db}.{local}\n"
            f"ENGINE = Distributed({_ident(t.cluster)}, {db}, {local}, {table.shard_key})"
        )
    return statements


def create_view(t: Target, view: View) -> str:
    """A materialized view; on a cluster it reads and writes the local tables of its shard."""
    db = _ident(t.database)
    suffix = "_local" if t.cluster else ""
    select = view.select.format(db=db, events=f"events{suffix}", where="")
    return (
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.{view.name}{t.on_cluster} "
        f"TO {db}.{view.target}{suffix} AS {select}"
    )


def drop_view(t: Target, view: View) -> str:
    return f"DROP VIEW IF EXISTS {_ident(t.database)}.{view.name}{t.on_cluster} SYNC"


def drop_table(t: Target, table: Table) -> list[str]:
    """The statements dropping ``table`` (and on a cluster its Distributed front first)."""
    db = _ident(t.database)
    names = [table.name, f"{table.name}_local"] if t.cluster else [table.name]
    return [f"DROP TABLE IF EXISTS {db}.{name}{t.on_cluster} SYNC" for name in names]


def backfill(t: Target, view: View, where: str = "") -> str:
    """Feed the view's target from what ``events`` already holds, or the rows of it that match
    ``where`` (through the Distributed tables on a cluster, so every shard's events are read and the
    rows land on their shards)."""
    db = _ident(t.database)
    select = view.select.format(db=db, events="events", where=f" WHERE {where}" if where else "")
    return f"INSERT INTO {db}.{view.target} {select}"


def modify_ttl(t: Target, table: Table) -> str:
    local = f"{table.name}_local" if t.cluster else table.name
    return (
        f"ALTER TABLE {_ident(t.database)}.{local}{t.on_cluster} "
        f"MODIFY TTL {ttl_expression(t)}"
    )


def ttl_expression(t: Target) -> str:
    """When a row of ``events`` or ``violations`` may go: its event time plus the retention, in
    DateTime64 arithmetic. (Through ``toDateTime``, a 32-bit time, a date past 2106 wrapped into 1972
    and the row was deleted at once; migration 5 moved stores off that.)"""
    return f"occurred_at + INTERVAL {t.retention_days} DAY"


def add_column(t: Target, table: Table, column: str, kind: str) -> list[str]:
    """``ALTER TABLE ... ADD COLUMN IF NOT EXISTS``, on the local table and its Distributed one."""
    db = _ident(t.database)
    names = [f"{table.name}_local", table.name] if t.cluster else [table.name]
    return [f"ALTER TABLE {db}.{name}{t.on_cluster} ADD COLUMN IF NOT EXISTS {_ident(column)} {kind}" for name in names]
