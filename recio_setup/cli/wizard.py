"""The interactive wizard: the one place that calls questionary.

Each question shows the value the precedence chain gives as its default and validates as you
type. Values given by a flag are not asked again. Ctrl-C raises KeyboardInterrupt (exit 130, with
nothing written); the summary is confirmed before anything is written, unless there is nothing
to write.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from recio_setup.cli.output import Output
from recio_setup.env.settings import FIELD_BY_KEY, Invalid, generate_password
from recio_setup.errors import StepFailed
from recio_setup.result import Value

if TYPE_CHECKING:
    from recio_setup.runtime.kalshikey import ValidKey

OTHER = "other..."
KEEP, ENTER, GENERATE = "Keep the existing password", "Type a password", "Generate a strong one"


def _validator(key: str) -> Any:
    field = FIELD_BY_KEY[key]

    def validate(text: str) -> bool | str:
        try:
            field.normalise(text)
        except Invalid as exc:
            # One line in prompt_toolkit's toolbar: a longer message is cut at the terminal's edge.
            return f"Expected {exc.short}"
        return True

    return validate


def ask(question: Any) -> Any:
    # unsafe_ask lets Ctrl-C through as KeyboardInterrupt instead of returning None.
    return question.unsafe_ask()


def _entered(values: dict[str, Value], key: str, answer: str) -> None:
    current = values[key]
    if answer != current.value:
        values[key] = Value(key, FIELD_BY_KEY[key].normalise(answer), "entered", current.secret)


def _ask_host(values: dict[str, Value], candidates: list[str]) -> None:
    import questionary

    current = values["TRADING_SYSTEM_HOST"].value
    choices = [*dict.fromkeys([current, *candidates, "localhost"]), OTHER]
    answer = ask(
        questionary.select(
            "Host address the services announce (TRADING_SYSTEM_HOST):",
            choices=choices,
            default=current,
        )
    )
    if answer == OTHER:
        answer = ask(
            questionary.text(
                "Host (IP address or name):", validate=_validator("TRADING_SYSTEM_HOST")
            )
        )
    _entered(values, "TRADING_SYSTEM_HOST", answer)


def _ask_text(values: dict[str, Value], key: str) -> None:
    import questionary

    field = FIELD_BY_KEY[key]
    answer = ask(
        questionary.text(
            f"{field.question} ({key}):", default=values[key].value, validate=_validator(key)
        )
    )
    _entered(values, key, answer.strip())


def _ask_auth(values: dict[str, Value]) -> None:
    import questionary

    current = values["AUTH_ENABLED"].value == "true"
    answer = ask(
        questionary.confirm(
            "Enable authentication (AUTH_ENABLED)?", default=current, auto_enter=False
        )
    )
    _entered(values, "AUTH_ENABLED", "true" if answer else "false")


def _ask_password(values: dict[str, Value]) -> None:
    import questionary

    existing = values.get("POSTGRES_PASSWORD")
    choices = ([KEEP] if existing else []) + [GENERATE, ENTER]
    answer = ask(
        questionary.select(
            "Database password (POSTGRES_PASSWORD):", choices=choices, default=choices[0]
        )
    )
    if answer == KEEP and existing:
        return
    if answer == GENERATE:
        values["POSTGRES_PASSWORD"] = Value(
            "POSTGRES_PASSWORD", generate_password(), "generated", True
        )
        return
    while True:
        typed = ask(
            questionary.password("Password (hidden):", validate=_validator("POSTGRES_PASSWORD"))
        )
        again = ask(questionary.password("Repeat it:"))
        if again == typed:
            break
        questionary.print("The two entries differ; once more.", style="fg:ansiyellow")
    values["POSTGRES_PASSWORD"] = Value("POSTGRES_PASSWORD", typed, "entered", True)


INTRO = (
    "recio-setup will write .env, install the port manifest and config, create the data tree "
    "and test PostgreSQL. Nothing is written until you confirm the summary; Ctrl-C stops at any "
    "time."
)


@dataclass(frozen=True)
class DbChoice:
    """What the wizard's database step decided; `rows` are the summary's (what, how) for it."""

    rows: tuple[tuple[str, str], ...]
    create: bool = False
    reset_password: bool = False
    local: bool = False
    skip: bool = False
    admin_user: str | None = field(default=None, repr=False)
    admin_password: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class KalshiAnswer:
    """Credentials the wizard took and checked; written with the rest once the summary is
    confirmed."""

    env: str
    key_id: str
    key: ValidKey


KALSHI_QUESTION = "Add Kalshi API credentials now?"
KALSHI_NEITHER = "neither (later: `credentials add`)"


def ask_kalshi(output: Output) -> KalshiAnswer | None:
    """demo, prod or neither; then the key ID and the PEM file's path, asked again until the
    file holds a usable key. The key's lines are registered as secrets as soon as it is read."""
    import questionary

    from recio_setup.errors import UsageError
    from recio_setup.runtime.kalshikey import check_key_id

    env = ask(
        questionary.select(
            KALSHI_QUESTION, choices=["demo", "prod", KALSHI_NEITHER], default=KALSHI_NEITHER
        )
    )
    if env == KALSHI_NEITHER:
        return None

    def key_id_ok(text: str) -> bool | str:
        try:
            check_key_id(text, "the key ID")
        except UsageError as exc:
            return exc.message
        return True

    key_id = check_key_id(
        ask(questionary.text(f"Kalshi {env} API key ID (a UUID):", validate=key_id_ok))
    )
    while True:
        path = ask(
            questionary.path(
                "Path of the private key file (.pem):",
                validate=lambda text: bool(text.strip()) or "give the path of the .pem file",
            )
        )
        key, problem = _read_key(output, path.strip())
        if key is not None:
            return KalshiAnswer(env, key_id, key)
        questionary.print(problem, style="fg:ansiyellow")


