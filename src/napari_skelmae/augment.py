"""Random augmentations of window batches for pretraining (torch, any device).

All functions take ``x`` (B, T, V, C) egocentric coordinates with 0 where invalid and ``valid``
(B, T, V), return new tensors (inputs are never modified), keep invalid entries at 0, and draw
every random number from the given ``torch.Generator`` so that a seed reproduces a run.

After egocentric alignment (heading along +y, see :mod:`napari_skelmae.windows`) a large
rotation would undo the alignment the model relies on; a small jitter (MAMP's U[-0.3, 0.3] rad)
only teaches robustness to heading noise. Raise ``max_angle`` to pi for non-rotated data.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence
from typing import Any

import torch

from .errors import SkelmaeError

__all__ = ["Augment", "crop_resize", "mirror", "random_flip", "random_rotation",
           "symmetry_pairs"]


@dataclasses.dataclass(frozen=True)
class Augment:
    """Which augmentations to apply, and how strongly.

    Attributes
    ----------
    rotate, max_angle
        Rotation about the origin (the centre keypoint) by U[-max_angle, max_angle] radians:
        in-plane for 2D, each of three Euler angles for 3D (MAMP: 0.3).
    crop_resize, min_crop
        Take a random contiguous part of U[min_crop, 1] of the window and stretch it back to T
        frames. MAMP uses 0.5; that speeds motion up to 2x, and speed tells animal behaviours
        apart (walk vs run), so the default keeps it within 1.25x.
    flip, flip_probability
        Mirror left/right (x -> -x, paired keypoints swapped) with this probability per window.
    """

    rotate: bool = True
    max_angle: float = 0.3
    crop_resize: bool = True
    min_crop: float = 0.8
    flip: bool = True
    flip_probability: float = 0.5

    def __post_init__(self) -> None:
        if not 0 <= self.max_angle <= math.pi:
            raise SkelmaeError(f"Augment.max_angle must be in [0, pi], got {self.max_angle!r}")
        if not 0 < self.min_crop <= 1:
            raise SkelmaeError(f"Augment.min_crop must be in (0, 1], got {self.min_crop!r}")
        if not 0 <= self.flip_probability <= 1:
            raise SkelmaeError(
                f"Augment.flip_probability must be in [0, 1], got {self.flip_probability!r}"
            )

    def __call__(
        self,
        x: torch.Tensor,
        valid: torch.Tensor,
        pairs: Sequence[tuple[int, int]] = (),
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Crop-resize, then flip, then rotate (each when switched on)."""
        if self.crop_resize and self.min_crop < 1:
            x, valid = crop_resize(x, valid, self.min_crop, generator)
        if self.flip and self.flip_probability > 0:
            x, valid = random_flip(x, valid, pairs, self.flip_probability, generator)
        if self.rotate and self.max_angle > 0:
            x, valid = random_rotation(x, valid, self.max_angle, generator)
        return x, valid

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Augment:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise SkelmaeError(f"unknown Augment keys {unknown}; known keys: {sorted(known)}")
        return cls(**d)


def _uniform(shape: tuple[int, ...], generator: torch.Generator | None,
             device: torch.device) -> torch.Tensor:
    """U[0, 1) drawn on the generator's device (a generator only serves its own device)."""
    on = generator.device if generator is not None else device
    return torch.rand(shape, generator=generator, device=on, dtype=torch.float64).to(device)


