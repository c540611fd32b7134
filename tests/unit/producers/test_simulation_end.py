"""The simulator never dates an event in the future (issue 18, item 5): it spreads them up to now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from privaudit.errors import ConfigError
from privaudit.policy import load_policy
from privaudit.producers.simulator import SimulationConfig, simulate


def test_the_simulator_never_dates_an_event_in_the_future_however_many_it_is_asked_for():
    end = datetime.now(UTC)
    for n, start in [(20_000, end - timedelta(minutes=5)), (900, end - timedelta(seconds=1)),
                     (5, end - timedelta(days=400))]:
        events = list(simulate(SimulationConfig(events=n, seed=3, start=start, end=end), load_policy()))
        assert len(events) == n and max(e.occurred_at for e in events) <= end
        assert min(e.occurred_at for e in events) >= start
    with pytest.raises(ConfigError, match="3,000 events do not fit between"):
        list(simulate(SimulationConfig(events=3_000, start=end - timedelta(seconds=1), end=end), load_policy()))
