"""Masking strategies of the four masked skeleton models (METHODS.md §1-4), vectorised in torch.

Layout
    Tokens are laid out ``(B, TP, V)``: batch, temporal patches (frames for MSAE and
    SkeletonMAE), joints. Every strategy returns a bool tensor ``masked`` of that shape,
    True where a token is hidden from the encoder. Losses are computed on ``masked & valid``.

Missing keypoints (``valid``)
    ``valid`` (bool ``(B, TP, V)``, optional) marks tokens built from tracked keypoints.
    A missing keypoint must never reach the encoder as if it were data, and MAE encoders
    need the same number of visible tokens in every sample. One rule serves both, for every
    gather-based strategy (random, motion-aware, tube, two-stage):

    * the visible budget is fixed by the ratio alone (so it is equal across the batch);
    * invalid tokens are masked first, i.e. they count towards the mask ratio;
    * only when a sample cannot fill its budget with valid tokens (e.g. a window in which an
      animal is mostly lost) are the fewest possible invalid tokens left unmasked.

    So ``masked`` always has the exact count, and an unmasked invalid token is padding, not
    data. Callers must zero (or NaN-replace) invalid inputs and gather ``valid`` with the
    same index, ``gather_tokens(valid.flatten(1), visible_index(masked))``, to use as an
    attention key-padding mask or to swap in a learned "missing" embedding. The alternative,
    masking every invalid token and letting counts differ, would force ragged batches on
    every encoder; replacing a missing token by a random extra valid one would break the
    structure of tube and two-stage masks.
    ``graph_part_mask`` (SkeletonMAE's GIN keeps every node and puts a mask token in place)
    needs no equal counts: there invalid tokens are always masked.

Counts
    ``round`` below means nearest integer with ties going to FEWER masked tokens
    (``ceil(x - 0.5)``, with a 1e-9 guard against float noise), which reproduces MSAE's
    6 of 13 masked joints at ratio 0.5. Tube masking keeps ``floor(V * (1 - ratio))`` joints,
    at least one, as Skeleton2vec's code does.

Randomness and devices
    Results depend only on ``generator`` (a ``torch.Generator``). Work happens on the device
    of the input tensors (or ``device=`` for shape-only calls); the generator must live on
    that same device, e.g. ``torch.Generator(device="cuda")`` for CUDA tensors. No Python
    loop runs over samples, frames or tokens.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

import numpy as np
import torch

from .errors import SkelmaeError

__all__ = [
    "body_parts",
    "gather_tokens",
    "graph_part_mask",
    "masked_index",
    "motion_aware_mask",
    "random_mask",
    "token_motion",
    "tube_mask",
    "two_stage_mask",
    "visible_index",
]

_EPS = 1e-9


# ------------------------------------------------------------------------------ helpers


def _round_count(x: float) -> int:
    """Nearest integer, ties down (6.5 -> 6), tolerant to float noise (0.29 * 100)."""
    return max(0, math.ceil(x - 0.5 - _EPS))


def _check_ratio(ratio: float, name: str = "ratio", upper_inclusive: bool = False) -> float:
    ratio = float(ratio)
    ok = 0.0 <= ratio <= 1.0 if upper_inclusive else 0.0 <= ratio < 1.0
    if not ok:
        interval = "[0, 1]" if upper_inclusive else "[0, 1)"
        raise SkelmaeError(f"{name} must be in {interval}, got {ratio}")
    return ratio


def _same_device(a: torch.device, b: torch.device) -> bool:
    if a.type != b.type:
        return False
    return a.index is None or b.index is None or a.index == b.index


def _resolve_device(
    tensors: Sequence[torch.Tensor | None],
    generator: torch.Generator | None,
    device: torch.device | str | None,
) -> torch.device:
    """The one device all inputs share; the generator must be on it (torch would fail later)."""
    candidates = [t.device for t in tensors if t is not None]
    if device is not None:
        candidates.append(torch.device(device))
    if generator is not None and not candidates:
        candidates.append(generator.device)
    dev = candidates[0] if candidates else torch.device("cpu")
    for other in candidates[1:]:
        if not _same_device(dev, other):
            raise SkelmaeError(f"mask inputs are on different devices: {dev} and {other}")
    if generator is not None and not _same_device(generator.device, dev):
        raise SkelmaeError(
            f"the generator is on {generator.device} but the mask is built on {dev}; "
            f"create it with torch.Generator(device='{dev.type}')"
        )
    return dev


def _check_valid(valid: torch.Tensor | None, shape: tuple[int, ...], device) -> torch.Tensor:
    if valid is None:
        return torch.ones(shape, dtype=torch.bool, device=device)
    if valid.dtype != torch.bool:
        raise SkelmaeError(f"valid must be a bool tensor, got {valid.dtype}")
    if tuple(valid.shape) != tuple(shape):
        raise SkelmaeError(f"valid has shape {tuple(valid.shape)}, expected {tuple(shape)}")
    return valid


def _check_dims(*dims: int) -> None:
    if any(int(d) < 1 for d in dims):
        raise SkelmaeError(f"mask dimensions must be positive, got {tuple(dims)}")


def _keep_lowest(deficit: torch.Tensor, score: torch.Tensor, n_keep: int) -> torch.Tensor:
    """Bool mask (same shape) of the ``n_keep`` entries per row (last dim) that sort first by
    ``deficit`` ascending, then by ``score`` ascending (a two-pass stable lexicographic sort)."""
    by_score = torch.argsort(score, dim=-1)
    by_deficit = torch.argsort(deficit.gather(-1, by_score), dim=-1, stable=True)
    order = by_score.gather(-1, by_deficit)
    keep = torch.zeros(score.shape, dtype=torch.bool, device=score.device)
    return keep.scatter_(-1, order[..., :n_keep], True)


def _gumbel(shape, generator, device, dtype) -> torch.Tensor:
    u = torch.rand(shape, generator=generator, device=device, dtype=dtype)
    return -torch.log(-torch.log(u.clamp_min(torch.finfo(dtype).tiny)))


def _float_dtype(t: torch.Tensor) -> torch.dtype:
    return torch.promote_types(t.dtype, torch.float32)


def _normalised_motion(motion: torch.Tensor, known: torch.Tensor, tau: float) -> torch.Tensor:
    """MAMP's Ĩ = I / (max(I)·tau + 1e-10) per sample (dim 0), max over ``known`` entries only.

    Entries whose motion is unknown (valid but NaN, e.g. right after a gap) get the sample's
    mean Ĩ: no bias either way. tau <= 0 gives Ĩ = 0 everywhere, i.e. uniform masking.
    """
    if tau <= 0:
        return torch.zeros_like(motion)
    flat = motion.flatten(1)
    known_flat = known.flatten(1)
    peak = torch.where(known_flat, flat, -torch.inf).amax(dim=1, keepdim=True)
    peak = torch.where(torch.isfinite(peak), peak, torch.zeros_like(peak))
    scaled = torch.where(known_flat, flat / (peak * tau + 1e-10), torch.nan)
    fill = torch.nan_to_num(scaled.nanmean(dim=1, keepdim=True), nan=0.0)
    return torch.where(known_flat, scaled, fill).view_as(motion)


# ------------------------------------------------------------------------------ gathering


def _order_visible_first(masked: torch.Tensor, counting: str) -> tuple[torch.Tensor, int]:
    if masked.dtype != torch.bool or masked.ndim < 2:
        raise SkelmaeError(
            f"masked must be a bool tensor (B, ...), got {masked.dtype} {tuple(masked.shape)}"
        )
    flat = masked.flatten(1)
    n_visible = (~flat).sum(dim=1)
    lo, hi = int(n_visible.min()), int(n_visible.max())
    if lo != hi:
        raise SkelmaeError(
            f"cannot gather {counting} tokens: the number of visible tokens differs across the "
            f"batch ({lo} to {hi}); gathering needs equal counts (graph_part_mask masks are "
            f"ragged by design: apply them in place with a mask token instead)"
        )
    return torch.argsort(flat.to(torch.uint8), dim=1, stable=True), lo


def visible_index(masked: torch.Tensor) -> torch.Tensor:
    """LongTensor (B, n_visible): flat token indices of the visible tokens, ascending.

    Ascending order keeps time order, so two-stage masks reshape to (B, kept frames, kept joints).
    """
    order, n_visible = _order_visible_first(masked, "visible")
    return order[:, :n_visible]


def masked_index(masked: torch.Tensor) -> torch.Tensor:
    """LongTensor (B, n_masked): flat token indices of the masked tokens, ascending."""
    order, n_visible = _order_visible_first(masked, "masked")
    return order[:, n_visible:]


def gather_tokens(tokens: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Pick ``tokens`` (B, N, *features) at ``index`` (B, n) -> (B, n, *features)."""
    if index.ndim != 2 or tokens.ndim < 2 or tokens.shape[0] != index.shape[0]:
        raise SkelmaeError(
            f"gather_tokens needs tokens (B, N, ...) and index (B, n), got {tuple(tokens.shape)} "
            f"and {tuple(index.shape)}"
        )
    expanded = index.view(*index.shape, *([1] * (tokens.ndim - 2))).expand(
        *index.shape, *tokens.shape[2:]
    )
    return tokens.gather(1, expanded)


