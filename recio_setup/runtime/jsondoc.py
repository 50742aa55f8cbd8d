"""json.loads with every way it can fail worded for a user, so a corrupt file is a finding.

json.loads raises more than JSONDecodeError: RecursionError for arrays nested thousands deep,
ValueError for an integer longer than Python converts (4300 digits by default), and
UnicodeDecodeError. All of them become NotJson, whose `problem` says what is wrong.
"""

from __future__ import annotations

import json
from typing import Any

# No setting in these files (ports, modes, counts) needs more digits; a longer number is damage.
MAX_INT_DIGITS = 100


class NotJson(ValueError):
    """The bytes are not a JSON document this tool can read; `problem` says why."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


def _bounded_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise NotJson(f"holds a number with {digits} digits (at most {MAX_INT_DIGITS} are read)")
    return int(text)


def load_json(data: bytes | str) -> Any:
    """The parsed document, or NotJson."""
    try:
        return json.loads(data, parse_int=_bounded_int)
    except NotJson:
        raise
    except json.JSONDecodeError as exc:
        raise NotJson(
            f"not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    except UnicodeDecodeError as exc:
        raise NotJson(f"not UTF-8 text ({exc.reason})") from None
    except RecursionError:
        raise NotJson("nested too deeply to read (arrays or objects within each other)") from None
    except ValueError as exc:  # anything else json or int() refuses
        raise NotJson(f"cannot be read as JSON: {exc}") from None
