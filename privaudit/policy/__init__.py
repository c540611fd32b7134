"""Privacy policies as code: load a YAML policy file, refuse it with a field path, or compile it.

    policy = load_policy("policies/caresquare-imfine-doctor.yaml")
    version = policy.version_at(to_millis(event.occurred_at))

A bad file raises :class:`~privaudit.errors.PolicyError` whose message is one line:
``FILE: versions[0].purposes[2].items[0]: unknown item code 'FOO'``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from .compiled import Policy, PolicyVersion, ProcessorDecl, RecipientDecl, compile_policy, from_millis, to_millis
from .document import PolicyDocument
from .loading import load_policy_file, parse_policy

DEFAULT_POLICY = "caresquare-imfine-doctor.yaml"

__all__ = [
    "DEFAULT_POLICY",
    "Policy",
    "PolicyDocument",
    "PolicyVersion",
    "ProcessorDecl",
    "RecipientDecl",
    "compile_policy",
    "default_policy_path",
    "load_policy",
    "parse_policy",
    "from_millis",
    "to_millis",
]


def default_policy_path() -> Path:
    """The shipped policy (the CareSquare ImFine Doctor policy)."""
    return Path(str(resources.files("privaudit.shipped_policies").joinpath(DEFAULT_POLICY)))


def load_policy(path: str | Path | None = None) -> Policy:
    """Read, validate and compile a policy file (the shipped one when ``path`` is None)."""
    return load_policy_file(Path(path) if path is not None else default_policy_path())
