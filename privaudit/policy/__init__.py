"""Privacy policies as code: load a YAML policy file, refuse it with a field path, or compile it.

    policy = load_policy("policies/caresquare-imfine-doctor.yaml")
    version = policy.version_at(to_millis(event.occurred_at))

A bad file raises :class:`~privaudit.errors.PolicyError` whose message is one line:
``FILE: versions[0].purposes[2].items[0]: unknown item code 'FOO'``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from privaudit.errors import PolicyError
from privaudit.schemas.models import format_loc

from .compiled import Policy, PolicyVersion, ProcessorDecl, RecipientDecl, compile_policy, from_millis, to_millis
from .document import PolicyDocument, cross_check

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
    path = Path(path) if path is not None else default_policy_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError(str(path), "", "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(str(path), "", f"cannot read: {exc}") from exc
    return parse_policy(text, str(path))


def parse_policy(text: str, source: str = "<string>") -> Policy:
    """Validate and compile policy YAML; ``source`` names it in errors."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise PolicyError(source, where, f"not valid YAML: {problem}") from exc
    if not isinstance(data, dict):
        raise PolicyError(source, "", "expected a mapping at the top level")
    try:
        doc = PolicyDocument.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        first = errors[0]
        raise PolicyError(
            source, format_loc(first["loc"]), _message(first), more=len(errors) - 1
        ) from exc
    problems = list(cross_check(doc))
    if problems:
        path, message = problems[0]
        raise PolicyError(source, path, message, more=len(problems) - 1)
    return compile_policy(doc, source)


def _message(err: ErrorDetails) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown field (misspelt?)"
    if err["type"] == "missing":
        return "required field is missing"
    return str(err["msg"])
