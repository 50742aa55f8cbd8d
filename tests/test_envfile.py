"""The .env writer: round trip through python-dotenv, line preservation, refusal of `${`."""

from __future__ import annotations

import io
import string

import pytest
from dotenv import dotenv_values
from hypothesis import given, settings
from hypothesis import strategies as st

from recio_setup.envfile import EnvDocument, encode_line, masked_diff
from recio_setup.errors import UsageError

PRINTABLE = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from(list(" #$'\"\\=")),
    max_size=40,
)


@settings(max_examples=400, deadline=None)
@given(PRINTABLE)
def test_every_printable_value_round_trips_or_is_refused_up_front(value: str) -> None:
    try:
        line = encode_line("POSTGRES_PASSWORD", value)
    except UsageError:
        assert "${" in value, f"only values with ${{ may be refused, not {value!r}"
        return
    assert dotenv_values(stream=io.StringIO(line))["POSTGRES_PASSWORD"] == value


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["A", "B", "POSTGRES_DB", "X_1"]), PRINTABLE, max_size=4))
def test_updating_a_file_keeps_foreign_lines_and_reads_back(values: dict[str, str]) -> None:
    original = "# keep me\nFOREIGN='untouched'\n\nA=old\n"
    values = {k: v for k, v in values.items() if "${" not in v}
    document, _changed = EnvDocument.parse(original).updated(values, sorted(values))
    read_back = dotenv_values(stream=io.StringIO(document.text))
    for key, value in values.items():
        assert read_back[key] == value
    assert read_back["FOREIGN"] == "untouched"
    assert document.text.startswith("# keep me\nFOREIGN='untouched'\n")


@pytest.mark.parametrize("value", ["${HOME}", "a${X}b", "x\ny"])
def test_unrepresentable_values_are_refused(value: str) -> None:
    with pytest.raises(UsageError):
        encode_line("K", value)


def test_only_changed_lines_change() -> None:
    original = "# c1\nFOO=bar baz\nPOSTGRES_PORT=5432\n# c2\nPOSTGRES_DB=db\n"
    document, changed = EnvDocument.parse(original).updated(
        {"POSTGRES_PORT": "6543", "POSTGRES_DB": "db"}, ["POSTGRES_PORT", "POSTGRES_DB"]
    )
    assert changed == ["POSTGRES_PORT"]
    assert document.text == original.replace("5432", "6543")


def test_diff_masks_secrets_but_shows_they_changed() -> None:
    diff = masked_diff(
        "POSTGRES_PASSWORD=old-secret\n", "POSTGRES_PASSWORD=new-secret\n", ["POSTGRES_PASSWORD"]
    )
    assert "secret" not in diff
    assert "(changed)" in diff
    assert all(ch in string.printable for ch in diff)


def test_diff_never_echoes_secret_looking_or_unreadable_lines() -> None:
    old = (
        "POSTGRES_PASSWORD='BADSECRET1\nKALSHI_API_SECRET=KS-SECRET-2\n"
        "DATABASE_URL=postgresql://u:URLSECRET3@h/db\nAPI_KEY=AK-SECRET-4\nPLAIN=visible\n"
    )
    new = old + "AUTH_ENABLED=false\n"
    diff = masked_diff(old, new, ["POSTGRES_PASSWORD"])
    for secret in ("BADSECRET1", "KS-SECRET-2", "URLSECRET3", "AK-SECRET-4"):
        assert secret not in diff
    assert "PLAIN=visible" in diff and "+AUTH_ENABLED=false" in diff
