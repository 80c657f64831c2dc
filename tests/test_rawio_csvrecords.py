"""csvrecords: whole records whatever the block size, physical lines, BOM, blank lines, quotes."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from dsprior.rawio.csvrecords import BOM, UnclosedRecordError, iter_record_blocks


def records(
    data: bytes, block_bytes: int, delimiter: str = ",", **options: int
) -> tuple[list, int]:
    """(line, record text) of every record, and the blank lines counted."""
    out, blank = [], 0
    stream = io.BytesIO(data)
    for block in iter_record_blocks(
        stream, delimiter=delimiter, block_bytes=block_bytes, **options
    ):
        out += [(int(block.lines[i]), block.record(i)) for i in range(len(block))]
        blank += block.blank_lines
    return out, blank


def python_csv(text: str, delimiter: str = ",") -> list[tuple[int, list[str]]]:
    """(start line, fields) of every non-blank record, as Python's csv module reads them."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    out, line = [], 1
    for fields in reader:
        if any(f.strip() for f in fields) or len(fields) > 1:
            out.append((line, fields))
        line = reader.line_num + 1
    return out


MESSY = (
    '\ufeffid,group,x\n1,"multi\nline",3\n\n  \r\n4,5\n6,"q""uo,te",8\n'
    '9,a"b,10\n"' + "z" * 300 + '",1,2\r\n11,12,13'
)


@pytest.mark.parametrize("block_bytes", [1, 2, 3, 5, 17, 64, 1 << 20])
def test_every_block_size_gives_the_same_records(block_bytes: int) -> None:
    got, blank = records(MESSY.encode(), block_bytes)
    assert blank == 2
    assert [line for line, _ in got] == [1, 2, 6, 7, 8, 9, 10]
    assert got[0][1] == b"id,group,x"  # the byte order mark is gone
    assert got[1][1] == b'1,"multi\nline",3'
    assert got[4][1] == b'9,a"b,10'  # a quote inside a field is a literal character


def test_records_and_lines_agree_with_pythons_csv_module() -> None:
    rng = np.random.default_rng(0)
    pieces = ["plain", 'with "quote"', "new\nline", "two\n\nlines", "comma, inside", "", "  "]
    rows = []
    for _ in range(300):
        rows.append([pieces[k] for k in rng.integers(0, len(pieces), 3)])
        if rng.random() < 0.1:
            rows.append([])  # a blank line
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for row in rows:
        writer.writerow(row) if row else buffer.write("\n")
    text = buffer.getvalue()
    expected = python_csv(text)
    for block_bytes in (7, 100, 1 << 16):
        got, _ = records(text.encode(), block_bytes)
        assert [line for line, _ in got] == [line for line, _ in expected]
        parsed = [next(csv.reader([r.decode()])) for _, r in got]
        assert parsed == [fields for _, fields in expected]


def test_a_record_longer_than_the_block_is_kept_whole() -> None:
    long = b"a" * 100_000
    got, _ = records(b"h\n" + long + b"\nb\n", block_bytes=1024)
    assert [r for _, r in got] == [b"h", long, b"b"]


def test_tab_delimiter_and_empty_input() -> None:
    got, _ = records(b'a\t"x\ty"\nb\tc\n', 3, delimiter="\t")
    assert [r for _, r in got] == [b'a\t"x\ty"', b"b\tc"]
    assert records(b"", 8) == ([], 0)
    assert records(b"\xef\xbb\xbf", 1) == ([], 0)
    assert records(b"\n\n", 1) == ([], 2)


def test_an_unclosed_quote_stops_instead_of_reading_the_whole_file() -> None:
    data = b"h\na\n" + b'"never closed\n' + b"x\n" * 1000
    with pytest.raises(UnclosedRecordError, match="from line 3: a quote opened there is never"):
        records(data, block_bytes=16, max_record_bytes=512)


