"""Raw identifiers: telling them apart from pseudonyms, putting them in one canonical form before
they are pseudonymised, and masking a resident registration number found in free text.

The forms a person's identifier takes in practice are many: ``010-1234-5678``, ``01012345678``,
``+82 10 1234 5678``, ``010.1234.5678``, ``tel:010-1234-5678``; ``Kim@Example.com `` and
``kim@example.com``; ``900101-1234567``, ``900101 1234567``, ``rrn:9001011234567``; and any of them
in full-width characters (``０１０``, ``＠``). Text is first folded with Unicode NFKC (full-width to
ASCII) and stripped of a ``tel:``, ``mailto:``, ``rrn:`` (and similar) prefix, then matched.

- :func:`raw_kind` says whether a whole value *is* such an identifier (``subject_id`` must be a
  pseudonym, never one of these).
- :func:`canonical` gives the one form a pseudonymiser should hash: a Korean phone number in E.164
  (``+821012345678``), an e-mail address lower-cased, anything else folded and stripped, so that
  one person is one subject whatever form a service happened to send.
- :func:`mask_rrn` finds resident registration numbers (주민등록번호) inside free text, written in
  ASCII or full-width digits, and masks them, so the audit store never becomes where they leak.
  :func:`may_hold_rrn` is its quick test on a whole record (bytes or text), so that the fields of
  the many records without one are not searched one by one; :func:`masked_already` finds one the
  emitter masked before publishing (still a PA-015: it was in the record the service made).
"""

from __future__ import annotations

import re
import unicodedata

_PREFIX = re.compile(r"^(?:tel|phone|mobile|mailto|email|e-mail|rrn|jumin)\s*:\s*", re.IGNORECASE)
_SEP = r"[-.\s]?"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
#: A Korean mobile number: 010/011/016/017/018/019, or +82 10 ... without the leading 0.
_PHONE = re.compile(rf"^(?:\+?82{_SEP}\(?0?\)?|0)(1[016789]){_SEP}(\d{{3,4}}){_SEP}(\d{{4}})$")
#: A resident registration number: YYMMDD, then a digit 1-8 (century and sex, or a foreigner's),
#: then six digits. Birth dates are checked loosely (month 01-12, day 01-31).
_RRN_BODY = r"[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])" + _SEP + r"[1-8][0-9]{6}"
_RRN = re.compile(rf"^{_RRN_BODY}$")
_RRN_IN_TEXT = re.compile(rf"(?<![0-9]){_RRN_BODY}(?![0-9])")
#: Full-width digits and hyphen (what a Korean input method types) as their ASCII forms, one
#: character for one, so that positions in the folded text are positions in the original.
_FULL_WIDTH = str.maketrans("０１２３４５６７８９－", "0123456789-")
#: Thirteen digits (ASCII or full-width), with at most one separator after the sixth: what any
#: resident registration number in a record needs, whatever field it is in.
_DIGIT_B = rb"(?:[0-9]|\xef\xbc[\x90-\x99])"
_CANDIDATE_BYTES = re.compile(_DIGIT_B + rb"{6}(?:[-. ]|\xef\xbc\x8d)?" + _DIGIT_B + rb"{7}")
_CANDIDATE_TEXT = re.compile(r"[0-9０-９]{6}[-. －]?[0-9０-９]{7}")
#: Every candidate lies inside a run of at least 13 bytes (characters) each of which a candidate
#: can be made of. Bytes: each such byte translated to ``0``, any other to ``x``, and ``0`` * 13
#: looked for, all in C: a sixth of the candidate's search, which few records need then
#: (docs/benchmarks.md, "Hostile input"). Text: a plain character class.
_RUN_CLASS = frozenset(b"0123456789\x8d\xbc\xef. -") | frozenset(range(0x90, 0x9A))
_RUN_TABLE = bytes(0x30 if b in _RUN_CLASS else 0x78 for b in range(256))
_RUN_MARK = b"0" * 13
_RUN_BYTES = re.compile(b"0{13,}")
_RUN_TEXT = re.compile(r"[0-9０-９. －-]{13,}")
#: A number :func:`mask_rrn` masked already (by the emitter, before it was published).
_MASKED = re.compile(r"(?<![*0-9])\*{6}[-. －]?\*{7}(?![*0-9])")


def folded(text: str) -> str:
    """NFKC-folded and stripped, without a ``tel:``-like prefix."""
    return _PREFIX.sub("", unicodedata.normalize("NFKC", text).strip())


def raw_kind(value: str) -> str | None:
    """``"e-mail address"``, ``"phone number"`` or ``"resident registration number"`` when the
    whole of ``value`` is one, else None."""
    text = folded(value)
    if _EMAIL.match(text):
        return "e-mail address"
    if _RRN.match(text):
        return "resident registration number"
    if _PHONE.match(text):
        return "phone number"
    return None


def canonical(value: str) -> str:
    """The form to pseudonymise: E.164 for a Korean mobile number, lower case for an e-mail address,
    else folded text. Empty when nothing but whitespace is left (refuse to pseudonymise it)."""
    text = folded(value)
    phone = _PHONE.match(text)
    if phone is not None:
        return "+82" + "".join(phone.groups())
    if _EMAIL.match(text):
        return text.lower()
    return text


def mask_rrn(text: str) -> tuple[str, int]:
    """``text`` with every resident registration number in it masked (its digits as ``*``, the
    separator kept), and how many there were."""
    ascii_text = text.translate(_FULL_WIDTH)
    found = [m.span() for m in _RRN_IN_TEXT.finditer(ascii_text)]
    if not found:
        return text, 0
    out, at = [], 0
    for start, end in found:
        out.append(text[at:start])
        out.append("".join("*" if ch.isdigit() else ch for ch in text[start:end]))
        at = end
    out.append(text[at:])
    return "".join(out), len(found)


def masked_already(text: str) -> bool:
    """Whether ``text`` holds a resident registration number masked as :func:`mask_rrn` masks it."""
    return "******" in text and _MASKED.search(text) is not None


def may_hold_rrn(record: bytes | str) -> bool:
    """Whether a resident registration number may be somewhere in ``record`` (an Avro datum, or a
    JSON text), or one masked already: False means there is none, so its fields need no search.
    JSON's ``\\u`` escapes could spell digits, so a text with one may hold one."""
    if isinstance(record, str):
        return "\\u" in record or "******" in record or any(
            _CANDIDATE_TEXT.search(record, run.start(), run.end()) for run in _RUN_TEXT.finditer(record))
    if b"\\u" in record or b"******" in record:
        return True
    runs = record.translate(_RUN_TABLE)
    return _RUN_MARK in runs and any(
        _CANDIDATE_BYTES.search(record, run.start(), run.end()) for run in _RUN_BYTES.finditer(runs))
