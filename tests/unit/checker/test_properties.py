"""Properties over random event streams (hypothesis), out-of-order events included."""

from __future__ import annotations

import json
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from privaudit.checker import Checker
from privaudit.checker.state import ActorWindow, History
from tests.helpers import T0, access, consent, membership, policy_with, share, transfer, with_processors

SUBJECTS = st.sampled_from([f"p-{i}" for i in range(6)])
ACTORS = st.sampled_from(["staff-1", "staff-2", "proc-1", None, " "])
PURPOSES = st.sampled_from(["CUSTOMER_SUPPORT", "PAYMENT", "LEGAL_RETENTION", "MARKETING", "RESEARCH"])
ITEM = st.sampled_from(
    ["DEVICE_ID", "USAGE_RECORD", "CARD_INFO", "NAME", "HEALTH_INFO", "RESIDENT_REG_NO", "FOO", "BIOMETRIC_INFO"]
)
ITEMS = st.lists(ITEM, min_size=1, max_size=3)
# minutes from T0; wide enough to cross bulk windows, repeated values to make ties
WHEN = st.integers(min_value=0, max_value=600).map(lambda m: T0 + timedelta(minutes=m / 2))
COUNTRIES = st.sampled_from(["KR", "KR", "US", "JP"])

events = st.one_of(
    st.builds(
        lambda s, a, t, p, i, act, ip, r, n, pid, when: access(
            subject_id=s, actor_id=a, actor_type=t, purpose=p, data_items=i, action=act,
            source_ip=ip, reason=r, record_count=n, processor_id=pid, occurred_at=when,
        ),
        SUBJECTS, ACTORS, st.sampled_from(["STAFF", "SYSTEM", "PROCESSOR"]), PURPOSES, ITEMS,
        st.sampled_from(["VIEW", "DELETE", "DOWNLOAD", "EXPORT", "USE"]), st.sampled_from([None, "10.0.0.1"]),
        st.sampled_from([None, "", "audit"]), st.integers(1, 300), st.sampled_from([None, "CALL_CENTER", "X"]), WHEN,
    ),
    st.builds(
        lambda s, rid, c, p, i, b, when: share(
            subject_id=s, recipient_id=rid, recipient_country=c, purpose=p, data_items=i, legal_basis=b,
            occurred_at=when,
        ),
        SUBJECTS, st.sampled_from(["CARD_ISSUER", "AD_PARTNER", "POLICE"]), COUNTRIES, PURPOSES, ITEMS,
        st.sampled_from(["CONSENT", "CONTRACT", "STATUTE", "EMERGENCY"]), WHEN,
    ),
    st.builds(
        lambda s, pid, frm, task, p, i, c, when: transfer(
            subject_id=s, processor_id=pid, from_processor_id=frm, task=task, purpose=p, data_items=i,
            destination_country=c, occurred_at=when,
        ),
        SUBJECTS, st.sampled_from(["CALL_CENTER", "CLOUD_HOST", "SHADOW"]),
        st.sampled_from([None, "CALL_CENTER", "CLOUD_HOST"]),
        st.sampled_from(["COUNSELLING", "HOSTING", "OTHER"]), PURPOSES, ITEMS, COUNTRIES, WHEN,
    ),
    st.builds(
        lambda s, scope, target, g, ps, i, when: consent(
            scope, target, g, subject_id=s, purposes=ps, data_items=i, occurred_at=when
        ),
        SUBJECTS, st.sampled_from(["PURPOSE", "THIRD_PARTY", "SENSITIVE", "CROSS_BORDER"]),
        st.sampled_from(["MARKETING", "AD_PARTNER", "HEALTH_INFO", "US", "CUSTOMER_SUPPORT"]), st.booleans(),
        st.lists(PURPOSES, max_size=2), st.lists(ITEM, max_size=3), WHEN,
    ),
    st.builds(
        lambda s, c, when: membership(c, subject_id=s, occurred_at=when),
        SUBJECTS, st.sampled_from(["SIGNUP", "WITHDRAWAL", "CONTRACT_END"]), WHEN,
    ),
)

POLICY = policy_with(with_processors)
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def verdicts(checker: Checker, stream) -> list[list[tuple[str, str, str]]]:
    return [[(v.rule, v.message, v.policy_version) for v in checker.check(e)] for e in stream]


@FAST
@given(st.lists(events, max_size=60))
def test_the_checker_never_raises_and_verdicts_are_sorted_unique(stream):
    checker = Checker(POLICY)
    for event in stream:
        rules = [v.rule for v in checker.check(event)]
        assert rules == sorted(set(rules))


@FAST
@given(st.lists(events, max_size=60), st.data())
def test_snapshot_then_replay_gives_identical_verdicts(stream, data):
    cut = data.draw(st.integers(0, len(stream)))
    whole = verdicts(Checker(POLICY), stream)

    first = Checker(POLICY)
    head = verdicts(first, stream[:cut])
    snapshot = json.loads(json.dumps(first.snapshot()))  # it must survive JSON
    resumed = Checker.restore(POLICY, snapshot)
    assert head + verdicts(resumed, stream[cut:]) == whole

    # a crash after the snapshot: replaying the same batch from it gives the same verdicts again
    again = Checker.restore(POLICY, snapshot)
    assert verdicts(again, stream[cut:]) == whole[cut:]


