"""Shared helpers for the readers: opening files defensively and turning library errors
into :class:`~napari_skelmae.errors.TracksFileError` that name the file."""

from __future__ import annotations

import contextlib
import gzip
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..errors import SkelmaeError, TracksFileError

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def check_readable_file(path: str | os.PathLike) -> Path:
    """The path as a Path if it is an existing, non-empty regular file; else a clear error."""
    p = Path(path)
    if not p.exists():
        raise TracksFileError(p, "no such file")
    if p.is_dir():
        raise TracksFileError(p, "this is a directory, not a tracks file")
    if not p.is_file():
        raise TracksFileError(p, "not a regular file")
    if p.stat().st_size == 0:
        raise TracksFileError(p, "the file is empty")
    return p


def is_hdf5(path: Path) -> bool:
    """True when the file starts with the HDF5 signature (also netCDF-4, NWB, .slp)."""
    with open(path, "rb") as f:
        return f.read(8) == HDF5_MAGIC


def is_gzip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def open_text(path: Path):
    """Open a text file, transparently decompressing ``.gz``."""
    if is_gzip(path):
        return gzip.open(path, "rt", encoding="utf-8", errors="replace", newline="")
    return open(path, encoding="utf-8", errors="replace", newline="")


def head_lines(path: Path, n: int = 5) -> list[str]:
    """The first ``n`` lines of a (possibly gzipped) text file, '' for missing ones."""
    out: list[str] = []
    try:
        with open_text(path) as f:
            for _ in range(n):
                out.append(f.readline())
    except (OSError, EOFError, UnicodeDecodeError):
        pass
    return out + [""] * (n - len(out))


def hdf5_keys(path: Path) -> tuple[set[str], dict]:
    """Top-level keys and root attributes of an HDF5 file, or a TracksFileError when the
    file is truncated or not HDF5 after all."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            keys = set(f.keys())
            attrs = {}
            for k in f.attrs.keys():
                try:
                    attrs[k] = f.attrs[k]
                except Exception:  # unreadable attribute types (references): name only
                    attrs[k] = None
            return keys, attrs
    except OSError as e:
        raise TracksFileError(path, f"HDF5 file is damaged or truncated ({_short(e)})") from e


@contextlib.contextmanager
def reading(path: str | os.PathLike, what: str) -> Iterator[None]:
    """Re-raise any library error inside the block as a TracksFileError naming the file.

    Our own errors pass through unchanged; everything else becomes "could not read <what>".
    """
    try:
        yield
    except SkelmaeError:
        raise
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as e:  # noqa: BLE001 - the point is to wrap whatever the library raised
        raise TracksFileError(path, f"could not read it as {what}: {_short(e)}") from e


def _short(e: BaseException, limit: int = 300) -> str:
    msg = f"{type(e).__name__}: {e}"
    return msg if len(msg) <= limit else msg[: limit - 3] + "..."


class OutputFileError(SkelmaeError):
    """An output file could not be written (folder missing, not writable, disk full...)."""


def _read_umask() -> int:
    """The process umask (reading it means setting it: done once, at import, not in threads)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, what: str) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place only if the block succeeds.

    Readers of ``path`` thus see the old file or the complete new one, never half a file.
    Any failure removes the temporary file and becomes an :class:`OutputFileError` naming
    the file and saying what could not be written.
    """
    p = Path(path)
    if not p.parent.is_dir():
        raise OutputFileError(f"Cannot write {what} '{p}': folder '{p.parent}' does not exist")
    try:
        fd, tmp_name = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    except OSError as e:
        raise OutputFileError(f"Cannot write {what} '{p}': {_short(e)}") from e
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp makes the file private (0600) and os.replace keeps that: give the result the
    # permissions an ordinary new file gets (0666 less the umask), as colleagues expect
    os.chmod(tmp, 0o666 & ~_UMASK)
    try:
        yield tmp
        os.replace(tmp, p)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if isinstance(e, (SkelmaeError, KeyboardInterrupt)):
            raise
        if isinstance(e, Exception):
            raise OutputFileError(f"Cannot write {what} '{p}': {_short(e)}") from e
        raise
