"""The ``ingest`` section of params.yaml, validated, and the early check of its inputs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dsprior import contract, runtime, settings
from dsprior.rawio import ON_ERROR, SourceSpec, simulated


class _Any(settings.Spec):
    def check(self, value: Any, key: str) -> Any:
        return value


PARAMS_SCHEMA: dict[str, settings.Spec] = {
    "on_error": settings.Choice(*ON_ERROR),
    "dtype": settings.Choice(*sorted(contract.DTYPES)),
    "row_group_size": settings.Integer(minimum=1),
    "shard_size": settings.Integer(minimum=1),
    "chunk_rows": settings.Integer(minimum=1),
    "workers": settings.AutoOr(settings.Integer(minimum=1), describe="an integer >= 1"),
    "sources": settings.MapOf(_Any()),  # each source: SourceSpec.from_params, by its format
}


@dataclass(frozen=True)
class IngestConfig:
    """The ``ingest`` section of params.yaml, validated."""

    sources: list[SourceSpec]
    on_error: str
    dtype: str
    row_group_size: int
    shard_size: int
    chunk_rows: int
    workers: int  # resolved: ``auto`` is the cores this process may run on (runtime.machine_cores)

    @classmethod
    def from_params(
        cls, params: Mapping[str, Any], *, simulation: Mapping[str, Any] | None = None
    ) -> IngestConfig:
        """Validate the section; ``simulation`` is the ``generate`` section (simulated sources)."""
        settings.check_section(params, PARAMS_SCHEMA, "ingest")
        sources = params["sources"]
        on_error, dtype = params["on_error"], params["dtype"]
        sizes = {k: params[k] for k in ("row_group_size", "shard_size", "chunk_rows")}
        workers = runtime.machine_cores() if params["workers"] == "auto" else int(params["workers"])
        specs = [
            SourceSpec.from_params(name, spec, simulation=simulation)
            for name, spec in sources.items()
        ]
        return cls(sources=specs, on_error=on_error, dtype=dtype, workers=workers, **sizes)


def check_inputs(config: IngestConfig) -> None:
    """List every source's files, so that a missing or unrecognised input stops the run early.

    Raises ``FileNotFoundError`` or ``ValueError`` naming the source, before anything is read.
    """
    for spec in config.sources:
        simulated.list_source(spec)
