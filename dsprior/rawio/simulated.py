"""The built-in simulator as an ingest source: ``format: simulated``, drawn in memory.

A simulated source has no raw files. Its examples are the ones ``python -m
stages.generate`` (``dsprior.generation``) would write, drawn from the ``generate`` params in the same order
and cut into the same parts (``generate.files_per_source``), so the dataset is the
same as when the files are written and read back. Each part is read like a file
(``simulator/<source>/part-NNN`` in messages, positions are rows within the part),
so parallel ingest reads parts in parallel.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from dsprior import simulator
from dsprior.rawio.reader import RawReader
from dsprior.rawio.sources import SIMULATED, SourceSpec, list_files
from dsprior.rawio.validation import Whole, validate_rows


def list_parts(spec: SourceSpec) -> list[tuple[Path, str]]:
    """The non-empty parts of a simulated source, as (name, format) like ``list_files``."""
    return [(Path(f"simulator/{spec.name}/part-{k:03d}"), SIMULATED) for k in _parts(spec)]


def list_source(spec: SourceSpec) -> list[tuple[Path, str]]:
    """A source's files, or a simulated source's parts."""
    return list_parts(spec) if spec.format == SIMULATED else list_files(spec)


def _parts(spec: SourceSpec) -> list[int]:
    """The non-empty parts of a simulated source, as generate would write its files."""
    sim = _simulation(spec)
    examples = draw_tables(spec)[spec.name]
    bounds = simulator.part_bounds(len(examples), int(sim["files_per_source"]))
    return [k for k in range(len(bounds) - 1) if bounds[k + 1] > bounds[k]]


def _simulation(spec: SourceSpec) -> Mapping[str, Any]:
    """The simulator's params that a simulated source carries (sources.py sets them)."""
    if spec.simulation is None:
        raise ValueError(f"source {spec.name!r} is not simulated: it has no simulation params")
    return spec.simulation


def draw_tables(spec: SourceSpec) -> dict[str, simulator.ExampleTable]:
    """The drawn tables of all the simulator's sources (no rows; shared: read only).

    Drawing the pool's table costs a seeded generator per entity group (about 15 s at the
    reference scale), and ingest asks for it when it lists each source's parts, when it
    probes the dimension and once per part; so a process draws every source's table once
    and keeps them, keyed by the params, and parallel ingest hands its drawn tables to its
    workers (``drawn_tables``, ``adopt_tables``). A source's table does not depend on the
    sources after it.
    """
    key = json.dumps(dict(_simulation(spec)), sort_keys=True)
    if key not in _DRAWN:
        sim = json.loads(key)
        _DRAWN.clear()  # one set of params per run: keep only the latest
        _DRAWN[key] = simulator.draw_sources(
            simulator.SimulatorConfig.from_params(sim),
            simulator.sources_from_params(sim),
            seed=int(sim["seed"]),
            shared_fraction=float(sim["shared_groups"]),
        )
    return _DRAWN[key]


_DRAWN: dict[str, dict[str, simulator.ExampleTable]] = {}


def drawn_tables() -> dict[str, dict[str, simulator.ExampleTable]]:
    """The tables this process has drawn, by params: what ``adopt_tables`` takes."""
    return dict(_DRAWN)


def adopt_tables(drawn: dict[str, dict[str, simulator.ExampleTable]]) -> None:
    """Keep tables another process drew (a worker's initializer), so this one draws none."""
    _DRAWN.update(drawn)


def read_part(reader: RawReader, spec: SourceSpec, path: Path, state: Any) -> Iterator[Any]:
    """One simulated part: the examples generate would write to that file, drawn in memory."""
    sim = dict(_simulation(spec))
    config = simulator.SimulatorConfig.from_params(sim)
    tables = draw_tables(spec)
    table = tables[spec.name]
    source_index = list(sim["sources"]).index(spec.name)
    part = int(path.name.removeprefix("part-"))
    bounds = simulator.part_bounds(len(table), int(sim["files_per_source"]))
    reader.check_dim(config.dim, state)
    state.first_position = 0
    names = [f"f{j}" for j in range(config.dim)]
    state.feature_names = names
    start = int(bounds[part])
    examples = simulator.iter_examples(
        table, config, seed=int(sim["seed"]), source_index=source_index,
        start=start, stop=int(bounds[part + 1]),
    )  # fmt: skip
    for i, rows in examples:
        n = rows.shape[0]
        state.rows += n
        state.examples += 1
        state.last_position = i - start
        yield Whole(
            validate_rows(
                reader,
                state=state,
                ids=np.full(n, table.example_id[i], object),
                groups=np.full(n, table.group[i], object),
                labels=np.full(n, table.label[i], np.int8),
                true_labels=np.full(n, table.true_label[i], np.int8),
                features=rows,  # float32 as drawn: exact in float64, checked the same
                non_numeric=np.zeros(rows.shape, bool),
                positions=np.full(n, i - start, np.int64),
                raw_value=lambda r, what: None,
                feature_names=names,
            )
        )


# Readers of the formats that are not files, for ``RawReader(formats=READERS)``.
READERS = {SIMULATED: read_part}
