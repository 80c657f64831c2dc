"""Refusing, before anything is read, a command line whose outputs would write over
the input or over each other."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def _same_file(a: Path, b: Path) -> bool:
    """One file: the same inode where both exist (a symlink or hard link counts), else one path."""
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def _refuse_folders(given: list[tuple[str, Path]]) -> None:
    for option, path in given:
        if path.is_dir():
            raise ValueError(f"{option} {path} is a folder; give it a file path")


def _refuse_shared_outputs(given: list[tuple[str, Path]]) -> None:
    for i, (option, path) in enumerate(given):
        for other_option, other in given[:i]:
            if _same_file(path, other):
                raise ValueError(
                    f"{option} {path} and {other_option} {other} are the same file; one would "
                    f"overwrite the other: give {option} another path"
                )


def _inodes(folder: Path) -> dict[tuple[int, int], Path]:
    """(device, inode) of every file below ``folder``, each to its first path."""
    inodes: dict[tuple[int, int], Path] = {}
    for p in folder.rglob("*"):
        if p.is_file():
            st = p.stat()
            inodes.setdefault((st.st_dev, st.st_ino), p)
    return inodes


def _refuse_outputs_in_folder(
    source: Path, given: list[tuple[str, Path]], *, input_option: str
) -> None:
    """No output inside the input folder, nor linked to a file in it."""
    folder = source.resolve()
    inodes: dict[tuple[int, int], Path] | None = None
    for option, path in given:
        if path.resolve().is_relative_to(folder):
            raise ValueError(
                f"{option} {path} is inside the {input_option} folder {source}; score would "
                "write into the data it reads (and the next run would read it as input): "
                f"give {option} a path outside {source}"
            )
        if path.exists():
            if inodes is None:
                inodes = _inodes(source)
            st = path.stat()
            if (st.st_dev, st.st_ino) in inodes:
                raise ValueError(
                    f"{option} {path} is the same file as {inodes[st.st_dev, st.st_ino]} in "
                    f"the {input_option} folder {source}; scoring would overwrite its input: "
                    f"give {option} another path"
                )


def _refuse_outputs_as_input_file(
    source: Path, given: list[tuple[str, Path]], *, input_option: str
) -> None:
    for option, path in given:
        if _same_file(path, source):
            raise ValueError(
                f"{option} {path} and {input_option} {source} are the same file; scoring would "
                f"overwrite its input: give {option} another path"
            )


def check_paths(
    input_path: str | Path,
    outputs: Mapping[str, str | Path | None],
    *,
    input_option: str = "--input",
) -> None:
    """ValueError, before anything is read, if scoring would write over what it reads or writes.

    ``outputs`` maps each written path's option name (``--output``, ``--rejects``,
    ...; None: not given) to its path; ``input_path`` is ``input_option``'s. Refused:
    an output that is the input file, or any file in the input folder, or lies in
    that folder; two outputs that are one file; an output that is a folder. "The
    same file" follows symlinks and hard links where the files exist, and compares
    resolved paths where they do not yet.
    """
    source = Path(input_path)
    given = [(option, Path(path)) for option, path in outputs.items() if path is not None]
    _refuse_folders(given)
    _refuse_shared_outputs(given)
    if source.is_dir():
        _refuse_outputs_in_folder(source, given, input_option=input_option)
    elif source.exists():
        _refuse_outputs_as_input_file(source, given, input_option=input_option)
