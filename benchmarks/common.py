"""Shared helpers: a Figure, and timing of commands and callables."""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass
class Figure:
    """`measured` and `reference` in seconds; `target` says how the ratio should compare."""

    name: str
    measured: float
    reference: float
    target: str  # e.g. "<= 10x" (measured/reference) or ">= 20x" (reference/measured)

    @property
    def ratio(self) -> float:
        if self.target.startswith(">="):
            return self.reference / self.measured if self.measured else float("inf")
        return self.measured / self.reference if self.reference else float("inf")

    @property
    def met(self) -> bool:
        bound = float(self.target.split()[1].rstrip("x"))
        return self.ratio >= bound if self.target.startswith(">=") else self.ratio <= bound

    def line(self, width: int) -> str:
        return (
            f"{self.name.ljust(width)}  {duration(self.measured):>12}  "
            f"{duration(self.reference):>12}  {self.ratio:7.2f}x  {self.target:>6}  "
            f"{'yes' if self.met else 'NO'}"
        )


def duration(seconds: float) -> str:
    """Seconds in the unit that keeps three significant digits (a lookup is a few us)."""
    if seconds >= 1:
        return f"{seconds:.2f}s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f}ms"
    return f"{seconds * 1e6:.2f}us"


def user_env() -> dict[str, str]:
    """The environment a user's shell has: bytecode caching on (some dev shells turn it off,
    which makes every start recompile every module)."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def time_command(command: Sequence[str], repeat: int = 5, **kwargs: object) -> float:
    """Median wall time of a command over `repeat` runs, after one warm-up run."""
    kwargs.setdefault("env", user_env())
    subprocess.run(list(command), check=True, capture_output=True, **kwargs)  # type: ignore[call-overload]
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(list(command), check=True, capture_output=True, **kwargs)  # type: ignore[call-overload]
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def compare_commands(
    measured: Sequence[str], reference: Sequence[str], repeat: int = 9, **kwargs: object
) -> tuple[float, float]:
    """Median times of two commands, their runs interleaved so load drift hits both alike."""
    kwargs.setdefault("env", user_env())
    samples: tuple[list[float], list[float]] = ([], [])
    for command in (measured, reference):  # warm-up: caches, bytecode
        subprocess.run(list(command), check=True, capture_output=True, **kwargs)  # type: ignore[call-overload]
    for _ in range(repeat):
        for index, command in enumerate((measured, reference)):
            started = time.perf_counter()
            subprocess.run(list(command), check=True, capture_output=True, **kwargs)  # type: ignore[call-overload]
            samples[index].append(time.perf_counter() - started)
    return statistics.median(samples[0]), statistics.median(samples[1])


def compare_calls(
    measured: Callable[[], object],
    reference: Callable[[], object],
    number: int,
    rounds: int = 7,
) -> tuple[float, float]:
    """Seconds per call of two callables, their rounds interleaved so load drift hits both
    alike; each the fastest of its rounds, the one least disturbed by other processes."""
    samples: tuple[list[float], list[float]] = ([], [])
    for _ in range(rounds):
        samples[0].append(time_call(measured, number))
        samples[1].append(time_call(reference, number))
    return min(samples[0]), min(samples[1])


def time_call(function: Callable[[], object], number: int) -> float:
    """Seconds per call of `function`, over `number` calls."""
    started = time.perf_counter()
    for _ in range(number):
        function()
    return (time.perf_counter() - started) / number
