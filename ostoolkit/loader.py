"""The one strict loader of saved reports (``load_report``), used by ``compare``.

Saved reports are where files from elsewhere enter ostoolkit, so it trusts nothing: regular
files of bounded size, strict UTF-8 and JSON, every field checked against the published
schema (``SCHEMA_FILE``); whatever is wrong is one ``ReportError`` line naming the field.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

from ostoolkit.errors import OstoolkitError, ReportError
from ostoolkit.files import MAX_REPORT_BYTES, read_regular_bytes
from ostoolkit.report import SCHEMA, STATUSES, UNITS, Report, Result

# The JSON Schema of SCHEMA, shipped as package data. The loader checks the same rules by hand
# (no runtime dependency, and messages that name the field); tests/unit/test_report_loader.py
# proves with the jsonschema library that the two agree.
SCHEMA_FILE = Path(__file__).resolve().with_name("schema") / "ostoolkit-1.schema.json"


def report_from_dict(data: Any, source: str = "report") -> Report:
    """Build a Report from its JSON form, checking every field's type on the way.

    Any problem is one ``ReportError`` line naming ``source`` and the field; a report of another
    schema is refused before its fields are looked at.
    """
    if not isinstance(data, dict):
        raise ReportError(
            f"{source} is not an ostoolkit report: the top level is {_describe(data)}, "
            "expected an object"
        )
    if data.get("schema") != SCHEMA:
        found = _show(data["schema"]) if "schema" in data else "missing"
        raise ReportError(f"{source}: schema is {found}, expected {json.dumps(SCHEMA)}")
    try:
        fields = _fields(data, REPORT_FIELDS, "an ostoolkit/1 report")
    except _Invalid as bad:
        raise ReportError(f"{source}: {bad.path} {bad.problem}") from None
    del fields["schema"]
    return Report(**fields)


def load_report(path: Path, limit: int = MAX_REPORT_BYTES) -> Report:
    """Read a report saved by any ostoolkit command, or refuse it in one line.

    Regular files of at most ``limit`` bytes, strict UTF-8 (a BOM ignored), JSON without NaN,
    Infinity or unpaired surrogates, then every field checked by ``report_from_dict``.
    """
    name = _file_name(path)
    try:
        raw = read_regular_bytes(path, limit)
    except OstoolkitError as err:
        raise ReportError(str(err)) from None
    if not raw.strip():
        raise ReportError(f"{name} is empty: no report in it")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ReportError(
            f"{name} is not UTF-8: byte 0x{raw[err.start]:02x} at offset {err.start} "
            f"({err.reason}); reports are UTF-8 JSON"
        ) from None
    numbers = _NumberWatch()
    try:
        data = json.loads(
            text.removeprefix("\ufeff"),
            parse_constant=numbers.constant,
            parse_float=numbers.decimal,
        )
    except json.JSONDecodeError as err:
        raise ReportError(
            f"{name} is not JSON: {err.msg} at line {err.lineno} column {err.colno}"
        ) from None
    except RecursionError:
        depth = sys.getrecursionlimit()
        raise ReportError(
            f"{name} is nested too deeply to read (over about {depth} levels)"
        ) from None
    except ValueError as err:  # an integer longer than sys.get_int_max_str_digits()
        reason = _one_line(err).split(";")[0]
        raise ReportError(f"{name} holds a number too long to read: {reason}") from None
    report = report_from_dict(data, name)
    if numbers.non_finite or _SURROGATE_ESCAPE.search(raw):
        bad = _not_json_value(data)
        if bad is not None:
            raise ReportError(f"{name}: {bad[0]} {bad[1]}")
    return report


# -- checking a report's fields -------------------------------------------------------------
# The rules mirror schema/ostoolkit-1.schema.json. Each checker takes one value and returns it
# as the dataclass holds it, or raises _Invalid; the JSON path is put together only then, on
# the way out, so a valid report (the usual case) costs no string building.

# The most samples a result may hold (and so runs: each has one at least), so that a figure's
# arrays stay bounded (80 MB a copy) whatever the file holds. ostoolkit's largest figure is
# connection set-up with `connections --real --connect-per-tx`, one sample per transaction:
# 54,385 in its default 5 s against PgBouncer on a 2-CPU VM, so about 650,000 at the longest
# --duration (60 s), and some millions on a many-core host (four client processes at some
# 10,000 a second each). The rest write far fewer: 20,000 connection set-ups at most in a
# report (--full: 1000 clients, --runs 20), 10,000 in `connections --clients 10000`, 1,000 per
# figure in measure-switch and measure-spawn (--repeat). compare's time is linear in them.
MAX_SAMPLES = 10_000_000
# The largest finite double: JSON numbers beyond it (1e400, or an integer of 400 digits) cannot
# be compared or re-serialised as JSON, so figures must lie within it (the schema's bounds).
FLOAT_MAX = sys.float_info.max
# A JSON escape of a UTF-16 surrogate. Paired ones decode to one character; an unpaired one
# leaves a string Python cannot encode to UTF-8, so printing it would end in a traceback.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# A JSON array: a list from json.loads, or a tuple from Report.to_dict() given to
# report_from_dict.
_SEQUENCE = (list, tuple)
_UNPAIRED = "holds an unpaired UTF-16 surrogate escape (\\ud800-\\udfff): not Unicode text"

Checker = Callable[[Any], Any]


class _Invalid(Exception):
    """One value is wrong: what is wrong ("is null, expected a string") and where.

    ``segments`` is its JSON path, keys and list indices, outermost first; each enclosing
    checker puts its own key or index in front as the exception passes through it.
    """

    def __init__(self, problem: str, *segments: str | int) -> None:
        super().__init__(problem)
        self.problem = problem
        self.segments = list(segments)

    @property
    def path(self) -> str:
        """The JSON path as a message shows it."""
        return _path(self.segments)


def _path(segments: Sequence[str | int]) -> str:
    """Render a JSON path: results[3].median, data["a b"][0]; "the top level" when empty."""
    text = ""
    for segment in segments:
        if isinstance(segment, int):
            text += f"[{segment}]"
        elif _NAME.fullmatch(segment):
            text += f".{segment}" if text else segment
        else:
            text += f"[{_show(segment)}]"
    return text or "the top level"


class _NumberWatch:
    """json.loads hooks noting NaN, Infinity and overflowing decimals (1e400 parses as inf).

    The file is walked for the offending value's path only when one was seen
    (``_not_json_value``), so a valid report pays one Python call per decimal number.
    """

    def __init__(self) -> None:
        self.non_finite = False

    def constant(self, name: str) -> float:
        """Called for the bare words NaN, Infinity and -Infinity."""
        self.non_finite = True
        return float(name)

    def decimal(self, text: str) -> float:
        """Called for every number with a fraction or an exponent."""
        value = float(text)
        if value in (math.inf, -math.inf):
            self.non_finite = True
        return value


def _file_name(path: Path) -> str:
    """The path as messages show it: as given, JSON-quoted if it holds a newline or the like."""
    text = str(path)
    return text if text.isprintable() else json.dumps(text)


def _one_line(err: BaseException) -> str:
    """An exception's message cut to its first line (messages here are one line each)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _show(value: Any) -> str:
    """A value quoted for a one-line message, cut short: "furlongs", 42, [1, 2]."""
    try:
        text = json.dumps(value, ensure_ascii=True)
    except (TypeError, ValueError, RecursionError):
        text = repr(value).encode("ascii", "backslashreplace").decode()
    return text if len(text) <= 60 else text[:57] + "..."


