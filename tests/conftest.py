from __future__ import annotations

import pytest

from privaudit.checker import Checker
from privaudit.policy import Policy, load_policy


@pytest.fixture(scope="session")
def policy() -> Policy:
    return load_policy()


@pytest.fixture
def checker(policy: Policy) -> Checker:
    return Checker(policy)
