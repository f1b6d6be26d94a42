"""What the clusterer and the classifiers share: checking embeddings against the model they
were fitted on, and their files (safetensors arrays + a JSON description, written atomically,
never pickled)."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SkelmaeError, SkelmaeWarning

__all__ = [
    "as_embedding_list",
    "check_model",
    "read_arrays",
    "resolve_frame_index",
    "write_arrays",
]


def as_embedding_list(
    embeddings: Any, what: str = "embeddings"
) -> tuple[list[np.ndarray], str | None, bool]:
    """One recording's (frames, individuals, D) array, or a list of them, as float32 arrays,
    the one model id they share (None when unknown), and whether a list was given."""
    single = not isinstance(embeddings, (list, tuple))
    items = [embeddings] if single else list(embeddings)
    if not items:
        raise SkelmaeError(f"no {what} given")
    arrays, ids = [], set()
    for k, item in enumerate(items):
        where = "" if single else f" (item {k})"
        try:
            values = np.asarray(item, dtype=np.float32)
        except (TypeError, ValueError) as e:
            raise SkelmaeError(f"{what}{where} are not a numeric array: {e}") from None
        if values.ndim != 3:
            raise SkelmaeError(
                f"{what}{where} must be (frames, individuals, D) as returned by embed(), got "
                f"shape {values.shape}"
            )
        if values.shape[2] == 0:
            raise SkelmaeError(f"{what}{where} have 0 dimensions")
        arrays.append(values)
        ids.add(getattr(item, "model_id", None))
    dims = {a.shape[2] for a in arrays}
    if len(dims) > 1:
        raise SkelmaeError(f"{what} of different dimensions {sorted(dims)} cannot be combined")
    known = ids - {None}
    if len(known) > 1:
        raise SkelmaeError(
            f"{what} come from {len(known)} different models ({sorted(known)}); use one model "
            "for every recording"
        )
    return arrays, (known.pop() if known else None), not single


def check_model(
    what: str, fitted_id: str | None, fitted_dim: int, model_id: str | None, dim: int
) -> None:
    """Refuse embeddings of another model (when both ids are known) or dimension; warn when
    the origin of the embeddings cannot be checked."""
    if dim != fitted_dim:
        raise SkelmaeError(
            f"the {what} was fitted on {fitted_dim}-dimensional embeddings, these have {dim}: "
            "they come from a different model"
        )
    if fitted_id is not None and model_id is not None and fitted_id != model_id:
        raise SkelmaeError(
            f"these embeddings come from model {model_id}, the {what} was fitted on embeddings "
            f"of model {fitted_id}; embed the recording with that model (or fit a new {what})"
        )
    if fitted_id is not None and model_id is None:
        warnings.warn(
            f"the embeddings do not say which model made them (a plain array), so the {what} "
            f"cannot check they come from model {fitted_id}",
            SkelmaeWarning,
            stacklevel=3,
        )


def resolve_frame_index(
    frame_index: Any, arrays: Sequence[np.ndarray], embeddings: Any, listed: bool
) -> list[np.ndarray] | None:
    """Per-recording video frames of the rows: as given, else the embeddings' own
    ``frame_index`` attribute when they have one, else None."""
    if frame_index is None:
        items = list(embeddings) if listed else [embeddings]
        found = [getattr(item, "frame_index", None) for item in items]
        if any(f is None for f in found):
            return None
        frame_index = found if listed else found[0]
    frames = list(frame_index) if listed else [frame_index]
    if len(frames) != len(arrays):
        raise SkelmaeError(f"{len(frames)} frame_index arrays for {len(arrays)} recordings")
    out = []
    for f, a in zip(frames, arrays):
        f = np.asarray(f)
        if f.shape != (a.shape[0],):
            raise SkelmaeError(
                f"frame_index has shape {f.shape}, the embeddings have {a.shape[0]} rows"
            )
        out.append(f.astype(np.int64))
    return out


def write_arrays(
    path: str | os.PathLike, arrays: dict[str, np.ndarray], key: str, meta: dict[str, Any],
    what: str,
) -> Path:
    """Arrays + JSON description in one safetensors file, atomically."""
    from safetensors.numpy import save_file

    from ..io._common import atomic_output

    path = Path(path)
    clean = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    with atomic_output(path, what) as tmp:
        save_file(clean, str(tmp), metadata={key: json.dumps(meta)})
    return path


def read_arrays(
    path: str | os.PathLike, key: str, fmt: str, version: int, what: str
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Arrays and description of a file written by :func:`write_arrays`; SkelmaeError naming
    the file for anything else (missing, foreign, damaged, newer layout)."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise SkelmaeError(f"'{path}': no such {what} file")
    try:
        with safe_open(str(path), framework="np") as f:
            raw = f.metadata() or {}
            arrays = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises its own types for bad headers and data
        problem = str(e).strip() or type(e).__name__
        raise SkelmaeError(f"'{path}' is not a readable {what} file: {problem}") from None
    if key not in raw:
        raise SkelmaeError(f"'{path}' is a safetensors file but not a {what} file (no '{key}' "
                           "description in its header)")
    try:
        meta = json.loads(raw[key])
    except json.JSONDecodeError as e:
        raise SkelmaeError(f"'{path}': the {what} description is not JSON: {e}") from None
    if not isinstance(meta, dict) or meta.get("format") != fmt:
        raise SkelmaeError(f"'{path}': not a {fmt} file")
    found = meta.get("format_version")
    if not isinstance(found, int) or found > version:
        raise SkelmaeError(f"'{path}': {what} file layout version {found!r} is newer than this "
                           f"napari-skelmae reads ({version}); update napari-skelmae")
    return arrays, meta


def need(arrays: dict[str, np.ndarray], names: Sequence[str], path: Path, what: str) -> None:
    missing = [n for n in names if n not in arrays]
    if missing:
        raise SkelmaeError(f"'{path}': the {what} file lacks the arrays {missing}")
