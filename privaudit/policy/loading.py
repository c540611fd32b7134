"""Reading a policy file: YAML in, a compiled :class:`~.compiled.Policy` out, or one line saying
what is wrong and where.

The most useful error comes first: an unknown field (with the field it probably meant), then a
value of the wrong type or out of range, then a missing field. A required field missing only
because it was misspelt is the same mistake as the unknown one, and is not counted twice. Types
are strict (``"100"`` is not 100), and YAML's implicit timestamps are off: a time is parsed by
the policy model, so ``2020-13-01`` is a bad date in ``versions[0].effective_from``, not a crash
of the YAML parser.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from privaudit.errors import PolicyError
from privaudit.schemas.models import format_loc

from .compiled import Policy, compile_policy
from .document import PolicyDocument, cross_check

_TIMESTAMP = "tag:yaml.org,2002:timestamp"


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader without implicit timestamps: ``2020-01-01T00:00:00+09:00`` stays text."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != _TIMESTAMP]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_policy_file(path: Path) -> Policy:
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
        data = yaml.load(text, Loader=_Loader)  # a SafeLoader, less the implicit timestamps
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
        (path, message), more = _first(exc.errors(include_url=False))
        raise PolicyError(source, path, message, more=more) from exc
    problems = list(cross_check(doc))
    if problems:
        path, message = problems[0]
        raise PolicyError(source, path, message, more=len(problems) - 1)
    return compile_policy(doc, source)


def _first(errors: list[ErrorDetails]) -> tuple[tuple[str, str], int]:
    """The most useful of pydantic's errors as ``(path, message)``, and how many others there are."""
    explained: set[tuple[Any, ...]] = set()  # required fields an unknown one was probably meant to be
    described = []
    for err in errors:
        loc = err["loc"]
        if err["type"] == "extra_forbidden":
            meant = _meant(loc)
            if meant is not None:
                explained.add((*loc[:-1], meant))
                message = f"unknown field {loc[-1]!r} (did you mean {meant!r}?)"
            else:
                message = f"unknown field {loc[-1]!r}"
            rank = 0
        elif err["type"] == "missing":
            message, rank = "required field is missing", 2
        else:
            message, rank = err["msg"].removeprefix("Value error, "), 1
        described.append((rank, loc, message))
    kept = [d for d in described if not (d[0] == 2 and tuple(d[1]) in explained)]
    rank, loc, message = min(kept, key=lambda d: d[0])  # the first of the best rank, in file order
    return (format_loc(loc), message), len(kept) - 1


def _meant(loc: tuple[int | str, ...]) -> str | None:
    """The field of the model at ``loc``'s parent that an unknown key most resembles."""
    model: type[BaseModel] | None = PolicyDocument
    for part in loc[:-1]:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(part)
        model = _model_in(field.annotation) if field is not None else None
    if model is None:
        return None
    close = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1, cutoff=0.6)
    return close[0] if close else None


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model class a field holds, directly or as the items of a list."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None
