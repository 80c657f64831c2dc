"""Production over time: a history of scored batches, and what a team reads from it.

``history`` is the history's format (JSON Lines, one record per batch), its atomic append
and its reader; ``config`` the ``monitor`` params and the rules they set; ``alerts`` which
batches breach them and when an alert fires; ``plots`` the monitor's ``dvc plots`` rows;
``report`` the stage's metrics and Markdown.
"""

from dsprior.monitoring.alerts import RULE_WORDS, RULES, Alert, breaches, find_alerts
from dsprior.monitoring.config import PARAMS_SCHEMA, Rules, check_params
from dsprior.monitoring.history import (
    DUPLICATE_MODES,
    SCHEMA_VERSION,
    append_record,
    batch_labels,
    default_batch_name,
    input_fingerprint,
    is_duplicate,
    read_history,
    record_batch,
    record_from_summary,
    utc_now,
)
from dsprior.monitoring.plots import NO_BATCHES, PICTURES, monitor_records, shipped_values
from dsprior.monitoring.report import WHAT_TO_DO, monitor_history, render_report

__all__ = [
    "DUPLICATE_MODES",
    "NO_BATCHES",
    "PARAMS_SCHEMA",
    "PICTURES",
    "RULES",
    "RULE_WORDS",
    "SCHEMA_VERSION",
    "WHAT_TO_DO",
    "Alert",
    "Rules",
    "append_record",
    "batch_labels",
    "breaches",
    "check_params",
    "default_batch_name",
    "find_alerts",
    "input_fingerprint",
    "is_duplicate",
    "monitor_history",
    "monitor_records",
    "read_history",
    "record_batch",
    "record_from_summary",
    "render_report",
    "shipped_values",
    "utc_now",
]
