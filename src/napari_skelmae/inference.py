"""Applying a trained model to tracks: per-frame embeddings.

``embed(model, tracks)`` cuts every individual into overlapping windows exactly as in training
(same model frame rate, egocentric normalisation, validity), runs the encoder without
gradients, averages each model frame's features over the windows that cover it, and puts them
back on the recording's rows. Features reach the rows as soon as no later window can cover
them (:class:`RowStream`), so memory beyond the output is one batch of windows and about a
window's span of model frames, whatever the recording's length.

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
    batch_size: int = 64,
    precision: str = "auto",
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

    ``precision``: ``"auto"`` runs the encoder under bfloat16 autocast on a CUDA GPU that
    supports it and in float32 elsewhere (on the CPU float32 keeps embeddings exact and
    reproducible across machines); ``"float32"`` or ``"bfloat16"`` force one. Features are
    averaged in float64 and returned as float32 either way.

    ``batch_size`` 64: on a CPU, 256 was slower and held several times the memory (its
    attention maps; benchmarks/bench_embed.py). ``progress(done, total)`` is called after
    each batch of windows; ``cancel`` (an Event or a function returning True) stops before
    the next batch with a SkelmaeError.
    """
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
    embedding_autocast(precision, device)  # refuse a bad precision before any work
    T = config.n_frames
    stride = stride_frames or max(int(net.temporal_patch), T // 16)
    todo = [i for i in range(mapped.n_individuals) if present[:, i].any()]
    per_individual = -(-max(grid.n_frames - T, 0) // stride) + 1  # windows of iter_windows
    total, done = per_individual * len(todo), 0
    was_training = net.training
    net.eval()
    try:
        for individual in todo:
            stream = RowStream(grid, mapped.frame_index, dim)
            into, rows_present = out[:, individual], present[:, individual]
            for batch in model.sliding_windows(mapped, individual, config, stride, batch_size):
                if _cancelled(cancel):
                    raise SkelmaeError(f"embedding{where} cancelled")
                valid = batch["valid"]
                with torch.no_grad(), embedding_autocast(precision, device):
                    features = net.frame_features(batch["x"].to(device), valid.to(device))
                starts = batch["model_start"].numpy()
                stream.add(starts, features.float().cpu().numpy(), valid.any(dim=2).numpy())
                # windows start in increasing order: no later one reaches a frame <= this start
                stream.emit(int(starts[-1]) + 1, into, rows_present)
                done += len(valid)
                if progress is not None:
                    progress(done, total)
            stream.emit(grid.n_frames, into, rows_present)
    finally:
        net.train(was_training)
    return Embeddings(out, model_id=model_fingerprint(net))


def embedding_autocast(precision: str, device: torch.device):
    """The autocast context of ``embed`` for ``precision`` on ``device``."""
    if precision not in ("auto", "float32", "bfloat16"):
        raise SkelmaeError(
            f"precision must be 'auto', 'float32' or 'bfloat16', got {precision!r}")
    if precision == "auto":
        precision = ("bfloat16" if device.type == "cuda" and torch.cuda.is_bf16_supported()
                     else "float32")
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bfloat16")


class RowStream:
    """Per-model-frame average of window outputs, put on the source rows as soon as it is
    final.

    Windows are added in order of their start; once no later window can reach model frames
    below ``until``, :meth:`emit` writes every row whose two neighbouring model frames are
    below it (linear interpolation between them, ``TimeGrid.neighbours``, as
    :func:`~napari_skelmae.model.grid_to_rows` does for a whole grid) and forgets the
    frames no remaining row needs. The buffer holds about one batch of strides plus a
    window of model frames, whatever the length.
    """

    def __init__(self, grid: TimeGrid, frame_index: np.ndarray, dim: int):
        self.n_frames = grid.n_frames
        self.left, self.right, self.weight, inside = grid.neighbours(frame_index)
        rows = np.flatnonzero(inside)
        # by the last model frame each row needs
        self.order = rows[np.argsort(self.right[rows], kind="stable")]
        self.next = 0  # rows emitted so far (in self.order)
        self.base = 0  # model frame of buffer row 0
        self.total = np.zeros((0, dim), np.float64)
        self.count = np.zeros(0, np.int64)

    def add(self, model_start: np.ndarray, values: np.ndarray, present: np.ndarray) -> None:
        """``values`` (B, T, D) of windows starting at ``model_start`` (B,) (increasing);
        only frames where ``present`` (B, T) count; frames off the grid are dropped."""
        t = values.shape[1]
        self._reserve(min(int(model_start.max()) + t, self.n_frames))
        frames = model_start[:, None] + np.arange(t)
        keep = present & (frames >= 0) & (frames < self.n_frames)
        for j in range(t):  # one offset at a time: unique indices in each fancy-indexed add
            at = frames[keep[:, j], j] - self.base
            self.total[at] += values[keep[:, j], j]
            self.count[at] += 1

    def emit(self, until: int, into: np.ndarray, rows_present: np.ndarray) -> None:
        """Write the rows whose model frames are all below ``until`` into ``into`` (N, D),
        where ``rows_present``; rows with a neighbouring frame no window saw stay as they
        are (NaN)."""
        stop = self.next + int(np.searchsorted(self.right[self.order[self.next:]], until))
        rows = self.order[self.next:stop]
        self.next = stop
        if len(rows):
            li, ri = self.left[rows] - self.base, self.right[rows] - self.base
            have = (self.count[li] > 0) & (self.count[ri] > 0)
            mean_l = self.total[li] / np.maximum(self.count[li], 1)[:, None]
            mean_r = self.total[ri] / np.maximum(self.count[ri], 1)[:, None]
            w = self.weight[rows, None]
            values = (mean_l * (1 - w) + mean_r * w).astype(np.float32)
            ok = have & rows_present[rows]
            into[rows[ok]] = values[ok]
        # the remaining rows need frames from their left neighbour on, which is at least
        # the smallest remaining right neighbour - 1 (rows are sorted by it)
        if self.next < len(self.order):
            self._drop_below(int(self.right[self.order[self.next]]) - 1)

    def _drop_below(self, frame: int) -> None:
        shift = frame - self.base
        if shift > 0:
            self.total = self.total[shift:].copy()
            self.count = self.count[shift:].copy()
            self.base = frame

    def _reserve(self, end: int) -> None:
        """Make the buffer reach model frame ``end`` (exclusive)."""
        grow = end - self.base - len(self.count)
        if grow > 0:
            self.total = np.concatenate([self.total, np.zeros((grow, self.total.shape[1]))])
            self.count = np.concatenate([self.count, np.zeros(grow, np.int64)])


def _cancelled(cancel: threading.Event | Callable[[], bool] | None) -> bool:
    if cancel is None:
        return False
    return cancel.is_set() if isinstance(cancel, threading.Event) else bool(cancel())
