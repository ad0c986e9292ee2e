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
from typing import Any

from ostoolkit.errors import OstoolkitError, ReportError
from ostoolkit.files import MAX_REPORT_BYTES, read_regular_bytes
from ostoolkit.report import SCHEMA, STATUSES, UNITS, Report, Result

# The JSON Schema of SCHEMA, shipped as package data. The loader checks the same rules by hand
# (no runtime dependency, and messages that name the field); tests/unit/test_report_loader.py
# proves with the jsonschema library that the two agree.
SCHEMA_FILE = Path(__file__).resolve().with_name("schema") / "ostoolkit-1.schema.json"
# The most samples (and so runs) a result may hold, so that its arrays stay bounded (80 MB a
# copy; compare's time is linear in them). The largest figure, connection set-up with
# `connections --real --connect-per-tx`, took 54,385 in 5 s on a 2-CPU VM: about 650,000 at
# the longest --duration (60 s), some millions on a many-core host.
MAX_SAMPLES = 10_000_000
# The largest finite double: beyond it (1e400, an integer of 400 digits) a figure cannot be
# compared or written as JSON again (the schema's bounds).
FLOAT_MAX = sys.float_info.max
# A JSON escape of a UTF-16 surrogate; a surrogate left in a decoded string is an unpaired one,
# which cannot be encoded as UTF-8, so printing it would end in a traceback.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_UNPAIRED = "holds an unpaired UTF-16 surrogate escape (\\ud800-\\udfff): not Unicode text"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# A JSON array: a list from json.loads, a tuple from Report.to_dict() given to report_from_dict.
_SEQUENCE = (list, tuple)
_KINDS = (
    (type(None), "null"),
    (bool, "a boolean"),
    (int, "an integer"),
    (float, "a number"),
    (str, "a string"),
    (_SEQUENCE, "a list"),
    (dict, "an object"),
)

Checker = Callable[[Any], Any]


def report_from_dict(data: Any, source: str = "report") -> Report:
    """Build a Report from its JSON form, checking every field on the way: any problem is one
    ``ReportError`` line naming ``source`` and the field (another schema's, before its fields)."""
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
        raise ReportError(f"{source}: {_path(bad.segments)} {bad.problem}") from None
    del fields["schema"]
    return Report(**fields)


def load_report(path: Path, limit: int = MAX_REPORT_BYTES) -> Report:
    """Read a report saved by any ostoolkit command, or refuse it in one line: a regular file of
    at most ``limit`` bytes, strict UTF-8 (a BOM ignored), JSON without NaN, Infinity or
    unpaired surrogates, then every field checked by ``report_from_dict``."""
    name = str(path) if str(path).isprintable() else json.dumps(str(path))
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
    flagged: list[float] = []  # NaN, Infinity, and decimals beyond a double (1e400 is inf)

    def number(word: str) -> float:
        value = float(word)
        if not math.isfinite(value):
            flagged.append(value)
        return value

    try:
        data = json.loads(text.removeprefix("\ufeff"), parse_constant=number, parse_float=number)
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
        reason = str(err).split(";")[0]
        raise ReportError(f"{name} holds a number too long to read: {reason}") from None
    report = report_from_dict(data, name)
    if flagged or _SURROGATE_ESCAPE.search(raw):  # walked for the path only then
        bad = _not_json_value(data)
        if bad is not None:
            raise ReportError(f"{name}: {bad[0]} {bad[1]}")
    return report