def random_rotation(
    x: torch.Tensor, valid: torch.Tensor, max_angle: float = 0.3,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One rotation per window about the origin: in-plane (2D) or Euler x, y, z (3D)."""
    B, C = x.shape[0], x.shape[-1]
    angles = (2 * _uniform((B, 1 if C == 2 else 3), generator, x.device) - 1) * max_angle
    cos, sin = torch.cos(angles), torch.sin(angles)
    one, zero = torch.ones_like(cos[:, 0]), torch.zeros_like(cos[:, 0])
    if C == 2:
        R = torch.stack([cos[:, 0], -sin[:, 0], sin[:, 0], cos[:, 0]], -1).reshape(B, 2, 2)
    else:
        def rot(i, axes):  # rotation by angle i in the plane of ``axes``
            a, b = axes
            m = [[one, zero, zero], [zero, one, zero], [zero, zero, one]]
            m[a][a], m[a][b], m[b][a], m[b][b] = cos[:, i], -sin[:, i], sin[:, i], cos[:, i]
            return torch.stack([torch.stack(row, -1) for row in m], -2)

        R = rot(2, (0, 1)) @ rot(1, (2, 0)) @ rot(0, (1, 2))  # Rz Ry Rx
    out = torch.einsum("bij,btvj->btvi", R.to(x.dtype), x)
    return out * valid[..., None], valid.clone()


def crop_resize(
    x: torch.Tensor, valid: torch.Tensor, min_fraction: float = 0.5,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A random contiguous segment of U[min_fraction, 1] of the window, resized back to T.

    Linear interpolation in time; an output frame is valid only where the frames it is
    interpolated from are (the AND rule), so no value mixes in an invalid 0.
    """
    B, T = x.shape[:2]
    if T < 2:
        return x.clone(), valid.clone()
    u = _uniform((B, 2), generator, x.device)
    length = torch.floor((min_fraction + (1 - min_fraction) * u[:, 0]) * T).clamp(2, T)
    start = torch.floor(u[:, 1] * (T - length + 1)).clamp(max=T - length)
    pos = start[:, None] + torch.arange(T, device=x.device) * ((length - 1) / (T - 1))[:, None]
    i0 = torch.floor(pos)
    w = pos - i0
    up = w > 1 - 1e-6  # a frame hit up to rounding is that frame, no neighbour involved
    i0 = torch.where(up, i0 + 1, i0).long().clamp(0, T - 1)
    w = torch.where(up | (w < 1e-6), torch.zeros_like(w), w)
    i1 = (i0 + 1).clamp(max=T - 1)
    window = torch.arange(B, device=x.device)[:, None]
    x0, x1 = x[window, i0], x[window, i1]
    v0, v1 = valid[window, i0], valid[window, i1]
    out_valid = v0 & (v1 | (w == 0)[:, :, None])
    wx = w.to(x.dtype)[:, :, None, None]
    out = (x0 * (1 - wx) + x1 * wx) * out_valid[..., None]
    return out, out_valid


def mirror(
    x: torch.Tensor, valid: torch.Tensor, pairs: Sequence[tuple[int, int]] = ()
) -> tuple[torch.Tensor, torch.Tensor]:
    """Left/right mirror image: x -> -x and each (left, right) keypoint pair swapped.

    Keypoints without a partner are taken to lie on the midline (a fish's tail, a fly's head).
    """
    perm = list(range(x.shape[2]))
    for a, b in pairs:
        perm[a], perm[b] = b, a
    perm_t = torch.tensor(perm, device=x.device)
    out = x.index_select(2, perm_t)
    out[..., 0] = -out[..., 0]
    return out, valid.index_select(2, perm_t)


def random_flip(
    x: torch.Tensor, valid: torch.Tensor, pairs: Sequence[tuple[int, int]] = (),
    probability: float = 0.5, generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`mirror` each window with ``probability``."""
    flip = _uniform((x.shape[0],), generator, x.device) < probability
    mx, mv = mirror(x, valid, pairs)
    return (torch.where(flip[:, None, None, None], mx, x),
            torch.where(flip[:, None, None], mv, valid))


_LEFT_WORDS = (("left", "right"), ("Left", "Right"), ("LEFT", "RIGHT"))
# single letters as a token: wingL, forelegL4, L_ear, ear_l (not the l of "tail")
_LEFT_LETTERS = ((re.compile(r"(?<![A-Z])L(?![a-z])"), "R"),
                 (re.compile(r"(?<![A-Za-z])l(?![a-z])"), "r"))


def symmetry_pairs(
    keypoint_names: Sequence[str], metadata: dict[str, Any] | None = None
) -> list[tuple[int, int]]:
    """(left, right) keypoint index pairs.

    From ``metadata["symmetries"]`` (SLEAP skeletons, JABS) when it names any, otherwise from
    the names: left/right, Left/Right, LEFT/RIGHT anywhere (leftear/rightear) or L/R, l/r as a
    token of their own (wingL/wingR, forelegL4/forelegR4, ear_l/ear_r).
    """
    names = list(keypoint_names)
    given = [tuple(p) for p in (metadata or {}).get("symmetries") or []]
    pairs = [(names.index(a), names.index(b)) for a, b in given if a in names and b in names]
    if pairs:
        return sorted({(min(p), max(p)) for p in pairs if p[0] != p[1]})
    found = []
    for i, name in enumerate(names):
        candidates = [name.replace(left, right, 1) for left, right in _LEFT_WORDS if left in name]
        for pattern, right in _LEFT_LETTERS:
            candidates += [name[: m.start()] + right + name[m.end():]
                           for m in pattern.finditer(name)]
        for other in candidates:
            if other != name and other in names:
                found.append((i, names.index(other)))
                break
    return found