def _describe(value: Any) -> str:
    """What a JSON value is, for "X is <this>, expected Y": null, a string, NaN, a list..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer" if -FLOAT_MAX <= value <= FLOAT_MAX else "a number beyond a double"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, _SEQUENCE):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return f"a Python {type(value).__name__}"


def _number_problem(value: Any) -> str | None:
    """Why ``value`` is not a finite JSON number, or None when it is one (a bool is not)."""
    if isinstance(value, float):
        if math.isfinite(value):
            return None
    elif isinstance(value, int) and not isinstance(value, bool):
        if -FLOAT_MAX <= value <= FLOAT_MAX:
            return None
    else:
        return f"is {_describe(value)}, expected a number"
    return f"is {_describe(value)}, expected a finite number"


def _figure(value: Any) -> float:
    """A finite number, int or float: median, p10, p90, duration_s."""
    problem = _number_problem(value)
    if problem is not None:
        raise _Invalid(problem)
    return cast(float, value)


def _figures(value: Any) -> tuple[float, ...]:
    """A list of finite numbers: samples."""
    if not isinstance(value, _SEQUENCE):
        raise _Invalid(f"is {_describe(value)}, expected a list of numbers")
    if len(value) > MAX_SAMPLES:
        raise _Invalid(f"holds {len(value)} samples, more than the {MAX_SAMPLES} a result may hold")
    for index, item in enumerate(value):
        if type(item) is float and item - item == 0.0:  # finite: the usual case, no call
            continue
        if type(item) is int and -FLOAT_MAX <= item <= FLOAT_MAX:  # bytes, counts: no call
            continue
        problem = _number_problem(item)
        if problem is not None:
            raise _Invalid(problem, index)
    return tuple(value)


def _string(value: Any) -> str:
    """A string: label, command, started_at, tool.name..."""
    if not isinstance(value, str):
        raise _Invalid(f"is {_describe(value)}, expected a string")
    return value


def _result_id(value: Any) -> str:
    """A non-empty string: a result's id, the key compare matches figures by."""
    text = _string(value)
    if not text:
        raise _Invalid("is empty, expected a result id such as switch.process.same_core")
    return text


