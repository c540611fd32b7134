"""Pseudonyms: keyed, stable, one per person whatever form the identifier came in, and refused
for a weak key or an identifier with nothing in it."""

from __future__ import annotations

import pytest

from privaudit.errors import ConfigError, IdentifierError
from privaudit.producers import Pseudonymizer
from privaudit.schemas.identifiers import raw_kind

KEY = b"0123456789abcdef-a-test-key"


def test_pseudonyms_are_keyed_stable_and_not_raw():
    p = Pseudonymizer(KEY)
    assert p("010-1234-5678") == p(" 010-1234-5678 ") != Pseudonymizer(KEY + b"!")("010-1234-5678")
    assert p("010-1234-5678").startswith("p-") and len(p("x")) == 34
    assert raw_kind(p("kim@example.com")) is None
    with pytest.raises(ConfigError, match="PRIVAUDIT_PSEUDONYM_KEY"):
        Pseudonymizer.from_env({})


@pytest.mark.parametrize("forms", [
    ["010-1234-5678", "01012345678", "+82 10 1234 5678", "+82-10-1234-5678", "010.1234.5678", "010 1234 5678",
     "tel:010-1234-5678", "+821012345678", "０１０－１２３４－５６７８"],
    ["011-234-5678", "01123456789"[:10], "+82 11 234 5678"],
    ["Kim@Example.com", "kim@example.com", " KIM@EXAMPLE.COM ", "kim＠example.com", "mailto:kim@example.com"],
    ["device-0000042", " device-0000042\t", "ｄｅｖｉｃｅ-0000042"],
])
def test_one_person_is_one_subject_whatever_form_the_identifier_came_in(forms):
    p = Pseudonymizer(KEY)
    assert len({p(form) for form in forms}) == 1, {form: p(form) for form in forms}


def test_different_people_stay_different_subjects():
    p = Pseudonymizer(KEY)
    people = ["010-1234-5678", "010-1234-5679", "011-1234-5678", "kim@example.com", "kim@example.org",
              "lee@example.com", "device-1", "device-2"]
    assert len({p(x) for x in people}) == len(people)


@pytest.mark.parametrize("key", [b" " * 16, b" " * 64, b"a" * 32, b"abababababababab", b"\x00" * 32, b"short"])
def test_a_weak_key_is_refused(key):
    with pytest.raises(ConfigError, match="too weak|too short"):
        Pseudonymizer(key)


@pytest.mark.parametrize("raw", ["", " ", "\t\n", "\u3000", "　　"])
def test_an_identifier_with_nothing_in_it_has_no_pseudonym(raw):
    with pytest.raises(IdentifierError, match="empty identifier"):
        Pseudonymizer(KEY)(raw)
