"""The pure core: the rule catalogue and the checker that applies it to events in stream order."""

from .checker import Checker
from .rules import CATALOGUE, RULES, Rule, Violation
from .state import DEFAULT_LATE_TOLERANCE_MS, CheckerState

__all__ = ["CATALOGUE", "DEFAULT_LATE_TOLERANCE_MS", "RULES", "Checker", "CheckerState", "Rule", "Violation"]
