"""Command-line arguments checked before any work starts: ranges, input files, output paths.

Every command's `run(args)` calls these first, so a bad value or an output that cannot be
written fails in one line before a model is loaded, a video decoded or a file touched.
An output may not be (the same file as) an input, whatever name reaches it (a link, a
relative path, a hard link), nor the same file as another output; its suffix must name a
format the writer knows; its folder must be writable (or creatable).
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Iterable, Sequence

# torch.manual_seed, numpy's legacy RandomState and Python's random all accept [0, 2**32 - 1]
SEED_RANGE = (0, 2**32 - 1)


def check_range(flag: str, value, lo, hi, unit: str = "") -> None:
    """ValueError unless lo <= value <= hi (None, the argument's default, passes)."""
    if value is None:
        return
    if not (lo <= value <= hi):  # also refuses NaN
        unit = f" {unit}" if unit else ""
        if hi == math.inf:
            raise ValueError(f"{flag} must be at least {_number(lo)}{unit}, got {_number(value)}")
        raise ValueError(f"{flag} must be between {_number(lo)} and {_number(hi)}{unit}, got {_number(value)}")


def _number(x) -> str:
    return str(x) if isinstance(x, int) else f"{x:g}"


def check_seed(flag: str, value) -> None:
    """ValueError unless the seed is in SEED_RANGE (None passes)."""
    check_range(flag, value, *SEED_RANGE)


def check_input(flag: str, path, kind: str = "file", what: str = "input") -> Path:
    """An existing, readable input file (kind "file"), folder ("folder") or either ("any")."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: {what} not found ({flag})")
    if kind == "file" and not path.is_file():
        raise ValueError(f"{path}: {what} is not a file ({flag})")
    if kind == "folder" and not path.is_dir():
        raise ValueError(f"{path}: {what} is not a folder ({flag})")
    if not os.access(path, os.R_OK):
        raise PermissionError(f"{path}: {what} is not readable ({flag})")
    return path


def same_file(a, b) -> bool:
    """Whether two paths reach one file or folder (links, relative paths and hard links
    included: same device and inode); paths that do not exist compare by their real path."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def _writable_folder(path: Path) -> None:
    """PermissionError / ValueError naming `path` when its folder cannot be written or made."""
    folder = Path(os.path.realpath(path)).parent
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"{path}: cannot create the folder {folder}: {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        what = "folder" if existing == folder else "folder above the output,"
        raise PermissionError(f"{path}: the {what} {existing} is not writable")


def check_outputs(outputs: Sequence[tuple[str, object, Iterable[str] | None]],
                  inputs: Iterable = ()) -> list[Path]:
    """Check output paths before any work; returns them as Paths (None entries skipped).

    outputs: (flag, path or None, accepted lower-case suffixes, or None for a folder output).
    inputs: paths the command reads (files or folders); an output may not be one of them.
    """
    inputs = [Path(p) for p in inputs if p is not None]
    checked: list[tuple[str, Path]] = []
    for flag, path, suffixes in outputs:
        if path is None:
            continue
        path = Path(path)
        if str(path) == "" or path.name in ("", ".", ".."):
            raise ValueError(f"{path}: {flag} needs a file or folder name")
        for source in inputs:
            if same_file(path, source):
                raise ValueError(f"{path}: {flag} is the input {source}; writing it would destroy "
                                 "the input (choose another name)")
        for other_flag, other in checked:
            if same_file(path, other):
                raise ValueError(f"{path}: {flag} and {other_flag} name the same file")
        if suffixes is None:  # a folder output
            if path.exists() and not path.is_dir():
                raise ValueError(f"{path}: {flag} must be a folder, and this is a file")
            if path.is_dir() and not os.access(path, os.W_OK | os.X_OK):
                raise PermissionError(f"{path}: the folder ({flag}) is not writable")
        else:
            suffixes = tuple(suffixes)
            if path.suffix.lower() not in suffixes:
                got = f"{path.suffix!r}" if path.suffix else "no suffix"
                raise ValueError(f"{path}: {flag} must end with {' or '.join(suffixes)} "
                                 f"(the suffix names the format), got {got}")
            if path.is_dir():
                raise ValueError(f"{path}: {flag} is a folder, expected a file name")
        _writable_folder(path)
        checked.append((flag, path))
    return [p for _, p in checked]


def check_name(flag: str, name: str | None, parent: Path) -> None:
    """A plain folder name to be made under `parent` (no path separator, not '.', '..' or
    hidden), so the command writes only inside `parent`."""
    if name is None:
        return
    if (not name.strip() or name in (".", "..") or name.startswith(".") or "/" in name or os.sep in name
            or "\0" in name):
        raise ValueError(f"{name!r}: {flag} must be a plain folder name (no '/', not '.' or '..'), "
                         f"made under {parent}")
