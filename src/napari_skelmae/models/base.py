"""The one interface every masked skeleton method implements.

A method is an ``nn.Module`` subclass of :class:`MaskedSkeletonModel` registered by name in
:mod:`napari_skelmae.models` (``"mamp"``, ``"skeleton2vec"``, ``"skeletonmae"``, ``"msae"``).
The trainer, inference and the model file only ever talk to this interface.

Batches (from :mod:`napari_skelmae.windows`): ``x`` float (B, T, V, C) egocentric coordinates,
0 where invalid; ``valid`` bool (B, T, V), False for missing or low-confidence keypoints. A
missing keypoint is never a target and never a visible input.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import torch
from torch import nn

from ..errors import SkelmaeError
from .blocks import check_windows


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """Shape facts a model is built for (from the data, not hyperparameters)."""

    n_keypoints: int
    n_channels: int  # 2 or 3 (the tracks' space)
    n_frames: int  # window length T in model frames
    edges: tuple[tuple[int, int], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "edges": [list(e) for e in self.edges]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelSpec:
        return cls(
            int(d["n_keypoints"]),
            int(d["n_channels"]),
            int(d["n_frames"]),
            tuple((int(a), int(b)) for a, b in d.get("edges", ())),
        )


class MaskedSkeletonModel(nn.Module):
    """Base class: subclasses set ``name``, ``Config`` (a frozen dataclass of hyperparameters
    with animal-sized defaults) and ``presets`` (name -> dict of Config overrides, including
    the paper's own configuration as e.g. ``"paper"``)."""

    name: ClassVar[str]
    Config: ClassVar[type]
    presets: ClassVar[dict[str, dict[str, Any]]] = {}
    #: True when ``reconstruct`` returns coordinates (usable for imputation)
    reconstructs_coordinates: ClassVar[bool] = False

    def __init__(self, spec: ModelSpec, config: Any):
        super().__init__()
        self.spec = spec
        self.config = config

    # ---- pretraining ---------------------------------------------------------------
    def loss(
        self, x: torch.Tensor, valid: torch.Tensor, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """Mask, encode, decode and return ``{"loss": scalar, ...}`` (extra scalars are
        logged). Masking randomness comes only from ``generator``."""
        raise NotImplementedError

    def after_step(self, step: int, total_steps: int) -> None:
        """Called after each optimiser step (e.g. Skeleton2vec's EMA teacher update)."""

    # ---- features ------------------------------------------------------------------
    def encode(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Token features without masking (invalid tokens hidden): (B, TP, V, D)."""
        raise NotImplementedError

    @property
    def temporal_patch(self) -> int:
        """Frames per token along time (the T axis of ``encode``'s output is T // this):
        ``config.patch`` (every method's config has one)."""
        return int(getattr(self.config, "patch", 1))

    @property
    def feature_dim(self) -> int:
        """Width D of ``encode``'s features: ``config.dim`` unless a method says otherwise."""
        return int(self.config.dim)

    def _check(self, x: torch.Tensor, valid: torch.Tensor) -> None:
        """Refuse windows that do not fit the model (shapes, keypoints, channels, patch)."""
        check_windows(x, valid, self.spec.n_keypoints, self.spec.n_channels,
                      self.temporal_patch)

    def frame_features(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Per-frame features (B, T, D): tokens averaged over joints (valid-weighted) and
        broadcast over the frames of their temporal patch."""
        tokens = self.encode(x, valid)  # (B, TP, V, D)
        p = self.temporal_patch
        b, tp, v, _ = tokens.shape
        tok_valid = valid.reshape(b, tp, p, v).any(dim=2).to(tokens.dtype)  # (B, TP, V)
        w = tok_valid.unsqueeze(-1)
        per_patch = (tokens * w).sum(2) / w.sum(2).clamp_min(1.0)  # (B, TP, D)
        return per_patch.repeat_interleave(p, dim=1)

    def window_features(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Per-window features (B, D): the mean over frames (the papers' linear-probe
        feature)."""
        return self.frame_features(x, valid).mean(dim=1)

    # ---- imputation ----------------------------------------------------------------
    @property
    def needs_own_track(self) -> bool:
        """True when ``reconstruct`` builds a keypoint's fill on its own seen frames in the
        window (the ``fill="interpolate"`` prior): a window that never saw the keypoint then
        has no guess for it. Token-fill models predict it from the other keypoints."""
        return getattr(self.config, "fill", "token") == "interpolate"

    def reconstruct(
        self, x: torch.Tensor, valid: torch.Tensor, masked: torch.Tensor
    ) -> torch.Tensor:
        """Coordinates (B, T, V, C) predicted for every entry given the unmasked ones."""
        raise SkelmaeError(
            f"the {self.name} model predicts {'motion' if self.name == 'mamp' else 'features'}, "
            "not coordinates, so it cannot fill missing keypoints; use 'msae' or 'skeletonmae'"
        )


def check_config_keys(config_cls: type, overrides: dict[str, Any], method: str) -> None:
    """Refuse unknown hyperparameters with a message that lists the known ones."""
    known = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise SkelmaeError(
            f"unknown {method} option(s) {unknown}; known options: {sorted(known)}"
        )
