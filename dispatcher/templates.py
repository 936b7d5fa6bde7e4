"""Message templates: ``Bonjour {first_name}``, rendered for a whole chunk at once.

Syntax:

* ``{column}`` is replaced by the row's value of that column (surrounding spaces stripped).
  The column is found by its exact name, else ignoring case, accents, spaces and underscores
  (``{prénom}`` finds ``Prenom``), provided that match is unique.
* An empty value renders as nothing: ``Bonjour {first_name}!`` gives ``Bonjour !``. To avoid
  that, give a default after a bar: ``{first_name|cher client}`` renders ``cher client`` when
  the cell is empty.
* ``{{`` and ``}}`` are literal braces. A lone ``{`` or ``}`` is an error.

Placeholders are checked against the file's columns before any row is read, so an unknown one
stops everything before anything is stored.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from dispatcher.errors import InputError
from dispatcher.reading import describe_columns

__all__ = ["Placeholder", "Template", "compile_template", "fold_name"]

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


def fold_name(name: str) -> str:
    """A column name compared loosely: case, accents, spaces, ``_``, ``-`` and ``.`` ignored."""
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    return "".join(
        ch for ch in decomposed if not unicodedata.combining(ch) and ch not in " _-.\u00a0"
    )


@dataclass(frozen=True)
class Placeholder:
    """One ``{name|default}``: the file column it reads and the text for an empty cell."""

    column: str
    default: str


@dataclass(frozen=True)
class Template:
    """Literal pieces interleaved with placeholders: ``pieces[0] p[0] pieces[1] p[1] ...``."""

    source: str
    pieces: tuple[str, ...]
    placeholders: tuple[Placeholder, ...]

    @property
    def is_constant(self) -> bool:
        """No placeholder: every recipient gets the same text, rendered once."""
        return not self.placeholders

    @property
    def columns(self) -> tuple[str, ...]:
        """The distinct file columns the template reads."""
        return tuple(dict.fromkeys(p.column for p in self.placeholders))

    def render(self, frame: pd.DataFrame) -> np.ndarray[tuple[int], np.dtype[np.object_]]:
        """The text of every row of ``frame`` (str columns, as :mod:`dispatcher.reading` gives)."""
        rows = len(frame)
        result = np.full(rows, self.pieces[0], dtype=object)
        for placeholder, piece in zip(self.placeholders, self.pieces[1:], strict=True):
            values = frame[placeholder.column].to_numpy(dtype=object)
            if placeholder.default:
                values = np.where(values == "", placeholder.default, values)
            result = result + values
            if piece:
                result = result + piece
        return result

    def render_columns(self, columns: Mapping[str, pa.Array], rows: int) -> pa.Array:
        """:meth:`render` on Arrow string columns (as :class:`~dispatcher.reading.Chunk` holds
        them), concatenated by Arrow rather than one Python string a row."""
        parts: list[pa.Array | str] = [self.pieces[0]]
        for placeholder, piece in zip(self.placeholders, self.pieces[1:], strict=True):
            values = columns[placeholder.column]
            if placeholder.default:
                values = pc.if_else(pc.equal(values, ""), placeholder.default, values)
            parts.extend((values, piece))
        if not self.placeholders:
            return pa.array([self.pieces[0]] * rows, pa.string())
        return pc.binary_join_element_wise(*parts, "")

    def render_values(self, values: dict[str, str]) -> str:
        """One text from a row given as a mapping (for a single preview)."""
        parts = [self.pieces[0]]
        for placeholder, piece in zip(self.placeholders, self.pieces[1:], strict=True):
            parts.append(values.get(placeholder.column, "") or placeholder.default)
            parts.append(piece)
        return "".join(parts)


def _resolve(name: str, columns: Sequence[str]) -> str:
    if name in columns:
        return name
    folded = fold_name(name)
    matches = [column for column in columns if fold_name(column) == folded]
    if len(matches) == 1:
        return matches[0]
    seen = describe_columns(columns)
    if matches:
        raise InputError(
            f"placeholder {{{name}}} matches several columns ({', '.join(matches)}); "
            "use the exact column name",
            code="unknown_placeholder",
        )
    raise InputError(
        f"placeholder {{{name}}} has no column in the file (columns: {seen})",
        code="unknown_placeholder",
    )


def compile_template(source: str, columns: Sequence[str]) -> Template:
    """Parse ``source`` and bind its placeholders to ``columns``; :class:`InputError` if not."""
    if not source.strip():
        raise InputError("the message text is empty", code="empty_text")
    pieces: list[str] = []
    placeholders: list[Placeholder] = []
    literal: list[str] = []
    position = 0
    for match in _TOKEN.finditer(source):
        literal.append(source[position : match.start()])
        position = match.end()
        token = match.group(0)
        if token in ("{{", "}}"):
            literal.append(token[0])
            continue
        if match.group(1) is None:
            raise InputError(
                f"unbalanced {token!r} at character {match.start() + 1} of the text; "
                "write {{ or }} for a literal brace",
                code="bad_template",
            )
        name, _, default = match.group(1).partition("|")
        if not name.strip():
            raise InputError("empty placeholder {} in the text", code="bad_template")
        placeholders.append(Placeholder(_resolve(name.strip(), columns), default))
        pieces.append("".join(literal))
        literal = []
    literal.append(source[position:])
    pieces.append("".join(literal))
    return Template(source, tuple(pieces), tuple(placeholders))