def _not_json_value(data: Any) -> tuple[str, str] | None:
    """The first value JSON cannot hold (NaN, Infinity, an unpaired surrogate) and its path;
    iterative, so a report nested as deeply as the parser allows cannot overflow the stack."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(data, ())]
    while stack:
        value, segments = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                if _SURROGATE.search(key):
                    return _path((*segments, key)), f"is a key that {_UNPAIRED}"
                stack.append((item, (*segments, key)))
        elif isinstance(value, _SEQUENCE):
            stack.extend((item, (*segments, index)) for index, item in enumerate(value))
        elif isinstance(value, float) and not math.isfinite(value):
            return _path(segments), f"is {_describe(value)}: JSON has no NaN or Infinity"
        elif isinstance(value, str) and _SURROGATE.search(value):
            return _path(segments), _UNPAIRED
    return None


# -- checking a report's fields -------------------------------------------------------------
# The rules mirror schema/ostoolkit-1.schema.json. Each checker takes one value and returns it
# as the dataclass holds it, or raises _Invalid; the JSON path is put together only then, on
# the way out, so a valid report (the usual case) costs no string building.


class _Invalid(Exception):
    """One value is wrong: what ("is null, expected a string") and where, its JSON path's keys
    and indices outermost first (each enclosing checker puts its own in front)."""

    def __init__(self, problem: str, *segments: str | int) -> None:
        super().__init__(problem)
        self.problem = problem
        self.segments = list(segments)


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


def _show(value: Any) -> str:
    """A value quoted for a one-line message, cut short: "furlongs", 42, [1, 2]."""
    try:
        text = json.dumps(value, ensure_ascii=True)
    except (TypeError, ValueError, RecursionError):
        text = repr(value).encode("ascii", "backslashreplace").decode()
    return text if len(text) <= 60 else text[:57] + "..."


def _describe(value: Any) -> str:
    """What a JSON value is, for "X is <this>, expected Y": null, a string, NaN, a list..."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"
    if isinstance(value, int) and not -FLOAT_MAX <= value <= FLOAT_MAX:
        return "a number beyond a double"
    for kind, name in _KINDS:
        if isinstance(value, kind):
            return name
    return f"a Python {type(value).__name__}"


def _typed(kind: type | tuple[type, ...], expected: str) -> Checker:
    """A checker for a value of one JSON type: "is <what it is>, expected <expected>"."""

    def check(value: Any) -> Any:
        if not isinstance(value, kind):
            raise _Invalid(f"is {_describe(value)}, expected {expected}")
        return value

    return check


_string = _typed(str, "a string")
_optional_string = _typed((str, type(None)), "a string or null")
_flag = _typed(bool, "true or false")
_dict = _typed(dict, "an object")


def _object(value: Any) -> dict[str, Any]:
    """A JSON object of free-form values, copied: host, extra, data."""
    return dict(_dict(value))


def _figure(value: Any) -> float:
    """A finite number, int or float (a bool is not one): median, p10, p90, a sample."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise _Invalid(f"is {_describe(value)}, expected a number")
    if not -FLOAT_MAX <= value <= FLOAT_MAX:  # NaN fails every comparison
        raise _Invalid(f"is {_describe(value)}, expected a finite number")
    return value


def _integer(value: Any) -> int:
    """A whole number: 30.0 counts, as JSON Schema's "integer" says."""
    if isinstance(value, float) and math.isfinite(value):
        if not value.is_integer():
            raise _Invalid(f"is {value}, expected an integer")
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise _Invalid(f"is {_describe(value)}, expected an integer")
    return value


def _at_least(check: Checker, low: float, expected: str) -> Checker:
    """``check``, then refuse a number below ``low``: "is -1, expected <expected>"."""

    def checked(value: Any) -> Any:
        number = check(value)
        if number < low:
            raise _Invalid(f"is {number}, expected {expected}")
        return number

    return checked


_count = _at_least(_integer, 0, "a count of 0 or more")
_size = _at_least(_figure, 0, "0 or more")


def _optional_size(value: Any) -> float | None:
    """A finite number of 0 or more, or null: resolution."""
    return None if value is None else _size(value)


def _result_id(value: Any) -> str:
    """A non-empty string: a result's id, the key compare matches figures by."""
    text: str = _string(value)
    if not text:
        raise _Invalid("is empty, expected a result id such as switch.process.same_core")
    return text


