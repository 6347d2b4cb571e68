"""Atomic writes: an interrupted job never leaves a half-written file or folder."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is renamed onto `path`.

    The temporary name keeps the suffix so that writers choosing a format by extension
    (numpy, soundfile, ffmpeg) still work. On any error the temporary file is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}")
        os.close(fd)
        tmp = Path(tmp)
        yield tmp
        if tmp.exists():  # mkstemp makes files 0600: give the result the usual permissions
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except OSError as e:
        raise _naming(e, path, tmp) from None
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)


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
