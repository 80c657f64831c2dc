"""rawio.simulated: a format: simulated source reads as the files ``generate`` would write."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from dsprior.generation import generate
from dsprior.rawio import SIMULATED, Example, RawReader, SourceSpec
from dsprior.rawio import simulated as simulated_source

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def simulation() -> dict:
    """The real generate section, shrunk: two small sources, three parts each, Parquet."""
    real = yaml.safe_load((ROOT / "params.yaml").read_text())["generate"]
    return {
        **real,
        "seed": 5,
        "dim": 6,
        "min_rows": 2,
        "max_rows": 6,
        "format": "parquet",
        "files_per_source": 3,
        "sources": {
            "pool": {"examples": 400, "negative_rate": 0.2},
            "production": {"examples": 60, "negative_rate": 1.0},
        },
    }


def read(spec: SourceSpec, files: list[tuple[Path, str]]) -> list[Example]:
    reader = RawReader(max_abs=65504.0, formats=simulated_source.READERS)
    items = [item for path, fmt in files for item in reader.read_file(spec, path, fmt)]
    assert all(isinstance(i, Example) for i in items), [
        i for i in items if not isinstance(i, Example)
    ]
    return items


@pytest.mark.parametrize("name", ["pool", "production"])
def test_drawn_examples_equal_the_generated_files(
    tmp_path: Path, simulation: dict, name: str
) -> None:
    generate(simulation, tmp_path / "raw")
    rate = simulation["sources"][name]["negative_rate"]
    on_disk = SourceSpec.from_params(
        name, {"path": str(tmp_path / "raw" / name), "negative_rate": rate}
    )
    drawn = SourceSpec.from_params(
        name,
        {"path": "dsprior/simulator.py", "format": SIMULATED, "negative_rate": rate},
        simulation=simulation,
    )
    parts = simulated_source.list_parts(drawn)
    files = simulated_source.list_source(on_disk)
    assert simulated_source.list_source(drawn) == parts
    assert [p.as_posix() for p, _ in parts] == [f"simulator/{name}/part-{k:03d}" for k in range(3)]
    assert [p.stem for p, _ in files] == [p.name for p, _ in parts]
    expected, got = read(on_disk, files), read(drawn, parts)
    assert len(got) == len(expected) > 0
    for a, b in zip(got, expected, strict=True):
        assert (a.example_id, a.group, a.label, a.true_label) == (
            b.example_id,
            b.group,
            b.label,
            b.true_label,
        )
        np.testing.assert_array_equal(a.rows, b.rows)
    assert {a.file for a in got} == {str(p) for p, _ in parts}


def test_each_process_draws_the_tables_once(monkeypatch, simulation: dict) -> None:
    # Drawing the pool's table costs a generator per entity group: listing the parts and
    # reading each of them must not draw it again, and a later source's table must be the
    # one a draw that stops there gives (a source does not depend on those after it).
    from dsprior import simulator

    monkeypatch.setattr(simulated_source, "_DRAWN", {})
    calls = []
    real = simulator.draw_sources
    monkeypatch.setattr(simulator, "draw_sources", lambda *a, **k: calls.append(k) or real(*a, **k))

    def spec(name: str, simulation: dict) -> SourceSpec:
        rate = simulation["sources"][name]["negative_rate"]
        return SourceSpec.from_params(
            name,
            {"path": "dsprior/simulator.py", "format": SIMULATED, "negative_rate": rate},
            simulation=simulation,
        )

    specs = {name: spec(name, simulation) for name in ("pool", "production")}
    examples = {name: read(spec, simulated_source.list_parts(spec)) for name, spec in specs.items()}
    assert len(calls) == 1
    config = simulator.SimulatorConfig.from_params(simulation)
    alone = real(
        config,
        simulator.sources_from_params(simulation),
        seed=simulation["seed"],
        shared_fraction=simulation["shared_groups"],
        until="pool",
    )
    assert [e.example_id for e in examples["pool"]] == alone["pool"].example_id.tolist()
    changed = {**simulation, "seed": simulation["seed"] + 1}
    simulated_source.list_parts(spec("pool", changed))
    assert len(calls) == 2  # other params: drawn again


def test_adopted_tables_are_not_drawn_again(monkeypatch, simulation: dict) -> None:
    # what a parallel ingest worker's initializer does with the parent's tables
    spec = SourceSpec.from_params(
        "production",
        {"path": "dsprior/simulator.py", "format": SIMULATED, "negative_rate": 1.0},
        simulation=simulation,
    )
    monkeypatch.setattr(simulated_source, "_DRAWN", {})
    parts = simulated_source.list_parts(spec)
    drawn = simulated_source.drawn_tables()
    assert len(drawn) == 1
    expected = read(spec, parts)

    from dsprior import simulator

    monkeypatch.setattr(simulated_source, "_DRAWN", {})
    monkeypatch.setattr(simulator, "draw_sources", lambda *a, **k: pytest.fail("drawn again"))
    simulated_source.adopt_tables(drawn)
    got = read(spec, parts)
    assert [e.example_id for e in got] == [e.example_id for e in expected]
    np.testing.assert_array_equal(
        np.concatenate([e.rows for e in got]), np.concatenate([e.rows for e in expected])
    )
