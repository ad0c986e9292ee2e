"""The CLI's option types and shared options: each kind of value parsed and range-checked once.

A number within a range, a finite number, a comma-separated list of numbers (counts, sizes)
and a list of CPUs this process may use are click types here; a command declares an option
with one of them and receives checked values. A refused value is a usage error (exit 2) that
names the option and the accepted range.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ostoolkit.errors import InvalidRequest
from ostoolkit.files import check_output_path
from ostoolkit.measure.limits import LEAST_COUNT, farthest_outside
from ostoolkit.render import FORMATS

F = TypeVar("F", bound=Callable[..., Any])
ASCII_INT = re.compile(r"[+-]?[0-9]+", re.ASCII)
ASCII_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?", re.ASCII)
MAX_REPEAT = 1000
# Longer numbers are out of every range here; int() refuses over 4300 digits with a ValueError.
MAX_DIGITS = 32

if TYPE_CHECKING:  # generic from click 8.4; subscripting it at run time fails before that
    NumbersType = click.ParamType[tuple[int, ...]]
else:
    NumbersType = click.ParamType


def shown(value: str) -> str:
    """A user's value quoted for a one-line message, cut short if it is long."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "...'"


def spoken(numbers: Sequence[int]) -> str:
    """Numbers as a help text says them: '10 and 100', '1, 10 and 100'."""
    *head, last = map(str, numbers)
    return f"{', '.join(head)} and {last}" if head else last


def listed(numbers: Sequence[int]) -> str:
    """Numbers as a list option takes them: '1,10,100'."""
    return ",".join(map(str, numbers))


def _range_text(low: float | None, high: float | None) -> str:
    """An accepted range as a message says it: 'within 0.1..60', 'at least 1'."""
    if low is not None and high is not None:
        return f"within {low}..{high}"
    return f"at least {low}" if low is not None else f"at most {high}"


class StrictIntRange(click.IntRange):
    """An integer range that takes ASCII digits only: int() would also read '١٠' as 10."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and not (
            ASCII_INT.fullmatch(value.strip()) and len(value) <= MAX_DIGITS
        ):
            self.fail(
                f"{shown(value)} is not a whole number {_range_text(self.min, self.max)}",
                param,
                ctx,
            )
        return super().convert(value, param, ctx)


class FiniteFloatRange(click.FloatRange):
    """A float range that refuses nan and inf: a comparison with nan is always false."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        accepted = _range_text(self.min, self.max)
        if isinstance(value, str) and not (
            ASCII_FLOAT.fullmatch(value.strip()) and len(value) <= MAX_DIGITS
        ):
            self.fail(f"{shown(value)} is not a finite number {accepted}", param, ctx)
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{shown(value)} is not a finite number {accepted}", param, ctx)
        return number


class IntList(NumbersType):
    """A comma-separated list of distinct whole numbers within a range: "1,10,100".

    The one parser of every list-of-numbers option: ASCII digits only, no empty item, no
    repeat, each within the range; anything else is refused naming the range. ``ordered``
    sorts the numbers; otherwise they stay in the order given.
    """

    name = "text"  # shown as TEXT in --help, like a plain string option

    def __init__(self, low: int, high: int, example: str, ordered: bool = False) -> None:
        self.low, self.high, self.example, self.ordered = low, high, example, ordered

    def bounds(self) -> tuple[int, int]:
        """The accepted range, low..high."""
        return self.low, self.high

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[int, ...]:
        if isinstance(value, tuple):
            return value
        text = str(value)
        lo, hi = self.bounds()
        parts = [part.strip() for part in text.split(",")]
        if not text.strip() or not all(ASCII_INT.fullmatch(part) for part in parts):
            self.fail(
                f"{shown(text)} is not a comma-separated list of whole numbers {lo}..{hi}, "
                f"e.g. {self.example}",
                param,
                ctx,
            )
        if any(len(part) > MAX_DIGITS for part in parts):
            self.fail(f"{shown(text)}: each number must be within {lo}..{hi}", param, ctx)
        numbers = tuple(int(part) for part in parts)
        if len(set(numbers)) != len(numbers):
            self.fail(f"{shown(text)} names a number twice", param, ctx)
        if farthest_outside(numbers, lo, hi) is not None:
            self.fail(f"{shown(text)}: each number must be within {lo}..{hi}", param, ctx)
        return tuple(sorted(numbers)) if self.ordered else numbers


def counts(most: int) -> IntList:
    """--workers/--clients: distinct counts 1..most, sorted; the library's rule and limits
    (``measure.limits``, and ``most`` from the measurement's own MAX_*)."""
    return IntList(LEAST_COUNT, most, "1,10,100", ordered=True)


def sizes_mb(most: int) -> IntList:
    """--parent-rss: distinct MiB sizes 0..most, in the order given."""
    return IntList(0, most, "256,1024")


def allowed_cpus() -> list[int]:
    """The CPUs this process may run on (sched_getaffinity(2)), in order."""
    return sorted(os.sched_getaffinity(0))


def not_allowed(cpu: int) -> str:
    """The message for a CPU this process may not use, naming the ones it may."""
    return f"CPU {cpu} is not available to this process; choose from " + listed(allowed_cpus())


class AllowedCpu(StrictIntRange):
    """--cpu N: one CPU this process may use (sched_getaffinity(2))."""

    def __init__(self) -> None:
        super().__init__(0)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        cpu = super().convert(value, param, ctx)
        if cpu not in allowed_cpus():
            self.fail(not_allowed(cpu), param, ctx)
        return cpu


class CpuList(IntList):
    """--cpus "0,1": distinct CPUs this process may use, in the order given."""

    def __init__(self) -> None:
        super().__init__(0, 0, "0,1")

    def bounds(self) -> tuple[int, int]:
        return 0, max(allowed_cpus())

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[int, ...]:
        cpus = super().convert(value, param, ctx)
        refused = [cpu for cpu in cpus if cpu not in allowed_cpus()]
        if refused:
            self.fail(not_allowed(refused[0]), param, ctx)
        return cpus


def given(ctx: click.Context, *names: str) -> set[str]:
    """Which of these parameters the command line set (rather than left at their default)."""
    default = click.core.ParameterSource.DEFAULT
    return {name for name in names if ctx.get_parameter_source(name) != default}


def check_json_path(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Refuse an unusable --json PATH before any work ('-' is stdout)."""
    if value is None or value == "-":
        return value
    try:
        check_output_path(value, "--json")
    except InvalidRequest as err:
        raise click.BadParameter(str(err).removeprefix("--json ")) from None
    return value


def output_options(func: F) -> F:
    """The --format and --json options every command shares."""
    func = click.option(
        "--json",
        "json_path",
        callback=check_json_path,
        metavar="PATH",
        help="Also write the JSON report (schema ostoolkit/1) to PATH; '-' for stdout.",
    )(func)
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default="table",
        show_default=True,
        help="How to print the result on stdout.",
    )(func)