@pytest.mark.parametrize("blank", [b"\t", b"\t\t", b"\t  ", b" \t", b"\t\r", b"\t \r", b"\r\t"])
@pytest.mark.parametrize("block_bytes", [1, 2, 3, 1 << 20])
def test_a_line_of_tabs_and_spaces_is_blank_whatever_its_first_byte(
    blank: bytes, block_bytes: int
) -> None:
    # First line (after a BOM), between records, before "\r\n" and last without a newline:
    # each is blank and counted, and the records after it keep their physical lines.
    data = BOM + blank + b"\nh\n" + blank + b"\n1\n" + blank + b"\r\n2\n" + blank
    got, blank_lines = records(data, block_bytes)
    assert got == [(2, b"h"), (4, b"1"), (6, b"2")]
    assert blank_lines == 4


@pytest.mark.parametrize("block_bytes", [1, 1 << 20])
def test_a_line_that_starts_with_a_tab_but_holds_more_is_a_record(block_bytes: int) -> None:
    got, blank_lines = records(b"h\n\tx\n \t,\n\t\r\n", block_bytes)
    assert got == [(1, b"h"), (2, b"\tx"), (3, b" \t,")] and blank_lines == 1


@pytest.mark.parametrize("block_bytes", [1, 1 << 20])
def test_a_form_feed_or_vertical_tab_makes_a_line_a_record_wherever_it_stands(
    block_bytes: int,
) -> None:
    # Blank is spaces, tabs and \r only, as documented (and as Python's csv module reads
    # " \x0c": a record of one field). " \x0c" was dropped as blank while "\x0c" was a record.
    got, blank = records(b"h\n \x0c\n\x0c\n\t\x0b \r\n \n", block_bytes)
    assert got == [(1, b"h"), (2, b" \x0c"), (3, b"\x0c"), (4, b"\t\x0b ")] and blank == 1


@pytest.mark.parametrize("block_bytes", [1, 4, 1 << 20])
@pytest.mark.parametrize("first", [',"x\ny",a"b', '\t"x\ny"\ta"b'])
def test_a_quote_right_after_a_leading_delimiter_opens_a_field_beside_a_stray_quote(
    first: str, block_bytes: int
) -> None:
    """A record's second byte opening a quoted field holds its newline, as Python's csv reads it."""
    delimiter = first[0]
    text = first + "\n2" + delimiter + "3\n"
    got, _ = records(text.encode(), block_bytes, delimiter=delimiter)
    expected = python_csv(text, delimiter)
    assert [line for line, _ in got] == [line for line, _ in expected] == [1, 3]
    assert [next(csv.reader([r.decode()], delimiter=delimiter)) for _, r in got] == [
        fields for _, fields in expected
    ]


@pytest.mark.parametrize("block_bytes", [1, 1 << 20])
@pytest.mark.parametrize("text", ['a"\nb\n', ',a"\nb\n', '"",a"\nb\n', '"a",b"c\nd\n'])
def test_a_stray_quote_ends_no_quoting_whatever_quotes_stand_before_it(
    text: str, block_bytes: int
) -> None:
    """A quote inside an unquoted field leaves the newline after it ending the record."""
    got, _ = records(text.encode(), block_bytes)
    expected = python_csv(text)
    assert [line for line, _ in got] == [line for line, _ in expected] == [1, 2]
    assert [next(csv.reader([r.decode()])) for _, r in got] == [f for _, f in expected]