def _one_of(choices: tuple[str, ...]) -> Checker:
    """A checker for a string from a fixed list: unit (UNITS), status (STATUSES)."""

    def check(value: Any) -> str:
        if isinstance(value, str) and value in choices:
            return value
        found = _show(value) if isinstance(value, str) else _describe(value)
        raise _Invalid(f"is {found}, expected one of {', '.join(choices)}")

    return check


def _list(item: Checker, what: str, capped: str = "") -> Checker:
    """A checker for a list of ``item``s (what: "strings"), kept as a tuple; a ``capped`` list
    (its noun: "samples") holds MAX_SAMPLES at most."""

    def check(value: Any) -> tuple[Any, ...]:
        if not isinstance(value, _SEQUENCE):
            raise _Invalid(f"is {_describe(value)}, expected a list of {what}")
        if capped and len(value) > MAX_SAMPLES:
            raise _Invalid(
                f"holds {len(value)} {capped}, more than the {MAX_SAMPLES} a result may hold"
            )
        checked = []
        try:
            for element in value:
                checked.append(item(element))
        except _Invalid as err:
            err.segments.insert(0, len(checked))
            raise
        return tuple(checked)

    return check


def _fields(
    value: Any, fields: dict[str, tuple[Checker, bool]], what: str, others: Checker | None = None
) -> dict[str, Any]:
    """Check an object against ``{key: (checker, required)}``; return the checked values. A key
    not in ``fields`` is refused (``what`` names the object) unless ``others`` checks it: a
    loaded report saved again loses nothing unnoticed."""
    out: dict[str, Any] = {}
    for key, item in _dict(value).items():
        check = fields[key][0] if key in fields else others
        try:
            if check is None:
                raise _Invalid(f"is not a field of {what}")
            out[key] = check(item)
        except _Invalid as err:
            err.segments.insert(0, key)
            raise
    for key, (_, required) in fields.items():
        if required and key not in value:
            raise _Invalid("is missing", key)
    return out


def _tool(value: Any) -> dict[str, Any]:
    """The writer: {"name": ..., "version": ..., "methods": {...}}, any other key a string."""
    return _fields(value, TOOL_FIELDS, "tool", others=_string)


def _methods(value: Any) -> dict[str, int]:
    """tool.methods: each section's method version (report.METHODS), a whole number of 1 or
    more; any section name, so a newer ostoolkit's report still loads."""
    return _fields(value, {}, "tool.methods", others=_method)


def _result(value: Any) -> Result:
    """One result, checked field by field."""
    return Result(**_fields(value, RESULT_FIELDS, "a result"))


_strings = _list(_string, "strings")
_run = _at_least(_count, 1, "a run of at least one sample")
_method = _at_least(_integer, 1, "a method version of 1 or more")
# tool.methods is absent from reports written before 0.2.0: their methods are unknown.
TOOL_FIELDS: dict[str, tuple[Checker, bool]] = {
    "name": (_string, True),
    "version": (_string, True),
    "methods": (_methods, False),
}
# Required: what the dataclass cannot do without. Optional ones take the dataclass's default.
RESULT_FIELDS: dict[str, tuple[Checker, bool]] = {
    "id": (_result_id, True),
    "label": (_string, True),
    "unit": (_one_of(UNITS), True),
    "median": (_figure, True),
    "p10": (_figure, True),
    "p90": (_figure, True),
    "samples": (_list(_figure, "numbers", "samples"), True),
    "n": (_count, True),
    "status": (_one_of(STATUSES), False),
    "notes": (_strings, False),
    "extra": (_object, False),
    "claim": (_optional_string, False),
    "verdict": (_optional_string, False),
    "runs": (_list(_run, "sample counts", "runs"), False),
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
    "results": (_list(_result, "results"), True),
    "findings": (_strings, False),
    "warnings": (_strings, False),
    "data": (_object, False),
}