def _read_key(output: Output, path: str) -> tuple[ValidKey | None, str]:
    import os

    from recio_setup.errors import RecioError
    from recio_setup.runtime.kalshi import CREDENTIAL_LIMIT
    from recio_setup.runtime.kalshikey import looks_like_key_material, validate_private_key
    from recio_setup.runtime.readfile import read_whole

    if looks_like_key_material(path):
        output.add_key_lines(path.encode())
        return None, "that is key material, not a path (it is not shown): give the file's path"
    try:
        data = read_whole(os.path.expanduser(path), CREDENTIAL_LIMIT, label=path)  # noqa: PTH111
        output.add_key_lines(data)
        key = validate_private_key(data, path)
    except RecioError as exc:
        return None, output.shown(f"{exc.message}; {exc.hint}" if exc.hint else exc.message)
    except OSError as exc:
        return None, f"{path} cannot be read ({exc.strerror})"
    output.add_key_lines(key.pem)
    return key, ""


def run_wizard(
    values: dict[str, Value],
    candidates: list[str],
    output: Output,
    *,
    database: Callable[[dict[str, Value]], DbChoice] | None,
    also_shown: Sequence[Value] = (),
    only: Collection[str] | None = None,
    kalshi: list[KalshiAnswer] | None = None,
) -> tuple[dict[str, Value], DbChoice | None]:
    """Ask for every value not fixed by a flag and show the summary; return the answers and
    what the database step (`database`, run once the database values are in) decided.
    confirm_changes asks the last question once the plan is known. `also_shown` are values the
    summary shows but the wizard does not ask (the sslmode). `only`: ask just these (values .env
    held but that were not valid), with no database step nor credentials. With `kalshi`, Kalshi
    credentials are offered after the database step and the checked answer is appended to it."""

    output.status(INTRO)
    values = dict(values)

    def asked(key: str) -> bool:
        if only is not None:
            return key in only
        value = values.get(key)
        return value is None or not (value.source.startswith(("flag", "file")))

    if asked("TRADING_SYSTEM_HOST"):
        _ask_host(values, candidates)
    if asked("AUTH_ENABLED"):
        _ask_auth(values)
    for key in ("POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_DB", "POSTGRES_USER"):
        if asked(key):
            _ask_text(values, key)
    if asked("POSTGRES_PASSWORD"):
        _ask_password(values)
    output.add_secret(values["POSTGRES_PASSWORD"].value)
    db = database(values) if database is not None and only is None else None
    answer = ask_kalshi(output) if kalshi is not None and only is None else None
    rows = [[v.name, v.shown(), v.source] for v in [*values.values(), *also_shown]]
    if db is not None:
        rows += [[what, how, "database step"] for what, how in db.rows]
    if answer is not None and kalshi is not None:
        kalshi.append(answer)
        shown = (
            f"key ID {answer.key_id}, RSA {answer.key.bits} bits, SHA-256 {answer.key.fingerprint}"
        )
        rows.append([f"Kalshi {answer.env} credentials", shown, "entered"])
    output.table("Summary", ["variable", "value", "source"], rows)
    return values, db


def confirm_changes(output: Output, *, changes: int, settings_changed: bool) -> None:
    """The last question, once the plan is known: nothing is written without a yes, and
    nothing is asked when there is nothing to write (a re-run on a finished tree)."""
    if not changes:
        output.status("Nothing to write: .env and the tree already match these settings.")
        return
    question = (
        "Write these settings?"
        if settings_changed
        else f"The settings are unchanged. Apply {changes} change(s) to the tree?"
    )
    if not confirm(question, default=True):
        raise StepFailed(
            "cancelled at the summary; nothing was written",
            hint="run it again, or pass the values as flags",
            cause="declined",
        )


def confirm(question: str, default: bool = False) -> bool:
    """A yes/no question on the terminal (callers make sure there is one)."""
    import questionary

    return bool(ask(questionary.confirm(question, default=default, auto_enter=False)))


def ask_secret(question: str) -> str:
    """A masked answer (callers make sure there is a terminal)."""
    import questionary

    return str(ask(questionary.password(question, validate=lambda text: bool(text) or "empty")))
