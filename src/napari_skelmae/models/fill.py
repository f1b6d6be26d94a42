"""Linear interpolation in time of the hidden entries of a window (torch, any device).

The coordinate models (MSAE, SkeletonMAE) can take it as their input for the hidden entries
and predict a correction to it (``fill="interpolate"``): interpolation is what a gap's own
keypoint says about it, and the network then only has to learn what the other keypoints and
the shape of the motion add (docs/methods/msae.md, "Imputation").
"""

from __future__ import annotations

import torch

from ..errors import SkelmaeError
from ..masking import gap_mask

FILLS = ("token", "interpolate")
#: per-entry coordinate error a model is trained on: the squared error, or the Euclidean
#: distance (what an imputation is judged by: a mean distance in pixels or body lengths)
COORD_LOSSES = ("mse", "distance")
#: the distance is sqrt(|d|^2 + eps^2), smooth at 0 (window units: body lengths)
DISTANCE_EPS = 1e-3


def entry_error(pred: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    """(..., C) -> (...): the mean squared coordinate error or the (smoothed) distance."""
    sq = (pred - target) ** 2
    if kind == "distance":
        return (sq.sum(-1) + DISTANCE_EPS**2).sqrt()
    return sq.mean(-1)


def seen_mean(x: torch.Tensor, seen: torch.Tensor) -> torch.Tensor:
    """(B, 1, V, C): each keypoint's mean over the seen frames of its window (0 if none)."""
    w = seen.unsqueeze(-1).to(x.dtype)
    x = torch.where(seen.unsqueeze(-1), x, torch.zeros((), dtype=x.dtype, device=x.device))
    return (x * w).sum(1, keepdim=True) / w.sum(1, keepdim=True).clamp_min(1.0)


def interpolated_input(x: torch.Tensor, seen: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(prior, features)`` for ``fill="interpolate"``: the interpolation (B, T, V, C) and
    what the network is shown, (B, T, V, 3C):

    * the prior minus each keypoint's window mean of the seen frames, then that mean.
      Computed in float32: under bfloat16 autocast the network's first layer rounds its
      input to ~3 significant digits, which for a point 7 body lengths from the centre is
      ~0.03 body lengths (a pixel for the zebrafish, about its whole tracking jitter); small
      deviations keep their precision, the mean its information;
    * at seen entries with seen frames on both sides, how far the entry is from the
      interpolation of its neighbours (what interpolation would have got wrong, had it been
      hidden), 0 elsewhere: the interpolation errors of keypoints in the same frame are
      correlated (a smooth tail, one body), so those of the seen keypoints tell the network
      about those of the hidden ones in the same frame.
    """
    x = x.float()
    prior = interpolate_in_time(x, seen)
    mean = seen_mean(x, seen)
    around, both_sides = interpolate_in_time(x, seen, exclude_self=True)
    residual = torch.where((seen & both_sides).unsqueeze(-1), x - around,
                           torch.zeros((), dtype=x.dtype, device=x.device))
    return prior, torch.cat([prior - mean, mean.expand_as(prior), residual], dim=-1)


def interpolate_in_time(x: torch.Tensor, seen: torch.Tensor, exclude_self: bool = False):
    """``x`` (B, T, V, C) where ``seen`` (B, T, V), elsewhere the linear interpolation in
    time between the nearest seen frames of the same keypoint; past the first (last) seen
    frame the first (last) seen value; 0 for a keypoint seen in no frame of its window.
    Values at unseen entries of ``x`` (even NaN) never reach the result.

    ``exclude_self``: every entry interpolated from the seen frames strictly before and
    after it (what it would be if it were hidden); returns ``(values, both_sides)`` with
    ``both_sides`` (B, T, V) True where there are seen frames on both sides."""
    b, t, v, c = x.shape
    x = torch.where(seen.unsqueeze(-1), x, torch.zeros((), dtype=x.dtype, device=x.device))
    frame = torch.arange(t, device=x.device).view(1, t, 1).expand(b, t, v)
    prev = torch.where(seen, frame, -1).cummax(dim=1).values
    nxt = torch.where(seen, frame, t).flip(1).cummin(dim=1).values.flip(1)
    if exclude_self:  # the nearest seen frame strictly before / after
        prev = torch.cat([torch.full_like(prev[:, :1], -1), prev[:, :-1]], dim=1)
        nxt = torch.cat([nxt[:, 1:], torch.full_like(nxt[:, :1], t)], dim=1)
    has_prev, has_next = prev >= 0, nxt < t
    x_prev = x.gather(1, prev.clamp(0, t - 1).unsqueeze(-1).expand(b, t, v, c))
    x_next = x.gather(1, nxt.clamp(0, t - 1).unsqueeze(-1).expand(b, t, v, c))
    w = (frame - prev).to(x.dtype) / (nxt - prev).clamp_min(1).to(x.dtype)
    w = torch.where(has_prev & has_next, w, has_next.to(x.dtype))  # one side only: that side
    out = x_prev * (1 - w.unsqueeze(-1)) + x_next * w.unsqueeze(-1)
    out = torch.where((has_prev | has_next).unsqueeze(-1), out, torch.zeros_like(out))
    if exclude_self:
        return out, has_prev & has_next
    return torch.where(seen.unsqueeze(-1), x, out)


def mix_in_gaps(hidden: torch.Tensor, gap_ratio: float, gap_fraction: float,
                generator: torch.Generator | None) -> torch.Tensor:
    """``hidden`` (B, T, V) with a ``gap_ratio`` share of its windows (drawn at random)
    masked by :func:`~napari_skelmae.masking.gap_mask` instead: runs of frames of single
    keypoints, the holes occlusion leaves, which per-frame masking hardly ever makes."""
    if gap_ratio <= 0.0:
        return hidden
    b, t, v = hidden.shape
    gaps = gap_mask(b, t, v, gap_fraction, generator=generator, device=hidden.device)
    pick = torch.rand(b, generator=generator, device=hidden.device) < gap_ratio
    return torch.where(pick.view(b, 1, 1), gaps, hidden)


def check_fill_options(method: str, config) -> None:
    """Refuse bad imputation options of a coordinate model's ``config`` (``fill``,
    ``coord_loss``, ``gap_ratio``, ``gap_fraction``), naming the method."""
    if config.fill not in FILLS:
        raise SkelmaeError(f"{method}: fill must be one of {FILLS}, got {config.fill!r}")
    if config.coord_loss not in COORD_LOSSES:
        raise SkelmaeError(
            f"{method}: coord_loss must be one of {COORD_LOSSES}, got {config.coord_loss!r}"
        )
    if not 0.0 <= config.gap_ratio <= 1.0 or not 0.0 < config.gap_fraction < 1.0:
        raise SkelmaeError(
            f"{method}: gap_ratio={config.gap_ratio} must be in [0, 1] and gap_fraction="
            f"{config.gap_fraction} in (0, 1)"
        )
