"""
Tables that hold up: at 80 columns, at 160, and piped.

Columns are separated by three spaces, as kubectl's. A column marked ``keep`` (names,
states, instance ids) is never cut; when a row is wider than the terminal, the other
columns give way, the widest first, down to a minimum, cut with ``…`` or wrapped onto
more lines (``wrap``); then columns with nothing to show, and the least useful ones
(``drop``, highest first) are left out, as ``-o wide`` adds them; if that is not
enough, the line runs past the edge rather than cut what identifies a row. Piped (no
width), nothing is cut or wrapped: one row a line, every cell non-empty (``-``), so
``awk`` counts fields alike on every line.

Long texts (errors) belong in footnotes: a cell holds ``[1]`` and the text follows
the table, wrapped to the width.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Sequence

    from cbctl._output import Terminal

__all__ = ["Cell", "Column", "Footnotes", "render_table"]

GAP: Final = "   "
ELLIPSIS: Final = "…"


class Column(NamedTuple):
    """
    One column of a table.

    Attributes:
        header: Its title (upper case, no spaces).
        keep: Never cut it.
        wrap: Wrap it onto more lines rather than cut it.
        minimum: The narrowest it may get.
        right: Right-aligned (numbers).
        drop: Left out on a narrow terminal, the highest first (0: never).
        split: A word longer than the column may be split across lines (not for
            ids and names a reader copies).
    """

    header: str
    keep: bool = False
    wrap: bool = False
    minimum: int = 6
    right: bool = False
    drop: int = 0
    split: bool = True


class Cell(NamedTuple):
    """A cell: its text and, on a coloured terminal, its style."""

    text: str
    style: str | None = None


class Footnotes:
    """Long texts referred to from cells as ``[n]``, printed under the table."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def ref(self, text: str) -> str:
        """``[n]`` for ``text`` (the same text gets the same number)."""
        if text not in self.notes:
            self.notes.append(text)
        return f"[{self.notes.index(text) + 1}]"

    def render(self, terminal: Terminal, indent: str = "") -> list[str]:
        """The notes, ``[n] text``, wrapped to the terminal (after ``indent``)."""
        import textwrap

        lines = []
        for number, text in enumerate(self.notes, 1):
            head = f"{indent}[{number}] "
            if terminal.width is None:
                lines.append(head + text)
                continue
            lines += textwrap.wrap(
                text,
                width=max(20, terminal.width),
                initial_indent=head,
                subsequent_indent=" " * len(head),
                break_on_hyphens=False,
            ) or [head]
        return lines


def _widths(
    columns: Sequence[Column], rows: list[list[Cell]], width: int | None
) -> list[int]:
    """Each column's width: natural, then narrowed (widest first) to fit ``width``."""
    natural = [
        max([len(c.header), *(len(r[i].text) for r in rows)])
        for i, c in enumerate(columns)
    ]
    if width is None:
        return natural
    widths = list(natural)
    room = width - len(GAP) * (len(columns) - 1)
    while sum(widths) > room:
        narrowable = [
            i
            for i, c in enumerate(columns)
            if not c.keep and widths[i] > max(c.minimum, len(c.header))
        ]
        if not narrowable:
            break
        widest = max(narrowable, key=lambda i: widths[i])
        floor = max(columns[widest].minimum, len(columns[widest].header))
        widths[widest] = max(floor, widths[widest] - (sum(widths) - room))
    return widths


def _fitting(
    columns: list[Column], cells: list[list[Cell]], width: int | None
) -> tuple[list[Column], list[list[Cell]]]:
    """
    Leave out columns until the table fits ``width``: first those with nothing to
    show (every cell ``-``), then the droppable ones, the highest ``drop`` first.
    """
    while width is not None:
        widths = _widths(columns, cells, width)
        if sum(widths) + len(GAP) * (len(columns) - 1) <= width:
            break
        empty = [
            i
            for i, c in enumerate(columns)
            if not c.keep and all(row[i].text == "-" for row in cells)
        ]
        droppable = [i for i, c in enumerate(columns) if c.drop]
        if not (empty or droppable):
            break
        gone = empty[0] if empty else max(droppable, key=lambda i: columns[i].drop)
        columns = [c for i, c in enumerate(columns) if i != gone]
        cells = [[c for i, c in enumerate(row) if i != gone] for row in cells]
    return columns, cells


def _fit(text: str, width: int, column: Column) -> list[str]:
    """A cell's lines at ``width``: as is, wrapped, or cut with an ellipsis."""
    if len(text) <= width or column.keep:
        return [text]
    if column.wrap:
        import textwrap

        wrapped = textwrap.wrap(
            text, width=width, break_on_hyphens=False, break_long_words=column.split
        )
        return wrapped or [""]
    return [text[: width - 1] + ELLIPSIS]


def render_table(
    columns: Sequence[Column],
    rows: Sequence[Sequence[Cell | str]],
    terminal: Terminal,
) -> list[str]:
    """The header and rows as lines, laid out for ``terminal``."""
    cells = [[c if isinstance(c, Cell) else Cell(c) for c in row] for row in rows]
    for row in cells:
        for i, cell in enumerate(row):
            if not cell.text:
                row[i] = Cell("-", cell.style)
    columns, cells = _fitting(list(columns), cells, terminal.width)
    widths = _widths(columns, cells, terminal.width)
    header = [Cell(c.header, "bold") for c in columns]
    lines = []
    for row in [header, *cells]:
        parts = [_fit(cell.text, widths[i], columns[i]) for i, cell in enumerate(row)]
        height = max(len(p) for p in parts)
        for n in range(height):
            out = []
            for i, cell in enumerate(row):
                text = parts[i][n] if n < len(parts[i]) else ""
                pad = max(widths[i], len(text))
                padded = text.rjust(pad) if columns[i].right else text.ljust(pad)
                out.append(
                    terminal.paint(text, cell.style) + padded[len(text) :]
                    if not columns[i].right
                    else padded[: pad - len(text)] + terminal.paint(text, cell.style)
                )
            lines.append(GAP.join(out).rstrip())
    return lines
