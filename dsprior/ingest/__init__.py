"""Ingest: the declared raw sources read, validated and written as the canonical dataset.

Sources are read in params order, each source's files sorted by path, rows in
file order; so the same inputs give the same dataset. ``on_error: fail`` stops
at the first bad example with a message naming file, line or row, example_id
and problem; ``on_error: quarantine`` hands each rejected example to the caller
(the stage writes it with its reason to the rejects file) and goes on. Either
way the metrics reconcile: examples read = written + rejected, per source and
per reason (``reconcile``).

The modules, from the bottom up: ``config`` (the ``ingest`` params section),
``counts`` (what a run read, wrote and rejected, and the metrics made of it),
``writer`` (the dataset writer and how an example goes into it), then the two
paths built on them, ``serial`` and ``parallel`` (``workers > 1``: files read in
parallel processes, the same bytes as a serial run), and ``run``, which picks one.
"""

from dsprior.ingest.config import PARAMS_SCHEMA, IngestConfig, check_inputs
from dsprior.ingest.counts import IngestResult, SourceCounts, failure_message, reconcile
from dsprior.ingest.run import ingest_sources

__all__ = [
    "PARAMS_SCHEMA",
    "IngestConfig",
    "IngestResult",
    "SourceCounts",
    "check_inputs",
    "failure_message",
    "ingest_sources",
    "reconcile",
]
