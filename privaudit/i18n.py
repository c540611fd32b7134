"""Korean first, English available: the message catalogue.

Text a person reads (the console's labels, rule titles and what to do about them, the report) is
written in English in the code, marked for extraction, and translated through a standard gettext
catalogue: ``privaudit/locale/<lang>/LC_MESSAGES/privaudit.po``, read with Babel. Korean is the
default; English is the source language (its catalogue is the identity).

    _ = translator("ko")
    _("Violations by rule")          # '규칙별 위반'
    N_("Totals")                     # marks a constant for extraction; translated where shown

Keeping the catalogue whole: ``pybabel extract -F babel.cfg -k N_ -k t -o privaudit/locale/
privaudit.pot .`` then ``pybabel update -i privaudit/locale/privaudit.pot -d privaudit/locale -D
privaudit`` (docs/i18n.md); a test fails while a marked text has no Korean.

Names the policy owns (items, purposes, recipients, processors) come from the policy file, which
carries them in both languages; the catalogue holds the product's own words.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from babel.messages.pofile import read_po

from privaudit.errors import ConfigError

LOCALE = Path(__file__).resolve().parent / "locale"
DOMAIN = "privaudit"
LANGUAGES = ("ko", "en")
DEFAULT_LANGUAGE = "ko"


def N_(message: str) -> str:  # noqa: N802 (gettext's name for "mark, translate later")
    """Mark ``message`` for extraction; it is translated where it is shown."""
    return message


def language(value: str | None, default: str = DEFAULT_LANGUAGE) -> str:
    """``value`` as one of :data:`LANGUAGES` (``ko-KR`` is ``ko``); empty is ``default``."""
    if not value:
        return default
    lang = value.strip().lower().replace("_", "-").split("-")[0]
    if lang not in LANGUAGES:
        raise ConfigError(f"language {value!r}: choose one of {', '.join(LANGUAGES)}")
    return lang


@cache
def catalogue(lang: str) -> Mapping[str, str]:
    """The translations of ``lang``: msgid to text (English: empty, the source is the text)."""
    if lang == "en":
        return MappingProxyType({})
    path = LOCALE / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    with path.open("rb") as po:
        read = read_po(po, locale=lang, domain=DOMAIN)
    return MappingProxyType({str(m.id): str(m.string) for m in read
                             if m.id and isinstance(m.id, str) and m.string and not m.fuzzy})


def gettext(message: str, lang: str = DEFAULT_LANGUAGE) -> str:
    return catalogue(lang).get(message, message)


def translator(lang: str = DEFAULT_LANGUAGE) -> Callable[[str], str]:
    """``_`` for ``lang``: a text in that language, or the English one while it has no translation."""
    table = catalogue(lang)
    return lambda message: table.get(message, message)


#: The time zone a person reads times in (Korea has no daylight saving: always UTC+9). Times are
#: stored in UTC; they are shown, and days and months are cut, in KST.
KST = timezone(timedelta(hours=9), "KST")
#: The same offset in ClickHouse's words, for SQL that cuts days (``toStartOfDay(t, 'Asia/Seoul')``).
KST_ZONE = "Asia/Seoul"


def in_kst(value: datetime) -> datetime:
    """``value`` in KST (a naive value is UTC, as the store gives it)."""
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(KST)


def kst_text(value: datetime, seconds: bool = True) -> str:
    """``2026-11-03 14:22:05 KST``: how a person reads a stored time."""
    return in_kst(value).strftime("%Y-%m-%d %H:%M:%S KST" if seconds else "%Y-%m-%d %H:%M KST")


_DATA_T = re.compile(rb'data-t(?:-placeholder)?="([^"]+)"')


def extract_html(fileobj: Any, keywords: Any, comment_tags: Any,
                 options: Any) -> Iterator[tuple[int, str, str, list[str]]]:
    """Babel's extractor for the console's page: the texts of its ``data-t`` and
    ``data-t-placeholder`` attributes (babel.cfg: ``[privaudit.i18n.extract_html: ...]``)."""
    for lineno, line in enumerate(fileobj, start=1):
        for match in _DATA_T.finditer(line):
            yield lineno, "", match.group(1).decode("utf-8"), []


def html_texts(path: Path) -> list[str]:
    """The texts :func:`extract_html` finds in ``path`` (for the catalogue's test)."""
    with path.open("rb") as page:
        return [message for _, _, message, _ in extract_html(page, None, None, None)]
