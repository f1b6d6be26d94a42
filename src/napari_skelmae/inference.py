"""Applying a trained model to tracks: per-frame embeddings.

``embed(model, tracks)`` cuts every individual into overlapping windows exactly as in training
(same model frame rate, egocentric normalisation, validity), runs the encoder without
gradients, averages each model frame's features over the windows that cover it, and puts them
back on the recording's rows. Memory beyond the output is one batch of windows plus one
per-model-frame accumulator per individual, whatever the recording's length.

Embeddings are an :class:`Embeddings` array: a plain float32 ndarray (frames, individuals, D)
that also remembers which model made it (``model_id``), so a clusterer or classifier fitted on
one model's embeddings can refuse another model's.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .embeddings import Embeddings
from .errors import SkelmaeError
from .tracks import PoseTracks
from .windows import TimeGrid

if TYPE_CHECKING:
    from .model import SkeletonModel

__all__ = ["Embeddings", "embed", "model_fingerprint"]


def model_fingerprint(net: torch.nn.Module) -> str:
    """16 hex digits of SHA-256 over the network's tensors (names, shapes, dtypes, bytes): two
    models with the same fingerprint compute the same embeddings."""
    h = hashlib.sha256()
    for name, tensor in sorted(net.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype};".encode())
        # reshape first: a 0-d tensor (a GIN eps, BatchNorm's counter) cannot be viewed as bytes
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


def embed(
    model: SkeletonModel,
    tracks: PoseTracks,
    *,
    keypoint_map: Mapping[str, str] | None = None,
    stride_frames: int | None = None,
    batch_size: int = 256,
    progress: Callable[[int, int], Any] | None = None,
    cancel: threading.Event | Callable[[], bool] | None = None,
) -> Embeddings:
    """Per-frame embeddings (frames, individuals, D) of ``tracks`` (rows as in ``tracks``).

    Every model frame is covered by windows starting every ``stride_frames`` model frames; a
    frame's embedding is the mean over the windows covering it of the encoder's per-frame
    feature (its tokens averaged over the tracked keypoints), linearly interpolated from the
    model's time grid to the video frames of the rows. NaN where the animal is absent from a
    row (no tracked keypoint), or where no window saw it tracked.

    The default stride, one temporal patch (at most 16 windows per frame), makes every frame
    seen at every token position of a window: a token's feature carries its position
    embedding, and with a stride of half a window the average would still depend on where
    the frame falls in the window (clusters then flicker with the stride's period).

    ``progress(done, total)`` is called after each batch of windows; ``cancel`` (an Event or
    a function returning True) stops before the next batch with a SkelmaeError.
    """
    from .model import GridAverage, grid_to_rows

    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise SkelmaeError(f"batch_size must be a positive integer, got {batch_size!r}")
    mapped = model.check_compatible(tracks, keypoint_map)
    where = f" ({tracks.source_path})" if tracks.source_path else ""
    if mapped.n_frames == 0:
        raise SkelmaeError(f"the tracks{where} have no frames to embed")
    net = model.net
    dim = int(net.feature_dim)
    out = np.full((mapped.n_frames, mapped.n_individuals, dim), np.nan, np.float32)
    config = model.window
    grid = TimeGrid.of(mapped, config)
    present = ~mapped.missing.all(axis=2)  # (frames, individuals)
    device = model.device
    T = config.n_frames
    stride = stride_frames or max(int(net.temporal_patch), T // 16)
    todo = [i for i in range(mapped.n_individuals) if present[:, i].any()]
    per_individual = -(-max(grid.n_frames - T, 0) // stride) + 1  # windows of iter_windows
    total, done = per_individual * len(todo), 0
    was_training = net.training
    net.eval()
    try:
        for individual in todo:
            accumulator = GridAverage(grid.n_frames, (dim,))
            for batch in model.sliding_windows(mapped, individual, config, stride, batch_size):
                if _cancelled(cancel):
                    raise SkelmaeError(f"embedding{where} cancelled")
                valid = batch["valid"]
                with torch.no_grad():
                    features = net.frame_features(batch["x"].to(device), valid.to(device))
                accumulator.add(batch["model_start"].numpy(), features.float().cpu().numpy(),
                                valid.any(dim=2).numpy())
                done += len(valid)
                if progress is not None:
                    progress(done, total)
            values, have = accumulator.mean()
            rows, ok = grid_to_rows(values, have, grid, mapped.frame_index)
            keep = ok & present[:, individual]
            out[keep, individual] = rows[keep]
    finally:
        net.train(was_training)
    return Embeddings(out, model_id=model_fingerprint(net))


def _cancelled(cancel: threading.Event | Callable[[], bool] | None) -> bool:
    if cancel is None:
        return False
    return cancel.is_set() if isinstance(cancel, threading.Event) else bool(cancel())
