"""The per-frame embeddings array (numpy only: reading results back needs no torch)."""

from __future__ import annotations

import numpy as np

__all__ = ["Embeddings"]


class Embeddings(np.ndarray):
    """Per-frame embeddings (frames, individuals, D) float32, NaN where an animal is absent.

    An ndarray in every respect; ``model_id`` (the fingerprint of the model's weights, or
    None for arrays of unknown origin) survives slicing and copying, and is checked by
    :func:`napari_skelmae.cluster` and the behaviour classifiers."""

    model_id: str | None

    def __new__(cls, values: np.ndarray, model_id: str | None = None) -> Embeddings:
        out = np.asarray(values, dtype=np.float32).view(cls)
        out.model_id = model_id
        return out

    def __array_finalize__(self, obj) -> None:
        self.model_id = getattr(obj, "model_id", None)

    def __reduce__(self):  # pickling an ndarray subclass drops attributes otherwise
        return (Embeddings, (np.asarray(self), self.model_id))