def _optional_string(value: Any) -> str | None:
    """A string or null: claim, verdict."""
    if value is not None and not isinstance(value, str):
        raise _Invalid(f"is {_describe(value)}, expected a string or null")
    return value


def _one_of(choices: tuple[str, ...]) -> Checker:
    """A checker for a string from a fixed list: unit (UNITS), status (STATUSES)."""

    def check(value: Any) -> str:
        if isinstance(value, str) and value in choices:
            return value
        found = _show(value) if isinstance(value, str) else _describe(value)
        raise _Invalid(f"is {found}, expected one of {', '.join(choices)}")

    return check


def _strings(value: Any) -> tuple[str, ...]:
    """A list of strings: argv, notes, findings, warnings."""
    if not isinstance(value, _SEQUENCE):
        raise _Invalid(f"is {_describe(value)}, expected a list of strings")
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise _Invalid(f"is {_describe(item)}, expected a string", index)
    return tuple(value)


def _count(value: Any) -> int:
    """A whole number of at least 0: n. 30.0 counts, as JSON Schema's "integer" says."""
    if isinstance(value, float) and math.isfinite(value):
        if not value.is_integer():
            raise _Invalid(f"is {value}, expected an integer")
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise _Invalid(f"is {_describe(value)}, expected an integer")
    if value < 0:
        raise _Invalid(f"is {value}, expected a count of 0 or more")
    return value


def _run_sizes(value: Any) -> tuple[int, ...]:
    """A list of positive whole numbers: runs (how many samples each run gave)."""
    if not isinstance(value, _SEQUENCE):
        raise _Invalid(f"is {_describe(value)}, expected a list of sample counts")
    if len(value) > MAX_SAMPLES:
        raise _Invalid(f"holds {len(value)} runs, more than the {MAX_SAMPLES} a result may hold")
    sizes = []
    for index, item in enumerate(value):
        if type(item) is int and item > 0:  # the usual case, no call
            sizes.append(item)
            continue
        try:
            size = _count(item)
        except _Invalid as err:
            err.segments.insert(0, index)
            raise
        if size < 1:
            raise _Invalid("is 0, expected a run of at least one sample", index)
        sizes.append(size)
    return tuple(sizes)


def _flag(value: Any) -> bool:
    """true or false: exact."""
    if not isinstance(value, bool):
        raise _Invalid(f"is {_describe(value)}, expected true or false")
    return value


def _optional_size(value: Any) -> float | None:
    """A finite number of 0 or more, or null: resolution."""
    if value is None:
        return None
    size = _figure(value)
    if size < 0:
        raise _Invalid(f"is {size}, expected 0 or more")
    return size


def _object(value: Any) -> dict[str, Any]:
    """A JSON object of free-form values: host, extra, data."""
    if not isinstance(value, dict):
        raise _Invalid(f"is {_describe(value)}, expected an object")
    return dict(value)


