"""ostoolkit.files: text for an output whose encoding cannot carry µ, × or a strip's blocks."""

import ast
import io
import json
import sys
from pathlib import Path

import click
import pytest

from ostoolkit.files import (
    ASCII_FALLBACK,
    FallbackStream,
    fallback_stream,
    fit_encoding,
    write_stdout,
)

PACKAGE = Path(__file__).resolve().parents[2] / "ostoolkit"
# Non-ASCII characters in the package's strings that are never written: the byte-order mark
# the loader strips, and the Arabic-Indic digits options.py names as refused input.
NEVER_WRITTEN = {"\ufeff", "١", "٠"}


def ascii_stream() -> io.TextIOWrapper:
    """A text stream as a terminal in the C locale gives it: ASCII, strict."""
    return io.TextIOWrapper(io.BytesIO(), encoding="ascii", errors="strict")


def written(stream: io.TextIOWrapper) -> bytes:
    """What reached the bytes below ``stream``."""
    stream.flush()
    return stream.buffer.getvalue()


def to_ascii(text: str) -> str:
    """What an ASCII output gets for ``text`` (not a JSON document)."""
    return fit_encoding(text, "ascii")


def test_ascii_spells_what_ostoolkit_writes():
    cell = "1.83 µs 0.99× [0.98–1.01] same ▁▄▄█▇▄▃▄ ²↕"
    assert to_ascii(cell) == "1.83 us 0.99x [0.98-1.01] same _--#*-:- 2^"
    assert to_ascii("├─ a\n│  └─ b") == "|- a\n|  `- b"
    assert to_ascii("- ⚠️ noisy; ✗ ≤ 0, ≥ 1, ≈ 2, ±5 %, a → b, cut…, —") == (
        "- ! noisy; x <= 0, >= 1, ~ 2, +-5 %, a -> b, cut..., -"
    )
    assert to_ascii("plain") == "plain"


def test_the_ascii_last_resort_never_raises():
    assert to_ascii("café ™ ﬁ 中 \udcff") == "cafe TM fi ? ?"  # lone surrogate: a bad file name
    every = "".join(map(chr, range(0x80, 0x10000)))
    assert to_ascii(every).isascii()


def test_the_table_is_ascii_with_one_char_where_columns_align():
    assert all(value.isascii() for value in ASCII_FALLBACK.values())
    assert not any(key.isascii() for key in ASCII_FALLBACK)
    for char in "µ×–—│├└─▁▂▃▄▅▆▇█²↕":  # in table cells, trees and strips
        assert len(ASCII_FALLBACK[char]) == 1, char


def test_the_table_covers_every_character_the_package_writes():
    """A new µ-like character in a string of the package needs its entry (or NEVER_WRITTEN)."""
    found: dict[str, str] = {}
    for path in PACKAGE.rglob("*.py"):
        if path.name == "files.py":  # the table itself, and its docstrings' examples
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.update({c: path.name for c in node.value if not c.isascii()})
    missing = {c: where for c, where in found.items() if c not in {*ASCII_FALLBACK, *NEVER_WRITTEN}}
    assert not missing, f"add these to files.ASCII_FALLBACK: {missing}"


def test_fit_encoding_changes_only_what_the_encoding_lacks():
    text = "2.3 µs 1.1× │ ▁█"
    assert fit_encoding(text, "utf-8") is text
    assert fit_encoding(text, None) is text  # io.StringIO: no encoding, takes any text
    assert fit_encoding(text, "ascii") == "2.3 us 1.1x | _#"
    assert fit_encoding(text, "latin-1") == "2.3 µs 1.1× | _#"  # latin-1 has µ and ×
    assert fit_encoding(text, "no-such-codec") == "2.3 us 1.1x | _#"
    assert fit_encoding("a \udcff", "utf-8") == "a ?"  # even UTF-8 cannot carry it


def test_fit_encoding_keeps_every_value_of_a_json_document():
    report = {"claim": "~5 µs", "verdict": "2.0× faster", "tree": "└─ a", "emoji": "⚠️ 😀"}
    text = json.dumps(report, indent=2, ensure_ascii=False) + "\n"
    fitted = fit_encoding(text, "ascii")
    assert fitted.isascii()
    assert "\\u00b5" in fitted
    assert json.loads(fitted) == report
    assert fit_encoding("{not json} 2 µs", "ascii") == "{not json} 2 us"


def test_write_stdout_on_an_ascii_stdout(monkeypatch):
    stream = ascii_stream()
    monkeypatch.setattr(sys, "stdout", stream)
    write_stdout("fork 2,486 µs ▁█\n")
    assert written(stream) == b"fork 2,486 us _#\n"


def test_fallback_stream_wraps_only_what_needs_it():
    utf8 = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    assert fallback_stream(utf8) is utf8
    assert fallback_stream(None) is None
    wrapped = fallback_stream(ascii_stream())
    assert isinstance(wrapped, FallbackStream)
    assert fallback_stream(wrapped) is wrapped
    with pytest.raises(TypeError):
        wrapped.write(b"bytes")


def test_click_writes_through_the_fallback_stream(monkeypatch):
    """click rewraps an ASCII stream with a buffer as UTF-8; the wrapper has none on purpose."""
    stream = ascii_stream()
    monkeypatch.setattr(sys, "stderr", fallback_stream(stream))
    click.echo("Error: 2.3 µs ± 0.1 ×", err=True)
    assert written(stream) == b"Error: 2.3 us +- 0.1 x\n"
