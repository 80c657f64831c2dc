"""Raw sources as declared under ``ingest.sources`` in params.yaml, and their files.

A ``SourceSpec`` is one validated declaration: where the files are, their format
(given, or implied by each file's extension), the negative rate the source was
thinned at, and how its columns are found. ``list_files`` lists what a source's
path holds; a ``format: simulated`` source has no files (``rawio.simulated``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dsprior import settings
from dsprior.contract import EXAMPLE_ID, GROUP, LABEL, TRUE_LABEL

FORMATS = ("csv", "parquet", "jsonl", "simulated")
SIMULATED = "simulated"  # drawn by the built-in simulator (dsprior/simulator.py), no raw files
EXTENSIONS = {
    ".csv": "csv",
    ".csv.gz": "csv",
    ".tsv": "csv",
    ".tsv.gz": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".jsonl.gz": "jsonl",
    ".ndjson": "jsonl",
    ".ndjson.gz": "jsonl",
}
ROLES = (EXAMPLE_ID, GROUP, LABEL, TRUE_LABEL)
REQUIRED_ROLES = (EXAMPLE_ID, GROUP, LABEL)
SOURCE_KEYS = ("path", "format", "negative_rate", "header", "columns", "features", "delimiter")


class _Column(settings.Spec):
    """A column: its name (a non-empty string) or its 0-based position (an integer)."""

    def check(self, value: Any, key: str) -> Any:
        if isinstance(value, bool) or not (
            (isinstance(value, str) and value) or (isinstance(value, int) and value >= 0)
        ):
            raise ValueError(f"{key} must be a column name or a 0-based position, got {value!r}")
        return value


# One declared source (ingest.sources.<name>); the documented optional keys may be left out.
SOURCE_SCHEMA: dict[str, settings.Spec] = {
    "path": settings.Text(),
    "format": settings.Optional(settings.Choice(*FORMATS)),
    "negative_rate": settings.Number(minimum=0, maximum=1, min_open=True),
    "header": settings.Optional(settings.Flag()),
    "columns": settings.Optional(settings.MapOf(_Column(), keys=ROLES, min_len=0)),
    "features": settings.Optional(settings.ListOf(_Column(), min_len=1, none=True)),
    "delimiter": settings.Optional(settings.Text()),
}


@dataclass(frozen=True)
class SourceSpec:
    """One raw source as declared under ``ingest.sources`` in params.yaml."""

    name: str
    path: Path
    negative_rate: float
    format: str | None = None
    header: bool = True
    columns: Mapping[str, str | int] = field(default_factory=dict)
    features: Sequence[str | int] | None = None
    delimiter: str = ","
    # format: simulated only: the ``generate`` params section the simulator draws from
    simulation: Mapping[str, Any] | None = None

    @classmethod
    def from_params(
        cls, name: str, params: Mapping[str, Any], *, simulation: Mapping[str, Any] | None = None
    ) -> SourceSpec:
        """Validate one source's params; raise ValueError naming the bad key or value.

        A ``format: simulated`` source is drawn by the simulator from ``simulation`` (the
        ``generate`` section), which must declare a source of the same name and rate.
        """
        key = f"ingest.sources.{name}"
        if params.get("format") == SIMULATED:
            return cls._simulated(name, params, simulation)
        settings.check_section(params, SOURCE_SCHEMA, key)
        rate = float(params["negative_rate"])
        fmt = params.get("format")
        header = params.get("header", True)
        columns = dict(params.get("columns") or {})
        if not header:
            missing = [r for r in REQUIRED_ROLES if r not in columns]
            if missing or not all(isinstance(v, int) for v in columns.values()):
                raise ValueError(
                    f"{key}.columns: with header: false, columns must map {REQUIRED_ROLES} "
                    f"(and optionally {TRUE_LABEL!r}) to 0-based positions, got {columns!r}"
                )
        features = params.get("features")
        delimiter = params.get("delimiter", ",")
        if len(delimiter) != 1:
            raise ValueError(f"{key}.delimiter must be one character, got {delimiter!r}")
        if fmt in (None, "csv") and not header and features is not None:
            if not all(isinstance(f, int) for f in features):
                raise ValueError(
                    f"{key}.features: with header: false, features are 0-based positions, "
                    f"got {features!r}"
                )
        return cls(name, Path(params["path"]), rate, fmt, header, columns, features, delimiter)

    @classmethod
    def _simulated(
        cls, name: str, params: Mapping[str, Any], simulation: Mapping[str, Any] | None
    ) -> SourceSpec:
        key = f"ingest.sources.{name}"
        schema = {k: v for k, v in SOURCE_SCHEMA.items() if k in ("path", "negative_rate")}
        settings.check_section(params, {**schema, "format": settings.Choice(SIMULATED)}, key)
        drawn = (simulation or {}).get("sources") or {}
        if name not in drawn:
            raise ValueError(
                f"{key}: format: simulated, but generate.sources has no source {name!r} "
                f"(it has {sorted(drawn)}); the simulator draws only the sources it declares"
            )
        rate = params["negative_rate"]
        if rate != drawn[name]["negative_rate"]:
            raise ValueError(
                f"{key}.negative_rate is {rate!r} but the simulator thins this source with "
                f"generate.sources.{name}.negative_rate = {drawn[name]['negative_rate']!r}; "
                "make them equal"
            )
        return cls(name, Path(params["path"]), float(rate), SIMULATED, simulation=simulation)


def infer_format(path: Path) -> str | None:
    """Format implied by a file name's extension, or None when it implies none."""
    name = path.name.lower()
    for ext in sorted(EXTENSIONS, key=len, reverse=True):
        if name.endswith(ext):
            return EXTENSIONS[ext]
    return None


def list_files(spec: SourceSpec) -> list[tuple[Path, str]]:
    """The source's files with their formats, sorted by path; a folder is searched recursively.

    Hidden files are ignored; a file whose format is neither given nor implied
    by its extension is an error, so nothing is skipped silently. (A simulated
    source has no files: ``rawio.simulated.list_parts``.)
    """
    if spec.format == SIMULATED:
        raise ValueError(
            f"source {spec.name!r} is simulated: list its parts with dsprior.rawio.simulated.list_parts"
        )
    if spec.path.is_file():
        candidates = [spec.path]
    elif spec.path.is_dir():
        candidates = sorted(
            p
            for p in spec.path.rglob("*")
            if p.is_file()
            and not any(part.startswith(".") for part in p.relative_to(spec.path).parts)
        )
    else:
        raise FileNotFoundError(f"source {spec.name!r}: {spec.path} does not exist")
    files = []
    for p in candidates:
        fmt = spec.format or infer_format(p)
        if fmt is None:
            raise ValueError(
                f"source {spec.name!r}: cannot infer the format of {p}; set format to one of "
                f"{FORMATS} or use an extension among {sorted(EXTENSIONS)}"
            )
        files.append((p, fmt))
    if not files:
        raise FileNotFoundError(f"source {spec.name!r}: no files under {spec.path}")
    return files


def file_bytes(path: Path, fmt: str) -> int:
    """Size of a listed file (0 for a simulated part, which is not a file)."""
    return 0 if fmt == SIMULATED else path.stat().st_size
