"""generate: write the simulator's raw files, in a format users bring.

The work is done by ``dsprior.generation``; this module reads the params, calls it and
writes the files.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dsprior import generation, runtime, settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    runtime.setup_logging()
    generation.generate(settings.load_params(args.params, "generate"), args.out)


if __name__ == "__main__":
    runtime.run_main(main)
