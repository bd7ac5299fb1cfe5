"""Verification codes: random, readable, case-insensitive, and every single typo is caught by the check symbol."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from mra.services.codes import (
    ALPHABET,
    DEFAULT_FORMAT,
    CodeFormat,
    Reading,
    check_symbol,
    format_code,
    new_code,
    read_code,
)

payloads = st.text(alphabet=ALPHABET, min_size=12, max_size=12)


def code_of(payload: str) -> str:
    return payload + check_symbol(payload)


def test_a_new_code_looks_like_the_default_format_and_reads_back() -> None:
    code = new_code()
    assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]", code)
    reading = read_code(code)
    assert reading.reading is Reading.OK
    assert reading.printed() == code


def test_codes_do_not_repeat_and_use_every_symbol() -> None:
    codes = [new_code() for _ in range(2000)]
    assert len(set(codes)) == len(codes)
    used = {c for code in codes for c in code.replace("-", "")[:-1]}
    assert used == set(ALPHABET)  # 24,000 draws from 32 symbols: a missing one would mean a biased source


@given(payloads)
def test_any_case_and_any_separator_read_the_same(payload: str) -> None:
    code = code_of(payload)
    for typed in (code.lower(), format_code(code), " ".join(code), format_code(code).lower().replace("-", " ")):
        assert read_code(typed).compact == code


@given(payloads)
def test_every_single_character_substitution_is_caught(payload: str) -> None:
    code = code_of(payload)
    for i, original in enumerate(code):
        for other in ALPHABET:
            if other == original:
                continue
            typo = code[:i] + other + code[i + 1 :]
            assert read_code(typo).reading is Reading.MISTYPED, (code, typo)


@given(payloads, st.integers(min_value=0, max_value=11), st.sampled_from("UuÜ*#!"))
def test_a_character_outside_the_alphabet_reads_as_mistyped(payload: str, i: int, bad: str) -> None:
    code = code_of(payload)
    assert read_code(code[:i] + bad + code[i + 1 :]).reading is Reading.MISTYPED


@given(payloads)
def test_every_swap_of_neighbouring_characters_is_caught(payload: str) -> None:
    code = code_of(payload)
    for i in range(len(code) - 1):
        if code[i] != code[i + 1]:
            swapped = code[:i] + code[i + 1] + code[i] + code[i + 2 :]
            assert read_code(swapped).reading is Reading.MISTYPED, (code, swapped)


def test_crockford_look_alikes_read_as_the_symbol_they_resemble() -> None:
    code = code_of("1010" * 3)
    assert read_code(code.replace("1", "I").replace("0", "O")).compact == code
    assert read_code(code.replace("1", "l")).compact == code


@pytest.mark.parametrize("typed", ["", "K7QH-2M9X-4TZB", "K7QH-2M9X-4TZB-PP", "K7QH"])
def test_a_code_of_the_wrong_length_is_malformed(typed: str) -> None:
    reading = read_code(typed)
    assert reading.reading is Reading.MALFORMED
    assert "13 characters" in reading.detail


def test_a_format_with_fewer_than_60_random_bits_is_refused() -> None:
    with pytest.raises(ValidationError):
        CodeFormat(payload=11)
    longer = CodeFormat(payload=16, group=0)
    code = new_code(longer)
    assert len(code) == 17 and "-" not in code
    assert read_code(code, longer).reading is Reading.OK
    assert read_code(code, DEFAULT_FORMAT).reading is Reading.MALFORMED