class ReadSizes(io.BytesIO):
    """A stream that remembers the size of every read asked of it."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.sizes: list = []

    def read(self, size=-1) -> bytes:
        self.sizes.append(size)
        return super().read(size)


def test_reads_ask_for_a_block_or_the_record_so_far_never_the_whole_file() -> None:
    """Memory stays bounded: each read is block_bytes, or more only while one record is long."""
    long = b"x" * 40
    stream = ReadSizes(b"h\n" + b"a,b\n" * 20 + long + b"\n" + b"c\n" * 20)
    got = [
        block.record(i)
        for block in iter_record_blocks(stream, block_bytes=8)
        for i in range(len(block))
    ]
    assert got == [b"h"] + [b"a,b"] * 20 + [long] + [b"c"] * 20
    assert all(isinstance(size, int) and 8 <= size <= len(long) for size in stream.sizes)
    assert stream.sizes.count(8) > len(stream.sizes) // 2


def test_the_defaults_read_comma_separated_records() -> None:
    """Called with a stream alone, the scanner splits on commas outside quotes, by lines."""
    blocks = list(iter_record_blocks(io.BytesIO(b'a,"b\nc"\nd,e\n')))
    assert [(b.record(i), int(b.lines[i])) for b in blocks for i in range(len(b))] == [
        (b'a,"b\nc"', 1),
        (b"d,e", 3),
    ]


def test_a_block_size_below_one_is_refused_by_name() -> None:
    """block_bytes=0 would never read; the error says which argument and what it got."""
    with pytest.raises(ValueError, match=r"^block_bytes must be >= 1, got 0$"):
        next(iter_record_blocks(io.BytesIO(b"a\n"), block_bytes=0))


@pytest.mark.parametrize("block_bytes", [1, 2, 3, 4, 1 << 20])
def test_a_byte_order_mark_is_dropped_only_at_the_start_of_the_file(block_bytes: int) -> None:
    """A U+FEFF starting a later record is data, as Python's csv module keeps it."""
    got, _ = records(BOM + b"h\n" + BOM + b"x\n" + BOM + b"\n", block_bytes)
    assert got == [(1, b"h"), (2, BOM + b"x"), (3, BOM)]


def test_a_record_exactly_max_record_bytes_long_is_read() -> None:
    """max_record_bytes bounds a record: one of exactly that many bytes still reads."""
    got, _ = records(b"abcdefgh\nx\n", block_bytes=8, max_record_bytes=8)
    assert got == [(1, b"abcdefgh"), (2, b"x")]
    with pytest.raises(UnclosedRecordError, match="^no record ends within 9 bytes from line 1: "):
        records(b"abcdefghi\nx\n", block_bytes=9, max_record_bytes=8)


def test_dropping_the_header_keeps_the_records_lines_and_counts_after_it() -> None:
    """drop_first leaves the other records, their lines, the blank count and the quoting flag."""
    data = b'h,"q"\n\n1,2\n\n\n3,"4\n5"\n'
    (block,) = iter_record_blocks(io.BytesIO(data), block_bytes=1 << 20)
    rest = block.drop_first()
    assert [rest.record(i) for i in range(len(rest))] == [b"1,2", b'3,"4\n5"']
    assert rest.data == b'1,2\n3,"4\n5"\n' and rest.starts.tolist() == [0, 4]
    assert rest.lines.tolist() == [3, 6]
    assert (rest.blank_lines, rest.quoted) == (block.blank_lines, True) == (3, True)
    (header,) = iter_record_blocks(io.BytesIO(b'"h"\n\n'), block_bytes=1 << 20)
    empty = header.drop_first()
    assert (len(empty), empty.data, empty.lines.tolist()) == (0, b"", [])
    assert (empty.blank_lines, empty.quoted) == (1, False)  # nothing left that could be quoted


@pytest.mark.parametrize("block_bytes", [1, 1 << 20])
def test_a_line_of_blanks_around_any_other_byte_is_a_record(block_bytes: int) -> None:
    """Only spaces, tabs and line endings make a line blank: any letter beside them is a record."""
    got, blank = records(b"h\n X\n\tXX\r\n\t \nX\t\n", block_bytes)
    assert got == [(1, b"h"), (2, b" X"), (3, b"\tXX"), (5, b"X\t")] and blank == 1


@pytest.mark.parametrize("block_bytes", [3, 64])
def test_a_blank_line_and_a_last_record_without_its_newline(block_bytes: int) -> None:
    """Blank lines before a last record that has no final newline (a quoted newline in it
    too): each blank line counted, the record's text and first line kept."""
    got, blank = records(b"a,b\n\n  \nc,d", block_bytes)
    assert got == [(1, b"a,b"), (4, b"c,d")] and blank == 2
    got, blank = records(b'\n"x\ny",z', block_bytes)
    assert got == [(2, b'"x\ny",z')] and blank == 1