# ------------------------------------------------------------------------------ MAE / MAMP


def _budget(ratio: float, n_tokens: int, what: str) -> int:
    n_visible = n_tokens - _round_count(ratio * n_tokens)
    if n_visible < 1:
        raise SkelmaeError(f"{what}: ratio {ratio} leaves no visible token out of {n_tokens}")
    return n_visible


def random_mask(
    shape_or_valid: Sequence[int] | torch.Tensor,
    ratio: float,
    generator: torch.Generator | None = None,
    *,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """MAE's uniform masking: exactly round(ratio·TP·V) masked tokens per sample.

    ``shape_or_valid`` is (B, TP, V) or the bool ``valid`` tensor itself; invalid tokens are
    masked first (see the module docstring for the rare sample with too few valid tokens).
    """
    ratio = _check_ratio(ratio)
    valid_in = shape_or_valid if isinstance(shape_or_valid, torch.Tensor) else None
    shape = tuple(valid_in.shape) if valid_in is not None else tuple(int(s) for s in shape_or_valid)
    if len(shape) != 3:
        raise SkelmaeError(f"random_mask needs a (B, TP, V) shape, got {shape}")
    _check_dims(*shape)
    dev = _resolve_device([valid_in], generator, device)
    valid = _check_valid(valid_in, shape, dev)
    n_visible = _budget(ratio, shape[1] * shape[2], "random_mask")
    noise = torch.rand((shape[0], shape[1] * shape[2]), generator=generator, device=dev)
    visible = _keep_lowest((~valid).flatten(1).to(torch.uint8), noise, n_visible)
    return (~visible).view(shape)


def token_motion(patches: torch.Tensor) -> torch.Tensor:
    """MAMP's token motion (METHODS.md §4 step 2): (B, TP, V, values...) -> (B, TP, V).

    I[t] = mean |p[t] - p[t-1]| over the token's values, I[0] := I[1]. NaN values (missing
    keypoints) are left out of the mean; a token with no pair of present values gets NaN,
    which the masks treat as unknown motion. With a single patch there is no motion: zeros.
    """
    if patches.ndim < 4:
        raise SkelmaeError(
            f"token_motion needs patches (B, TP, V, values), got {tuple(patches.shape)}"
        )
    patches = patches.flatten(3).to(_float_dtype(patches))
    if patches.shape[1] < 2:
        return torch.zeros(patches.shape[:3], dtype=patches.dtype, device=patches.device)
    step = (patches[:, 1:] - patches[:, :-1]).abs().nanmean(dim=-1)
    return torch.cat([step[:, :1], step], dim=1)


def motion_aware_mask(
    motion: torch.Tensor,
    ratio: float = 0.9,
    tau: float = 0.8,
    valid: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """MAMP's motion-aware masking (METHODS.md §4): high-motion tokens are more likely masked.

    Ĩ = I / (max(I)·tau + 1e-10) per sample, π = softmax(Ĩ) over all tokens, and the visible
    tokens are the (1 - ratio) fraction with the lowest Gumbel-perturbed log π, so the masked
    set is a draw without replacement proportional to π. log π differs from Ĩ by a per-sample
    constant, which does not change the order, so Ĩ + Gumbel is used directly. tau <= 0 gives
    uniform masking (MAMP 0.80 for NTU-60/PKU, 0.75 for NTU-120). Invalid tokens are left out
    of max(I) and masked first; valid tokens of unknown (NaN) motion get the sample's mean Ĩ.
    """
    ratio = _check_ratio(ratio)
    if motion.ndim != 3 or not motion.is_floating_point():
        raise SkelmaeError(
            f"motion must be a float (B, TP, V) tensor, got {motion.dtype} {tuple(motion.shape)}"
        )
    _check_dims(*motion.shape)
    shape = tuple(motion.shape)
    dev = _resolve_device([motion, valid], generator, None)
    valid = _check_valid(valid, shape, dev)
    dtype = _float_dtype(motion)
    motion = motion.to(dtype)
    n_visible = _budget(ratio, shape[1] * shape[2], "motion_aware_mask")
    intensity = _normalised_motion(motion, valid & torch.isfinite(motion), float(tau))
    score = intensity.flatten(1) + _gumbel((shape[0], shape[1] * shape[2]), generator, dev, dtype)
    visible = _keep_lowest((~valid).flatten(1).to(torch.uint8), score, n_visible)
    return (~visible).view(shape)


# ------------------------------------------------------------------------------ Skeleton2vec


def tube_mask(
    B: int,
    TP: int,
    V: int,
    ratio: float = 0.9,
    tube_len: int = 5,
    motion: torch.Tensor | None = None,
    tau: float = 0.8,
    valid: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    *,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Skeleton2vec's tube masking (METHODS.md §2): the same joints stay visible through a tube.

    The TP axis is cut into tubes of ``tube_len`` consecutive patches (the last one shorter when
    TP is not a multiple); each tube keeps floor(V·(1 - ratio)) joints (at least 1) visible and
    masks the others in all its patches. Defaults are the dev config (0.9, 5 patches -> 2 of 25
    joints per tube).

    Motion awareness is OUR INTERPRETATION (the dev code draws tube joints uniformly; the
    paper's weighting is unverified): with ``motion`` (B, TP, V), a joint's intensity in a tube
    is the mean token motion over the tube, normalised per sample as in MAMP, and the kept
    joints are the lowest Ĩ + Gumbel within each tube, so high-motion joints are more likely
    masked. Without ``motion`` (or tau <= 0) joints are drawn uniformly. tau's default is MAMP's.

    Missing keypoints: kept joints are chosen first among those with no invalid token in the
    tube (fewest invalid tokens first); only when a tube has too few such joints does an
    invalid token stay unmasked, as padding (module docstring).
    """
    ratio = _check_ratio(ratio)
    _check_dims(B, TP, V, tube_len)
    shape = (int(B), int(TP), int(V))
    if motion is not None and (tuple(motion.shape) != shape or not motion.is_floating_point()):
        raise SkelmaeError(
            f"motion must be a float {shape} tensor, got {motion.dtype} {tuple(motion.shape)}"
        )
    dev = _resolve_device([motion, valid], generator, device)
    valid = _check_valid(valid, shape, dev)
    n_keep = max(1, math.floor(V * (1.0 - ratio) + _EPS))
    n_tubes = math.ceil(TP / tube_len)
    pad = n_tubes * tube_len - TP

    def per_tube(x: torch.Tensor, fill) -> torch.Tensor:  # (B, TP, V) -> (B, n_tubes, tube_len, V)
        x = torch.cat([x, x.new_full((B, pad, V), fill)], dim=1) if pad else x
        return x.view(B, n_tubes, tube_len, V)

    deficit = per_tube(~valid, False).sum(dim=2)
    dtype = torch.float32 if motion is None else _float_dtype(motion)
    score = _gumbel((B, n_tubes, V), generator, dev, dtype)
    if motion is not None:
        known = valid & torch.isfinite(motion)
        tracked = torch.where(known, motion.to(dtype), torch.nan)
        tube_motion = per_tube(tracked, torch.nan).nanmean(dim=2)
        score = score + _normalised_motion(tube_motion, torch.isfinite(tube_motion), float(tau))
    kept = _keep_lowest(deficit, score, n_keep)
    tube_of_patch = torch.arange(TP, device=dev) // tube_len
    return ~kept.index_select(1, tube_of_patch)


# ------------------------------------------------------------------------------ MSAE


def two_stage_mask(
    B: int,
    T: int,
    V: int,
    frame_ratio: float = 0.4,
    joint_ratio: float = 0.5,
    valid: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    *,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """MSAE's two-stage masking (METHODS.md §1): whole frames, then joints in the kept frames.

    Masks round(frame_ratio·T) whole frames uniformly, then round(joint_ratio·V) joints in
    each kept frame, a different random set per frame (defaults: MSAE's hard-coded 0.4 / 0.5,
    i.e. 48 of 120 frames and 6 of 13 joints). Returns ``(masked (B, T, V), frame_masked (B, T))``;
    the visible tokens of every sample form a (T - frames masked) x (V - joints masked) grid.

    Missing keypoints: invalid joints are masked first within a kept frame; frames that could
    not fill their visible joints with valid ones are the first masked (frames without such a
    shortfall are drawn uniformly), so an invalid token stays unmasked only when unavoidable.
    """
    frame_ratio = _check_ratio(frame_ratio, "frame_ratio")
    joint_ratio = _check_ratio(joint_ratio, "joint_ratio")
    _check_dims(B, T, V)
    shape = (int(B), int(T), int(V))
    dev = _resolve_device([valid], generator, device)
    valid = _check_valid(valid, shape, dev)
    keep_frames = _budget(frame_ratio, T, "two_stage_mask frames")
    keep_joints = _budget(joint_ratio, V, "two_stage_mask joints")
    shortfall = (keep_joints - valid.sum(dim=2)).clamp_min(0)
    frame_kept = _keep_lowest(
        shortfall, torch.rand((B, T), generator=generator, device=dev), keep_frames
    )
    joint_kept = _keep_lowest(
        (~valid).to(torch.uint8), torch.rand(shape, generator=generator, device=dev), keep_joints
    )
    return ~(frame_kept.unsqueeze(-1) & joint_kept), ~frame_kept


# ------------------------------------------------------------------------------ SkeletonMAE


def gap_mask(
    B: int,
    T: int,
    V: int,
    fraction: float = 0.25,
    max_len: int | None = None,
    generator: torch.Generator | None = None,
    *,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Occlusion-like masking (OUR ADDITION, for imputation; no paper uses it): each keypoint
    of each sample loses at most one run of consecutive frames, its length uniform in
    [1, ``max_len``] (default T // 2) and its start uniform where it fits, with the chance
    that makes about ``fraction`` of all entries hidden. The other keypoints of those frames
    stay visible, as when a leg is behind the body or a tail tip leaves the focal plane: what
    MSAE's per-frame masking (mostly isolated frames) never shows a model. Returns masked
    (B, T, V), True = hidden."""
    fraction = _check_ratio(fraction, "fraction")
    _check_dims(B, T, V)
    max_len = T // 2 if max_len is None else int(max_len)
    if not 1 <= max_len <= T:
        raise SkelmaeError(f"gap_mask: max_len must be in [1, {T}], got {max_len}")
    dev = _resolve_device([], generator, device)
    mean_len = (max_len + 1) / 2
    chance = min(1.0, fraction * T / mean_len)
    shape = (int(B), 1, int(V))
    length = torch.randint(1, max_len + 1, shape, generator=generator, device=dev)
    start = (torch.rand(shape, generator=generator, device=dev) * (T - length + 1)).floor()
    active = torch.rand(shape, generator=generator, device=dev) < chance
    t = torch.arange(T, device=dev).view(1, T, 1)
    return active & (t >= start) & (t < start + length)


def _components(nodes: list[int], adjacency: list[set[int]]) -> list[list[int]]:
    """Connected components of the subgraph induced by ``nodes``, each sorted."""
    inside = set(nodes)
    seen: set[int] = set()
    out = []
    for start in sorted(nodes):
        if start in seen:
            continue
        seen.add(start)
        queue, comp = deque([start]), []
        while queue:
            n = queue.popleft()
            comp.append(n)
            for m in sorted(adjacency[n] & inside):
                if m not in seen:
                    seen.add(m)
                    queue.append(m)
        out.append(sorted(comp))
    return out


def _walk(nodes: list[int], adjacency: list[set[int]]) -> list[int]:
    """Order the nodes of a path or cycle (max degree <= 2) along it, from its lowest end."""
    inside = set(nodes)
    ends = [n for n in nodes if len(adjacency[n] & inside) < 2]
    current = min(ends) if ends else min(nodes)
    order, seen = [current], {current}
    while True:
        step = sorted(m for m in adjacency[current] & inside if m not in seen)
        if not step:
            return order
        current = step[0]
        order.append(current)
        seen.add(current)


def _split(nodes: list[int], adjacency: list[set[int]], part_size: int) -> list[list[int]]:
    inside = set(nodes)
    if len(nodes) <= part_size:
        return [nodes]
    degree = {n: len(adjacency[n] & inside) for n in nodes}
    top = max(degree.values())
    if top >= 3:
        hubs = [n for n in nodes if degree[n] == top]
        rest = [n for n in nodes if degree[n] != top]
        parts = [[h] for h in hubs]
        for comp in _components(rest, adjacency):
            parts.extend(_split(comp, adjacency, part_size))
        return parts
    chain = _walk(nodes, adjacency)
    n_segments = math.ceil(len(chain) / part_size)
    return [sorted(int(i) for i in seg) for seg in np.array_split(np.array(chain), n_segments)]


def body_parts(
    edges: np.ndarray | Sequence[tuple[int, int]] | torch.Tensor,
    n_keypoints: int,
    part_size: int = 3,
) -> list[list[int]]:
    """Connected groups of keypoints: the animal analogue of SkeletonMAE's head/torso/limbs.

    Deterministic rule, applied to each connected piece of the skeleton with more than
    ``part_size`` keypoints, until every piece is small enough:

    1. if it has branch points (degree >= 3), the highest-degree joints become parts of their
       own (the "torso") and their edges are cut, which frees the limbs;
    2. otherwise it is a chain (or a ring): cut it, from its lowest-index end, into
       ceil(n / part_size) contiguous segments of near-equal size.

    SLEAP flies13 (thorax joined to 10 nodes): thorax | head, eyeL, eyeR | abdomen | wingL |
    wingR | each leg tip -> 11 parts. A 13-point zebrafish chain: 3, 3, 3, 2, 2 consecutive
    points. Keypoints without edges (DLC mouse, 4 points) are parts of their own.
    Returns sorted index lists, ordered by their first index.
    """
    n_keypoints = int(n_keypoints)
    if n_keypoints < 1 or int(part_size) < 1:
        raise SkelmaeError(
            f"body_parts needs n_keypoints >= 1 and part_size >= 1, got {n_keypoints}, {part_size}"
        )
    if isinstance(edges, torch.Tensor):
        edges = edges.cpu().numpy()
    pairs = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    if pairs.size and (pairs.min() < 0 or pairs.max() >= n_keypoints):
        raise SkelmaeError(
            f"skeleton edges refer to keypoints outside 0..{n_keypoints - 1}: {pairs.tolist()}"
        )
    adjacency: list[set[int]] = [set() for _ in range(n_keypoints)]
    for a, b in pairs.tolist():
        if a != b:
            adjacency[a].add(b)
            adjacency[b].add(a)
    parts = []
    for comp in _components(list(range(n_keypoints)), adjacency):
        parts.extend(_split(comp, adjacency, int(part_size)))
    return sorted((sorted(p) for p in parts), key=lambda p: p[0])


def graph_part_mask(
    B: int,
    T: int,
    V: int,
    parts: Sequence[Sequence[int]],
    ratio: float,
    valid: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    *,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """SkeletonMAE's body-part masking (METHODS.md §3), independently per sample and frame.

    Parts are masked whole, in a random order, until at least ceil(ratio·V) joints of the
    frame are masked, so masked joints form connected groups on the skeleton graph. Invalid
    joints are always masked and count towards the ratio. Counts vary per frame: apply the mask
    in place (mask token) rather than with ``visible_index``. The paper's ratio is unverified.
    """
    ratio = _check_ratio(ratio, upper_inclusive=True)
    _check_dims(B, T, V)
    shape = (int(B), int(T), int(V))
    part_of = np.full(V, -1, dtype=np.int64)
    for p, members in enumerate(parts):
        idx = np.asarray(list(members), dtype=np.int64)
        if (
            idx.size == 0
            or idx.min() < 0
            or idx.max() >= V
            or np.any(part_of[idx] >= 0)
            or len(set(idx.tolist())) != idx.size
        ):
            raise SkelmaeError(
                f"parts must cover joints 0..{V - 1} exactly once; "
                f"part {p} = {list(members)} does not fit"
            )
        part_of[idx] = p
    if np.any(part_of < 0):
        raise SkelmaeError(
            f"parts must cover every joint; missing {np.flatnonzero(part_of < 0).tolist()}"
        )
    dev = _resolve_device([valid], generator, device)
    valid = _check_valid(valid, shape, dev)
    n_parts = len(parts)
    target = math.ceil(ratio * V - _EPS)
    part_rank = torch.argsort(
        torch.argsort(torch.rand((B, T, n_parts), generator=generator, device=dev), dim=-1), dim=-1
    )
    joint_rank = part_rank[..., torch.as_tensor(part_of, device=dev)]  # (B, T, V)
    steps = torch.arange(n_parts, device=dev).view(n_parts, 1)
    covered = (~valid).unsqueeze(2) | (joint_rank.unsqueeze(2) <= steps)  # (B, T, n_parts, V)
    count_after = covered.sum(dim=-1)
    count_before = torch.cat([(~valid).sum(dim=-1, keepdim=True), count_after[..., :-1]], dim=-1)
    n_masked_parts = (count_before < target).sum(dim=-1, keepdim=True)
    return ~valid | (joint_rank < n_masked_parts)
