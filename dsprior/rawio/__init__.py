"""Streaming readers for the raw files users bring: CSV (optionally gzipped), Parquet, JSON Lines.

CSV and Parquet use the "long" layout: one line per sentence row, with the id
columns (``example_id``, ``group``, ``label``, optionally ``true_label``) and
``dim`` feature columns. JSON Lines holds one example per line:
``{"example_id", "group", "label", "rows": [[...], ...]}`` (``true_label`` optional).

Reading streams: CSV in blocks of whole records (``csvrecords``) parsed by pyarrow,
Parquet through ``ParquetFile.iter_batches``, about ``chunk_rows`` rows at a time,
so peak memory is bounded by a chunk (plus one example), not by the input.

Rows of one example must be **contiguous** within a file; they keep their order.
An ``example_id`` that reappears after other examples is rejected: within a
file as non-contiguous rows, across files (or sources) as a duplicate. Only the
reappearance is rejected; the first occurrence stands.

``RawReader.read_source`` yields validated ``Example`` objects and ``Reject``
records (reason code + message naming file, line or row, example_id and
problem) in file order, so that ingest, and later a scoring command, can decide
whether to stop or quarantine.

The modules, one concern each: ``sources`` (declarations and file listing),
``rejects`` (reason codes, rejects, their file and their counts), ``validation``
(column and label conversion, row checks), ``reader`` (rows grouped into examples),
one per format (``csv`` with ``csvrecords``, ``parquet``, ``jsonl``) and
``simulated`` (the built-in simulator as a source). A new raw format is one more
module with a ``read_<format>(reader, spec, path, state)`` function, named in
``reader.READERS``. ``simulated`` is not imported here: it pulls in the simulator,
which only ingest needs.
"""

from dsprior.rawio.csv import csv_text
from dsprior.rawio.reader import Example, RawReader
from dsprior.rawio.rejects import (
    BAD_JSON,
    BAD_LABEL,
    DIM_MISMATCH,
    DUPLICATE_ID,
    EMPTY_EXAMPLE,
    EMPTY_FILE,
    INCONSISTENT_GROUP,
    INCONSISTENT_LABEL,
    MISSING_GROUP,
    MISSING_ID,
    NON_FINITE,
    NON_NUMERIC,
    ON_ERROR,
    OUT_OF_RANGE,
    REASONS,
    UNREADABLE_FILE,
    WRONG_COLUMNS,
    FileTally,
    RawDataError,
    Reconciliation,
    Reject,
    RejectCounts,
    RejectsFile,
    duplicate_problem,
    lost_message,
    make_reject,
)
from dsprior.rawio.sources import (
    EXTENSIONS,
    FORMATS,
    REQUIRED_ROLES,
    ROLES,
    SIMULATED,
    SOURCE_KEYS,
    SOURCE_SCHEMA,
    SourceSpec,
    file_bytes,
    infer_format,
    list_files,
)

__all__ = [
    "BAD_JSON",
    "BAD_LABEL",
    "DIM_MISMATCH",
    "DUPLICATE_ID",
    "EMPTY_EXAMPLE",
    "EMPTY_FILE",
    "EXTENSIONS",
    "Example",
    "FORMATS",
    "FileTally",
    "INCONSISTENT_GROUP",
    "INCONSISTENT_LABEL",
    "MISSING_GROUP",
    "MISSING_ID",
    "NON_FINITE",
    "NON_NUMERIC",
    "ON_ERROR",
    "OUT_OF_RANGE",
    "REASONS",
    "REQUIRED_ROLES",
    "ROLES",
    "RawDataError",
    "RawReader",
    "Reconciliation",
    "Reject",
    "RejectCounts",
    "RejectsFile",
    "SIMULATED",
    "SOURCE_KEYS",
    "SOURCE_SCHEMA",
    "SourceSpec",
    "UNREADABLE_FILE",
    "WRONG_COLUMNS",
    "csv_text",
    "duplicate_problem",
    "file_bytes",
    "infer_format",
    "list_files",
    "lost_message",
    "make_reject",
]
