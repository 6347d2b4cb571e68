"""Atomic writes: an interrupted job never leaves a half-written file or folder.

Outputs keep the exact name given; a path that is a symbolic link is written through to the
file it points to (the link stays). `output_set` stages several outputs of one command and
renames them together, so two runs writing the same outputs leave one run's set, never a mix.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Iterator, Sequence


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is renamed onto `path`.

    The temporary name keeps the suffix so that writers choosing a format by extension
    (numpy, soundfile, ffmpeg) still work. On any error the temporary file is removed.
    """
    path = written_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = None
    try:
        # lower-case suffix: numpy.savez appends ".npz" to any name not ending in exactly ".npz"
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix.lower()}")
        os.close(fd)
        tmp = Path(tmp)
        yield tmp
        _adopt_twin(tmp)
        if tmp.exists():  # mkstemp makes files 0600: give the result the usual permissions
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except OSError as e:
        raise _naming(e, path, tmp) from None
    finally:
        if tmp is not None:
            _remove_temp(Path(tmp))


def written_path(path: str | os.PathLike) -> Path:
    """The file a write to `path` lands in: `path`, or the target of a symbolic link (any
    depth), so that writing through a link keeps the link."""
    path = Path(path)
    return Path(os.path.realpath(path)) if os.path.islink(path) else path


def _twins(tmp: Path) -> list[Path]:
    """Files a writer made by appending to the temporary name (numpy.savez adds ".npz")."""
    try:
        return [tmp.parent / n for n in os.listdir(tmp.parent) if n.startswith(tmp.name) and n != tmp.name]
    except OSError:
        return []


def _adopt_twin(tmp: Path) -> None:
    """When the writer left `tmp` empty and wrote one twin instead, the twin is the output."""
    twins = _twins(tmp)
    if len(twins) == 1 and (not tmp.exists() or tmp.stat().st_size == 0):
        os.replace(twins[0], tmp)


def _remove_temp(tmp: Path) -> None:
    """Remove a temporary file and any twin a writer made by appending to its name."""
    for path in [tmp, *_twins(tmp)]:
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)


def write_npz(path: str | os.PathLike, **arrays) -> None:
    """numpy.savez to exactly `path` (no pickled objects), the archive closed even when a write
    fails: numpy's leaves it to the garbage collector, which writes to the file again later."""
    import zipfile

    import numpy as np

    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, value in arrays.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asanyarray(value), allow_pickle=False)


@contextlib.contextmanager
def output_set(paths: Sequence[str | os.PathLike]) -> Iterator[list[Path]]:
    """Temporary paths (hidden, beside each output, same lower-case suffix) for several outputs;
    once the block ends without error they are renamed onto the outputs together.

    The renames happen while the output folders are locked (flock, in a fixed order), so
    concurrent runs writing the same outputs leave the whole set of one of them. On any error,
    KeyboardInterrupt or signal that raises (kakashi.cli's SIGTERM handler) no output is touched
    and the temporaries are removed.
    """
    targets = [written_path(p) for p in paths]
    temps = [t.with_name(f".{t.stem}.{os.getpid()}-{secrets.token_hex(4)}.tmp{t.suffix.lower()}")
             for t in targets]
    made = []  # folders made here, removed again (when empty) if nothing is written
    for t in targets:
        missing = [f for f in [t.parent, *t.parent.parents] if not f.exists()]
        t.parent.mkdir(parents=True, exist_ok=True)
        made += missing
    written = False
    try:
        yield temps
        missing = [str(t) for t, tmp in zip(targets, temps) if not tmp.is_file()]
        if missing:
            raise OSError(f"{missing[0]}: nothing was written")
        with _locked({t.parent for t in targets}):
            for target, tmp in zip(targets, temps):
                os.chmod(tmp, 0o666 & ~_umask())
                os.replace(tmp, target)
        written = True
    except OSError as e:  # name the output, not its temporary twin
        names = {str(tmp): str(t) for tmp, t in zip(temps, targets)}
        ours = names.get(str(e.filename)) if e.filename is not None else None
        if ours is not None and e.errno is not None:
            raise type(e)(e.errno, e.strerror, ours) from None
        text = str(e)
        for tmp, target in names.items():
            text = text.replace(tmp, target)
        if text == str(e):
            raise
        raise OSError(text) from None
    finally:
        for tmp in temps:
            _remove_temp(tmp)
        for folder in [] if written else sorted(set(made), key=lambda f: -len(f.parts)):  # deepest first
            with contextlib.suppress(OSError):
                folder.rmdir()


@contextlib.contextmanager
def _locked(folders) -> Iterator[None]:
    """Exclusive flock on each folder (sorted by real path, so two holders never deadlock)."""
    fds = []
    try:
        for folder in sorted({os.path.realpath(f) for f in folders}):
            fd = os.open(folder, os.O_RDONLY)
            fds.append(fd)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        for fd in fds:
            os.close(fd)  # closing the descriptor releases its lock


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside `path`; on success it replaces `path` whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    except OSError as e:
        raise _naming(e, path, None) from None
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except OSError as e:
        raise _naming(e, path, tmp) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _naming(error: OSError, path: Path, tmp: Path | None) -> OSError:
    """`error` as the user should see it: naming the file being written, not its temporary twin.

    Errors about other files (a missing input read inside the block) are returned unchanged.
    """
    name = None if error.filename is None else Path(error.filename)
    ours = name is None or name.name.startswith((f".{path.stem}.", f".{path.name}.")) or \
        (tmp is not None and str(name).startswith(str(tmp)))
    if not ours or (error.errno is None and type(error) is not OSError):
        return error  # not about this file, or a writer's own error that names it already
    if error.errno is None:  # e.g. numpy's "4445 requested and 992 written" on a full disk
        return OSError(f"{path}: write failed ({error})")
    return type(error)(error.errno, error.strerror, str(path))  # "[Errno 28] No space left on device: 'path'"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_json(path: str | os.PathLike) -> dict:
    """A JSON object from a file ({} when missing, unreadable or not an object)."""
    try:
        obj = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return obj if isinstance(obj, dict) else {}


def write_json(path: str | os.PathLike, obj) -> None:
    """Write JSON atomically (indent 2, keys in insertion order)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=_jsonable) + "\n")


def _jsonable(x):
    if hasattr(x, "tolist"):
        return x.tolist()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")
