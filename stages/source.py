"""source: fingerprint one declared source, so that DVC reruns ingest when its files change.

``dvc.yaml`` runs this stage once per entry of ``ingest.sources`` (``foreach``), with
the source's ``path`` as the stage's dependency, so declaring a source in
params.yaml is enough for ``dvc status`` and ``dvc repro`` to follow its files:
no ``dvc.yaml`` edit. The fingerprint (every file under the path, its size and
BLAKE2b digest) is the ingest stage's dependency. A simulated source's path is
the simulator's code, ``dsprior/simulator.py``.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path
from typing import Any

from dsprior.runtime import run_main, write_json


def fingerprint(path: Path) -> dict[str, Any]:
    """Every non-hidden file under ``path`` (a file or a folder), sorted, with size and digest."""
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = sorted(
            p
            for p in path.rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
        )
    else:
        raise FileNotFoundError(f"{path}: No such file or directory (a source's path)")
    entries = []
    for file in files:
        with open(file, "rb") as f:
            digest = hashlib.file_digest(f, "blake2b").hexdigest()
        name = file.name if file == path else str(file.relative_to(path))
        entries.append({"file": name, "bytes": file.stat().st_size, "blake2b": digest})
    return {
        "path": str(path),
        "files": len(entries),
        "bytes": sum(e["bytes"] for e in entries),
        "entries": entries,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", required=True, type=Path, help="the source's path")
    parser.add_argument("--out", required=True, type=Path, help="fingerprint JSON")
    args = parser.parse_args(argv)
    write_json(args.out, fingerprint(args.path))


if __name__ == "__main__":
    run_main(main)
