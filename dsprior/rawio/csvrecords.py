"""CSV bytes cut into blocks of whole records, with each record's physical line number.

pyarrow's streaming CSV reader cuts a file into byte blocks before it parses
them. A field longer than a block, or a quoted field holding a newline, breaks
that cut ("straddling object", "CSV parser got out of sync with chunker"), and
its row numbers count records, not lines. This module does the cutting itself,
so that pyarrow only ever parses whole records:

- a block ends at a newline outside quotes (RFC 4180 quoting: a quote opens a
  field only at its start; ``""`` inside a quoted field is a literal quote), so
  a record of any length or with quoted newlines stays in one block;
- every record carries the 1-based physical line it starts on;
- a UTF-8 byte order mark at the start of the file is dropped;
- blank lines (nothing but spaces, tabs and ``\\r``) are counted and left out.

Memory is bounded by about ``block_bytes`` plus the longest record.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

BOM = b"\xef\xbb\xbf"
_NEWLINE, _QUOTE, _CR = 10, 34, 13
_WHITESPACE = np.zeros(256, bool)
_WHITESPACE[[9, 10, 13, 32]] = True


@dataclass(frozen=True)
class RecordBlock:
    """Whole CSV records: ``data`` holds them back to back, each ending in a newline.

    ``starts[i]`` is the offset of record ``i`` in ``data`` and ``lines[i]`` the
    physical line of the file it starts on. ``blank_lines`` counts the blank
    lines that were dropped from this stretch of the file.
    """

    data: bytes
    starts: np.ndarray
    lines: np.ndarray
    blank_lines: int
    quoted: bool = True  # whether ``data`` may hold a quote (and so a quoted newline)

    def __len__(self) -> int:
        return len(self.starts)

    def record(self, i: int) -> bytes:
        """The bytes of record ``i`` without its line ending."""
        end = self.starts[i + 1] if i + 1 < len(self.starts) else len(self.data)
        return self.data[self.starts[i] : end].rstrip(b"\r\n")

    def drop_first(self) -> RecordBlock:
        """The block without its first record (a header)."""
        if len(self.starts) <= 1:
            return RecordBlock(b"", self.starts[:0], self.lines[:0], self.blank_lines, False)
        cut = int(self.starts[1])
        return RecordBlock(
            self.data[cut:], self.starts[1:] - cut, self.lines[1:], self.blank_lines, self.quoted
        )


def _record_ends(buf: np.ndarray, delimiter: int) -> np.ndarray:
    """Offsets of the newlines that end a record (outside quotes); ``buf`` starts a record."""
    newlines = np.flatnonzero(buf == _NEWLINE)
    quotes = np.flatnonzero(buf == _QUOTE)
    if quotes.size == 0:
        return newlines
    if not _well_formed(buf, quotes, delimiter):
        quotes = _quoting_toggles(buf, quotes, delimiter)
    # A newline is inside a quoted field when an odd number of toggles precede it.
    inside = np.searchsorted(quotes, newlines) % 2 == 1
    return newlines[~inside]


def _well_formed(buf: np.ndarray, quotes: np.ndarray, delimiter: int) -> bool:
    """Whether every quote opens a field at its start or closes it at its end (or is doubled).

    Then quotes alternate open / close and their parity alone tells what is quoted.
    """
    n = len(buf)
    opens, closes = quotes[0::2], quotes[1::2]
    before = buf[np.maximum(opens - 1, 0)]
    # An opener at a field start, or the second quote of a doubled quote ("") in a field.
    prev_quote = np.zeros(len(opens), bool)
    prev_quote[1:] = quotes[1::2][: len(opens) - 1] == opens[1:] - 1
    ok_open = (opens == 0) | (before == delimiter) | (before == _NEWLINE) | (before == _CR)
    if not np.all(ok_open | prev_quote):
        return False
    after = buf[np.minimum(closes + 1, n - 1)]
    next_quote = np.zeros(len(closes), bool)
    k = min(len(closes), len(opens) - 1)
    next_quote[:k] = opens[1 : k + 1] == closes[:k] + 1
    ok_close = (
        (closes == n - 1) | (after == delimiter) | (after == _NEWLINE) | (after == _CR) | next_quote
    )
    return bool(np.all(ok_close))


def _quoting_toggles(buf: np.ndarray, quotes: np.ndarray, delimiter: int) -> np.ndarray:
    """The quotes that open or close quoting, read one by one (for stray quotes in a field).

    A quote inside an unquoted field is a literal character, as pyarrow and Python's csv
    read it; only a quote at a field's start opens quoting.
    """
    toggles: list[int] = []
    inside = False
    skip = -1
    for q in quotes.tolist():
        if q == skip:
            continue
        if inside:
            if q + 1 < len(buf) and buf[q + 1] == _QUOTE:
                skip = q + 1  # a doubled quote: a literal quote, quoting goes on
                continue
            inside = False
            toggles.append(q)
        elif q == 0 or buf[q - 1] in (delimiter, _NEWLINE, _CR):
            inside = True
            toggles.append(q)
    return np.asarray(toggles, np.int64)


class UnclosedRecordError(ValueError):
    """A record that never ends: an unclosed quote would otherwise swallow the whole file."""


def iter_record_blocks(
    stream: BinaryIO,
    *,
    delimiter: str = ",",
    block_bytes: int = 1 << 22,
    max_record_bytes: int = 1 << 28,
) -> Iterator[RecordBlock]:
    """Read ``stream`` (a binary file object) as blocks of whole, non-blank CSV records.

    A record longer than ``max_record_bytes`` (256 MiB; in practice an unclosed quote)
    raises ``UnclosedRecordError`` instead of reading the rest of the file into memory.
    """
    if block_bytes < 1:
        raise ValueError(f"block_bytes must be >= 1, got {block_bytes!r}")
    sep = ord(delimiter)
    carry = b""
    line = 1  # physical line on which ``carry`` starts
    want = block_bytes
    first = True
    while True:
        chunk = stream.read(want)
        eof = not chunk
        buf, carry = (carry + chunk if carry else chunk), b""
        if first:
            if len(buf) < len(BOM) and not eof:
                carry = buf
                continue
            first = False
            if buf.startswith(BOM):
                buf = buf[len(BOM) :]
        if not buf:
            if eof:
                return
            continue
        arr = np.frombuffer(buf, np.uint8)
        ends = _record_ends(arr, sep)
        if eof:
            cut = len(buf)
        elif ends.size:
            cut = int(ends[-1]) + 1
        else:
            if len(buf) > max_record_bytes:
                raise UnclosedRecordError(
                    f"no record ends within {len(buf):,} bytes from line {line}: a quote opened "
                    "there is never closed (or one field is longer than max_record_bytes)"
                )
            carry = buf  # one record longer than a block: read on until it ends
            want = max(want, len(buf))
            continue
        ends = ends[ends < cut]
        block, carry = buf[:cut], buf[cut:]
        yield _block(block, arr[:cut], ends, line)
        line += int(np.count_nonzero(arr[:cut] == _NEWLINE))
        want = block_bytes
        if eof:
            return


def _block(data: bytes, arr: np.ndarray, ends: np.ndarray, line: int) -> RecordBlock:
    """Records of ``data`` (ends: their closing newlines), blank ones dropped, with lines."""
    starts = np.concatenate(([0], ends + 1)).astype(np.int64)
    stops = np.concatenate((ends + 1, [len(data)])).astype(np.int64)
    if stops[-1] == starts[-1]:  # data ends in a newline: no record after it
        starts, stops = starts[:-1], stops[:-1]
    # A record whose first byte is not blank has content; the few others are looked at whole.
    has_content = ~_WHITESPACE[arr[starts]] if len(starts) else np.zeros(0, bool)
    # (Spaces, tabs and line endings only: bytes.strip() would also take \x0b and \x0c.)
    for i in np.flatnonzero(~has_content).tolist():
        has_content[i] = bool(data[starts[i] : stops[i]].strip(b" \t\r\n"))
    newlines = np.flatnonzero(arr == _NEWLINE)
    lines = line + np.searchsorted(newlines, starts)
    blank = int(np.count_nonzero(~has_content))
    if blank:
        keep = np.flatnonzero(has_content)
        pieces = [
            data[s:e] for s, e in zip(starts[keep].tolist(), stops[keep].tolist(), strict=True)
        ]
        pieces = [p if p.endswith(b"\n") else p + b"\n" for p in pieces]
        data = b"".join(pieces)
        starts = np.cumsum([0] + [len(p) for p in pieces[:-1]]).astype(np.int64)[: len(pieces)]
        lines = lines[keep]
    quoted = bool(np.any(arr == _QUOTE))
    return RecordBlock(data=data, starts=starts, lines=lines, blank_lines=blank, quoted=quoted)


__all__ = ["BOM", "RecordBlock", "UnclosedRecordError", "iter_record_blocks"]
