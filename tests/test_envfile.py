"""The .env writer: round trip through python-dotenv, line preservation, refusal of `${`."""

from __future__ import annotations

import io
import string
from pathlib import Path

import pytest
from dotenv import dotenv_values
from hypothesis import given, settings
from hypothesis import strategies as st

from recio_setup.env.document import EnvDocument, encode_line, masked_diff
from recio_setup.errors import UsageError
from tests.conftest import Cli

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


# Lines of a .env a dry run shows as context, and the words of each that must not show
# (issue 11, item 5): the rule looks at the key, the value and comments.
SECRET_LINES = [
    ("#POSTGRES_PASSWORD=CommentSecret1", "#POSTGRES_PASSWORD", ["CommentSecret1"]),
    ("# POSTGRES_PASSWORD = 'Cmt Secret2'", "# POSTGRES_PASSWORD", ["Cmt", "Secret2"]),
    ("  # export DB_PASS=Bare Secret3", "# export DB_PASS", ["Bare", "Secret3"]),
    ("# see CONN=host=x password=CmtConn4", "#", ["CmtConn4"]),
    ("DB_PASS=DbPassSecret5", "DB_PASS", ["DbPassSecret5"]),
    ("CONN=host=x password=ConnSecret6", "CONN", ["ConnSecret6"]),
    ("CONN='host=x password=Conn Secret7'", "CONN", ["Conn", "Secret7"]),
    ("POSTGRES_PASS=PgPassSecret8", "POSTGRES_PASS", ["PgPassSecret8"]),
    ("DB_PWD=DbPwdSecret9", "DB_PWD", ["DbPwdSecret9"]),
    ("PASSPHRASE=PhraseSecret10", "PASSPHRASE", ["PhraseSecret10"]),
    ("SESSION_COOKIE=CookieSecret11", "SESSION_COOKIE", ["CookieSecret11"]),
    ("JWT=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.JwtSig12", "JWT", ["JwtSig12", "eyJhbGciOi"]),
    ("SSH_KEY_PASS=SshSecret13", "SSH_KEY_PASS", ["SshSecret13"]),
    ("API=https://api.example/x?token=TokenSecret14", "API", ["TokenSecret14"]),
    ("HOOK=https://api.example/x?a=1&access_token=Tok15", "HOOK", ["Tok15"]),
    ("SIGNED=https://s3.example/x?X-Amz-Signature=Sig16", "SIGNED", ["Sig16"]),
    ("DSN=postgresql://u:UrlSecret17@h/db", "DSN", ["UrlSecret17"]),
    ("DSN2=u:BareUrlSecret18@h/db", "DSN2", ["BareUrlSecret18"]),
    ("export dbPassword='Camel Secret19'", "dbPassword", ["Camel", "Secret19"]),
    ("PLAIN=1 # POSTGRES_PASSWORD=InlineSecret20", "PLAIN", ["InlineSecret20"]),
    ("POSTGRES_PASSWORD:ColonSecret21", "# (line 1: a key that is not a name", ["ColonSecret21"]),
    ("DB_PASS;Semi Secret22", "# (line 1: unreadable", ["Semi", "Secret22"]),
    ("LOG_LEVEL=info", "LOG_LEVEL=info", []),
    ("AUTH_ENABLED=false", "AUTH_ENABLED=false", []),
    ("# a plain comment", "# a plain comment", []),
]


@pytest.mark.parametrize(("line", "shown", "hidden"), SECRET_LINES)
def test_dry_run_diff_never_shows_a_secret_line(
    cli: Cli, project: Path, line: str, shown: str, hidden: list[str]
) -> None:
    env = project / ".env"
    env.write_text(f"{line}\nPOSTGRES_PORT=5432\n")
    env.chmod(0o600)
    args = ("--non-interactive", "--skip-db-check", "--host", "127.0.0.1", "--dry-run")
    text = cli(*args, "--postgres-port", "6000", env={"POSTGRES_PASSWORD": "pw-0123"})
    as_json = cli(*args, "--postgres-port", "6000", "--json", env={"POSTGRES_PASSWORD": "pw-0123"})
    assert text.code == 0 and as_json.code == 0, text.err + as_json.err
    diff = as_json.json()["result"]["env_diff"]
    assert f" {shown}" in diff and f" {shown}" in text.out  # the line is there, as context
    for word in hidden:
        assert word not in text.all + as_json.all, f"{word!r} shown"


@pytest.mark.parametrize(("line", "shown", "hidden"), SECRET_LINES)
def test_masked_diff_itself_hides_every_secret_line(
    line: str, shown: str, hidden: list[str]
) -> None:
    # Without the output's own net (Output.redact), the diff alone must already be safe.
    diff = masked_diff(f"{line}\n", f"{line}\nPOSTGRES_PORT=6000\n", ["POSTGRES_PASSWORD"])
    assert f" {shown}" in diff
    assert not [word for word in hidden if word in diff]


def test_a_changed_value_keeps_its_export_prefix_and_indentation() -> None:
    text = "# kept\n  export   A=1\nexport=2\nexport\tB=3\n"
    updated, changed = EnvDocument.parse(text).updated(
        {"A": "x y", "export": "4", "B": "5"}, ["A", "export", "B"]
    )
    assert changed == ["A", "export", "B"]
    assert updated.text == "# kept\n  export   A='x y'\nexport=4\nexport\tB=5\n"


def test_init_keeps_the_bom_and_export_of_a_users_env(cli: Cli, project: Path) -> None:
    (project / ".env").write_bytes(
        "\ufeffTRADING_SYSTEM_HOST=127.0.0.1\nexport POSTGRES_HOST=old.internal\n".encode()
    )
    run = cli("--non-interactive", "--skip-db-check", "--postgres-host", "db.internal")
    assert run.code == 0, run.all
    data = (project / ".env").read_bytes()
    assert data.startswith(b"\xef\xbb\xbfTRADING_SYSTEM_HOST=127.0.0.1\n"), data[:40]
    assert b"\nexport POSTGRES_HOST=db.internal\n" in data
    assert dotenv_values(project / ".env")["POSTGRES_HOST"] == "db.internal"
    assert cli("check", "--skip-db-check").code == 0