def _fields(
    value: Any, fields: dict[str, tuple[Checker, bool]], what: str, others: Checker | None = None
) -> dict[str, Any]:
    """Check an object against ``{key: (checker, required)}``; return the checked values.

    A key not in ``fields`` is refused (``what`` names the object in the message) unless
    ``others`` checks it: a loaded report saved again loses nothing unnoticed.
    """
    if not isinstance(value, dict):
        raise _Invalid(f"is {_describe(value)}, expected an object")
    out: dict[str, Any] = {}
    for key, item in value.items():
        spec = fields.get(key)
        try:
            if spec is not None:
                out[key] = spec[0](item)
            elif others is not None:
                out[key] = others(item)
            else:
                raise _Invalid(f"is not a field of {what}")
        except _Invalid as err:
            err.segments.insert(0, key)
            raise
    for key, (_, required) in fields.items():
        if required and key not in value:
            raise _Invalid("is missing", key)
    return out


def _tool(value: Any) -> dict[str, str]:
    """The writer: {"name": ..., "version": ...}, any other key a string too."""
    return _fields(value, TOOL_FIELDS, "tool", others=_string)


def _results(value: Any) -> tuple[Result, ...]:
    """The list of results, each checked field by field."""
    if not isinstance(value, _SEQUENCE):
        raise _Invalid(f"is {_describe(value)}, expected a list of results")
    results = []
    for index, item in enumerate(value):
        try:
            results.append(Result(**_fields(item, RESULT_FIELDS, "a result")))
        except _Invalid as err:
            err.segments.insert(0, index)
            raise
    return tuple(results)


TOOL_FIELDS: dict[str, tuple[Checker, bool]] = {"name": (_string, True), "version": (_string, True)}
# Required: what the dataclass cannot do without. Optional ones take the dataclass's default.
RESULT_FIELDS: dict[str, tuple[Checker, bool]] = {
    "id": (_result_id, True),
    "label": (_string, True),
    "unit": (_one_of(UNITS), True),
    "median": (_figure, True),
    "p10": (_figure, True),
    "p90": (_figure, True),
    "samples": (_figures, True),
    "n": (_count, True),
    "status": (_one_of(STATUSES), False),
    "notes": (_strings, False),
    "extra": (_object, False),
    "claim": (_optional_string, False),
    "verdict": (_optional_string, False),
    "runs": (_run_sizes, False),
    "exact": (_flag, False),
    "resolution": (_optional_size, False),
}
# schema and tool identify the file, so they are required though Report has defaults for them.
REPORT_FIELDS: dict[str, tuple[Checker, bool]] = {
    "schema": (_string, True),  # its value is checked first, in report_from_dict
    "tool": (_tool, True),
    "command": (_string, True),
    "argv": (_strings, True),
    "started_at": (_string, True),
    "duration_s": (_figure, True),
    "host": (_object, True),
    "results": (_results, True),
    "findings": (_strings, False),
    "warnings": (_strings, False),
    "data": (_object, False),
}


def _not_json_value(data: Any) -> tuple[str, str] | None:
    """The first value JSON cannot hold (NaN, Infinity, an unpaired surrogate) and its path.

    Iterative, so a report nested as deeply as the parser allows cannot overflow the stack.
    Run only when the parser saw such a number or the file holds a surrogate escape.
    """
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(data, ())]
    while stack:
        value, segments = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                if not key.isascii() and not _is_unicode(key):
                    return _path((*segments, key)), f"is a key that {_UNPAIRED}"
                stack.append((item, (*segments, key)))
        elif isinstance(value, _SEQUENCE):
            stack.extend((item, (*segments, index)) for index, item in enumerate(value))
        elif isinstance(value, float) and not math.isfinite(value):
            return _path(segments), f"is {_describe(value)}: JSON has no NaN or Infinity"
        elif isinstance(value, str) and not value.isascii() and not _is_unicode(value):
            return _path(segments), _UNPAIRED
    return None


def _is_unicode(text: str) -> bool:
    """Whether ``text`` can be written as UTF-8 (it cannot when it holds a lone surrogate)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