@FAST
@given(st.lists(events, max_size=40))
def test_checking_is_deterministic(stream):
    assert verdicts(Checker(POLICY), stream) == verdicts(Checker(POLICY), stream)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 400), st.sampled_from("abcdefghij")), max_size=80),
    st.integers(1, 120),
)
def test_actor_window_counts_distinct_subjects_in_the_half_open_window(accesses, width):
    """Against brute force: distinct subjects seen so far with time in (t - width, t]."""
    window, seen = ActorWindow(), []
    keep = width + 10_000  # everything stays within the late tolerance here
    for t, subject in accesses:
        seen.append((t, subject))
        expected = len({s for ts, s in seen if t - width < ts <= t})
        assert window.add(t, subject, width, keep) == expected
    restored = ActorWindow.load(window.dump())
    assert (restored.lo - restored.head, dict(restored.counts)) == (window.lo - window.head, dict(window.counts))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 50), st.integers()), min_size=1, max_size=40), st.integers(-5, 55))
def test_history_latest_is_the_last_seen_change_at_or_before(changes, query):
    history: History[int] = History()
    for t, value in changes:
        history.add(t, value)
    candidates = [(t, v) for t, v in changes if t <= query]
    expected = None
    if candidates:  # among equal times, the one seen last wins
        last = max(t for t, _ in candidates)
        expected = [tv for tv in candidates if tv[0] == last][-1]
    assert history.latest(query) == expected


def test_actor_window_stays_exact_while_pruning_with_late_events_within_tolerance():
    import random

    rng = random.Random(3)
    width, tolerance = 50, 20
    window, seen, newest = ActorWindow(), [], 0
    for _ in range(5000):
        t = max(0, newest + rng.randint(-tolerance, 3))
        newest = max(newest, t)
        subject = f"s{rng.randrange(40)}"
        seen.append((t, subject))
        expected = len({s for ts, s in seen[-400:] if t - width < ts <= t})  # older entries are far out
        assert window.add(t, subject, width, width + tolerance) == expected
    assert len(window.times) < 1500  # pruned: not all 5000 kept


def test_a_pruned_history_answers_like_a_full_one_within_the_tolerance_and_stays_short():
    import random

    rng = random.Random(5)
    keep = 100
    pruned: History[int] = History()
    changes: list[tuple[int, int]] = []
    newest = 0
    for n in range(20_000):
        t = max(0, newest + rng.randint(-keep // 2, 10))  # mostly in order, some late within the tolerance
        newest = max(newest, t)
        pruned.add(t, n, keep)
        changes.append((t, n))
        query = newest - rng.randint(0, keep)
        candidates = [(ct, v) for ct, v in changes[-400:] if ct <= query]
        expected = None
        if candidates:
            last = max(t for t, _ in candidates)
            expected = [tv for tv in candidates if tv[0] == last][-1]
        if expected is not None:
            assert pruned.latest(query) == expected
    assert len(pruned.times) < 200  # ~keep / 4 ms of changes a ms apart, not 20,000


def test_a_history_of_changes_further_apart_than_the_tolerance_holds_two():
    """The newest change and the one in force at the cutoff: no more, however long it lives."""
    history: History[int] = History()
    for n in range(50):
        history.add(n * 1000, n, keep_ms=300)
        assert len(history.times) == min(n + 1, 2)
        if n:
            assert history.latest(n * 1000 - 300) == ((n - 1) * 1000, n - 1)


def test_a_state_rebuilt_from_its_changes_in_stream_order_is_the_one_built_live():
    """What a consumer holds after reloading a subject from subject_state equals what it held."""
    import random

    from privaudit.checker import CheckerState
    from privaudit.checker.state import Grant

    rng = random.Random(8)
    rows, at = [], 0
    for _ in range(3_000):
        at += rng.randint(0, 600_000)
        late = at - rng.randint(0, 3 * 60 * 60 * 1000) if rng.random() < 0.1 else at
        rows.append((f"s{rng.randrange(5)}", max(0, late), rng.random() < 0.5))
    live = CheckerState()
    for subject, ms, granted in rows:
        live.record_consent(subject, "PURPOSE", "MARKETING", ms, Grant(granted, frozenset(), frozenset(), "c"))
        live.record_membership(subject, ms, "SIGNUP" if granted else "WITHDRAWAL")
    reloaded = CheckerState()
    for subject in {r[0] for r in rows}:
        for s, ms, granted in rows:
            if s == subject:
                reloaded.record_consent(s, "PURPOSE", "MARKETING", ms, Grant(granted, frozenset(), frozenset(), "c"))
                reloaded.record_membership(s, ms, "SIGNUP" if granted else "WITHDRAWAL")
    assert sorted(reloaded.snapshot()["consents"]) == sorted(live.snapshot()["consents"])
    assert sorted(reloaded.snapshot()["membership"]) == sorted(live.snapshot()["membership"])
    assert max(len(h.times) for h in live.membership.values()) < 100  # 600 changes each, ~2 h kept
