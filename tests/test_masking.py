"""Masking strategies: exact counts, missing keypoints, and the statistics of each draw.

Expected values come from outside the code under test: the numbers in METHODS.md, hand
counts, scipy's Wallenius / hypergeometric distributions (a Gumbel-top-k draw is a draw
without replacement proportional to the weights, which is exactly Wallenius' urn), and a
plain one-at-a-time weighted sampler written here.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from napari_skelmae import SkelmaeError, load_tracks
from napari_skelmae.masking import (
    body_parts,
    gap_mask,
    gather_tokens,
    graph_part_mask,
    masked_index,
    motion_aware_mask,
    random_mask,
    token_motion,
    tube_mask,
    two_stage_mask,
    visible_index,
)

from .conftest import data_path

FLY = ("sleap_analysis_example", "predictions.slp")
ZEBRAFISH = ("zebrafish_headrestrained_dlc", "example_headrestrained_DLC_250fps.csv.gz")


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def random_valid(shape, p_missing, seed) -> torch.Tensor:
    return torch.rand(shape, generator=gen(seed)) >= p_missing


@pytest.fixture(scope="module")
def fly_tracks():
    return load_tracks(data_path(*FLY))


# ------------------------------------------------------------------------------ counts


@pytest.mark.parametrize(
    ("shape", "ratio", "n_masked"),
    [
        ((3, 30, 25), 0.9, 675),  # MAMP: 75 of 750 tokens visible
        ((3, 1, 13), 0.5, 6),  # tie 6.5 goes to fewer masked, as MSAE's 6 of 13
        ((3, 1, 25), 0.9, 22),  # 22.5 -> 22
        ((3, 10, 10), 0.29, 29),  # 0.29 * 100 is 28.999... in floating point
        ((3, 4, 5), 0.0, 0),
    ],
)
def test_random_and_motion_masks_have_exact_counts(shape, ratio, n_masked):
    m = random_mask(shape, ratio, gen(0))
    assert m.shape == shape and m.dtype == torch.bool
    assert m.sum(dim=(1, 2)).tolist() == [n_masked] * shape[0]
    motion = torch.rand(shape, generator=gen(1))
    m = motion_aware_mask(motion, ratio, 0.8, generator=gen(2))
    assert m.sum(dim=(1, 2)).tolist() == [n_masked] * shape[0]


def test_ratios_that_leave_nothing_visible_are_rejected():
    with pytest.raises(SkelmaeError, match="ratio"):
        random_mask((2, 3, 4), 1.0)
    with pytest.raises(SkelmaeError, match="no visible token"):
        random_mask((2, 1, 13), 0.99)
    with pytest.raises(SkelmaeError, match="valid has shape"):
        motion_aware_mask(
            torch.rand(2, 3, 4), 0.5, 0.8, valid=torch.ones(2, 3, 5, dtype=torch.bool)
        )
    with pytest.raises(SkelmaeError, match="different devices"):
        random_mask(torch.ones(2, 3, 4, dtype=torch.bool), 0.5, device="meta")


def test_index_helpers_gather_in_order_and_refuse_ragged_masks():
    m = random_mask((4, 6, 5), 0.6, gen(3))
    vis, hid = visible_index(m), masked_index(m)
    assert vis.shape == (4, 12) and hid.shape == (4, 18)
    flat = m.flatten(1)
    assert not flat.gather(1, vis).any() and flat.gather(1, hid).all()
    assert torch.all(vis[:, 1:] > vis[:, :-1])  # ascending: time order is kept
    tokens = torch.arange(4 * 30 * 2).view(4, 30, 2)
    picked = gather_tokens(tokens, vis)
    assert torch.equal(picked[:, :, 1] - picked[:, :, 0], torch.ones_like(vis))
    assert torch.equal(picked[:, :, 0] // 2 - 30 * torch.arange(4).view(4, 1), vis)
    ragged = m.clone()
    ragged[0, 0, 0] = ~ragged[0, 0, 0]
    with pytest.raises(SkelmaeError, match="differs across the batch"):
        visible_index(ragged)


# ------------------------------------------------------------------------------ missing keypoints


def test_invalid_tokens_are_masked_first_by_every_strategy():
    B, TP, V = 8, 12, 13
    valid = random_valid((B, TP, V), 0.1, 4)
    motion = torch.rand((B, TP, V), generator=gen(5))
    masks = {
        "random": random_mask(valid, 0.7, gen(6)),
        "motion": motion_aware_mask(motion, 0.7, 0.8, valid, gen(6)),
        "tube": tube_mask(B, TP, V, 0.9, 4, motion, 0.8, valid, gen(6)),
        "two_stage": two_stage_mask(B, TP, V, 0.4, 0.5, valid, gen(6))[0],
        "graph": graph_part_mask(
            B, TP, V, body_parts([(1, j) for j in range(V) if j != 1], V), 0.5, valid, gen(6)
        ),
    }
    for name, m in masks.items():
        assert m[~valid].all(), name
    expected_masked = {
        "random": 109,
        "motion": 109,
        "tube": TP * (V - 1),
        "two_stage": TP * V - 7 * 7,
    }
    for name, n in expected_masked.items():
        assert masks[name].sum(dim=(1, 2)).tolist() == [n] * B, name


def test_a_sample_short_of_valid_tokens_keeps_its_budget_with_padding():
    B, TP, V = 3, 4, 5  # 20 tokens, ratio 0.5 -> 10 visible
    valid = torch.ones(B, TP, V, dtype=torch.bool)
    valid[1] = False
    valid[1, 0, :4] = True  # only 4 valid tokens in sample 1
    for m in (
        random_mask(valid, 0.5, gen(7)),
        motion_aware_mask(torch.rand(B, TP, V), 0.5, 0.8, valid, gen(7)),
    ):
        assert m.sum(dim=(1, 2)).tolist() == [10, 10, 10]
        assert not m[1][valid[1]].any()  # every valid token of the short sample is visible
        vis = visible_index(m)
        assert gather_tokens(valid.flatten(1), vis).sum(dim=1).tolist() == [10, 4, 10]


def test_motion_of_invalid_tokens_does_not_change_the_draw():
    motion = torch.rand((5, 10, 13), generator=gen(8))
    valid = random_valid(motion.shape, 0.2, 9)
    outlier = motion.clone()
    outlier[~valid] = 1e6
    a = motion_aware_mask(motion, 0.9, 0.8, valid, gen(10))
    b = motion_aware_mask(outlier, 0.9, 0.8, valid, gen(10))
    assert torch.equal(a, b)
    # if the outlier entered max(I), every valid token would look still and the draw would change
    valid_all = torch.ones_like(valid)
    c = motion_aware_mask(outlier, 0.9, 0.8, valid_all, gen(10))
    assert not torch.equal(c, motion_aware_mask(motion, 0.9, 0.8, valid_all, gen(10)))


def test_tokens_of_unknown_motion_get_no_bias():
    """Known tokens all move alike and 10 of 40 are NaN (e.g. right after a gap): every token
    then has the same Ĩ, so the NaN ones are masked like any other (hypergeometric)."""
    B = 4000
    motion = torch.ones(B, 4, 10)
    motion[:, 0] = torch.nan
    m = motion_aware_mask(motion, 0.5, 0.5, generator=gen(29))
    nan_masked = m[:, 0].sum(dim=1).double()
    hyper = stats.hypergeom(40, 10, 20)
    assert abs(nan_masked.mean().item() - hyper.mean()) < 4.5 * math.sqrt(hyper.var() / B)


# ------------------------------------------------------------------- random / MAMP statistics


def test_random_mask_is_uniform_over_positions():
    B, TP, V, ratio = 5000, 4, 10, 0.75
    N, p = TP * V, 0.75
    counts = random_mask((B, TP, V), ratio, gen(11)).flatten(1).sum(dim=0).double().numpy()
    # with the total fixed, per-position counts have variance B·p(1-p) and N-1 free directions
    chi2 = ((counts - B * p) ** 2).sum() / (B * p * (1 - p) * N / (N - 1))
    assert stats.chi2.sf(chi2, N - 1) > 1e-3
    # and the draws are independent across samples
    assert (
        len({tuple(r) for r in random_mask((50, TP, V), ratio, gen(12)).flatten(1).tolist()}) == 50
    )


def _high_motion_setup(tau, seed, B=4000):
    TP, V = 4, 10
    is_high = torch.zeros(TP * V, dtype=torch.bool)
    is_high[torch.randperm(TP * V, generator=gen(99))[: TP * V // 2]] = True
    motion = is_high.double().view(1, TP, V).expand(B, TP, V).contiguous()
    m = motion_aware_mask(motion, 0.5, tau, generator=gen(seed))
    return m.flatten(1)[:, is_high].sum(dim=1).double(), TP * V


@pytest.mark.parametrize("tau", [2.0, 1.0, 0.5])
def test_motion_aware_bias_matches_wallenius(tau):
    """Ĩ is 1/tau on the high half and 0 on the low half, so each masked draw favours a high
    token by odds exp(1/tau): the number of high tokens among the 20 masked is Wallenius."""
    high_masked, N = _high_motion_setup(tau, 13)
    ref = stats.nchypergeom_wallenius(N, N // 2, N // 2, math.exp(1 / tau))
    se = math.sqrt(ref.var() / len(high_masked))
    assert abs(high_masked.mean().item() - ref.mean()) < 4.5 * se
    assert abs(high_masked.var().item() / ref.var() - 1) < 0.15


def test_motion_bias_vanishes_without_tau_and_grows_as_tau_falls():
    N = 40
    hyper = stats.hypergeom(N, N // 2, N // 2)
    for tau in (0.0, -1.0):
        high_masked, _ = _high_motion_setup(tau, 14)
        assert abs(high_masked.mean().item() - hyper.mean()) < 4.5 * math.sqrt(
            hyper.var() / len(high_masked)
        )
    means = [_high_motion_setup(tau, 15)[0].mean().item() for tau in (4.0, 1.0, 0.25)]
    assert hyper.mean() + 0.3 < means[0] < means[1] - 0.5 < means[2] - 1.0


def _reference_masked_draws(
    intensity: np.ndarray, n_masked: int, reps: int, seed: int
) -> np.ndarray:
    """(reps, tokens) bool: n_masked tokens drawn one at a time, ∝ exp(Ĩ) among those left."""
    rng = np.random.default_rng(seed)
    weights = np.tile(np.exp(intensity), (reps, 1))
    taken = np.zeros_like(weights, dtype=bool)
    rows = np.arange(reps)
    for _ in range(n_masked):
        cum = np.cumsum(np.where(taken, 0.0, weights), axis=1)
        pick = (cum < rng.random((reps, 1)) * cum[:, -1:]).sum(axis=1)
        taken[rows, pick] = True
    return taken


def test_real_fly_motion_masks_fast_tokens_more_often(fly_tracks):
    """One fly, 120 frames in 4-frame patches (30 x 13 tokens), MAMP's 0.9 / 0.8."""
    xy = torch.as_tensor(fly_tracks.positions[:, 0], dtype=torch.float64)  # (frames, 13, 2)
    missing = torch.isnan(xy).any(dim=-1).view(-1, 4, 13).any(dim=1)  # per 4-frame patch
    n_bad = missing.unfold(0, 30, 1).sum(dim=(1, 2))
    first = int(torch.argmin(n_bad))  # the cleanest 120-frame window, first of equals
    window = xy[4 * first : 4 * first + 120]
    patches = window.view(30, 4, 13, 2).permute(0, 2, 1, 3).reshape(1, 30, 13, 8)
    valid = ~missing[first : first + 30].unsqueeze(0)
    motion = token_motion(patches)
    assert motion.shape == (1, 30, 13) and torch.isfinite(motion[valid]).all()

    reps, tau = 1200, 0.8
    m = motion_aware_mask(
        motion.expand(reps, -1, -1), 0.9, tau, valid.expand(reps, -1, -1), gen(16)
    )
    ok = valid.flatten().numpy()
    assert m.flatten(1)[:, ~ok].all()
    got = m.flatten(1)[:, ok].double().numpy()
    speed = motion.flatten().numpy()[ok]
    intensity = speed / (speed.max() * tau + 1e-10)  # METHODS.md §4 step 3, over valid tokens
    n_masked = 351 - int((~ok).sum())  # invalid tokens use up part of the 351 masked slots
    ref = _reference_masked_draws(intensity, n_masked, reps, seed=17)

    deciles = np.array_split(np.argsort(speed), 10)
    rates = []
    for group in deciles:
        per_rep_got, per_rep_ref = got[:, group].mean(axis=1), ref[:, group].mean(axis=1)
        se = math.sqrt((per_rep_got.var() + per_rep_ref.var()) / reps)
        assert abs(per_rep_got.mean() - per_rep_ref.mean()) < 5 * se
        rates.append(per_rep_got.mean())
    assert rates[-1] > rates[0] + 0.1  # MAMP's soft bias: ~0.98 vs ~0.84 here


def test_token_motion_of_known_trajectories():
    t = torch.arange(12, dtype=torch.float64)
    xy = torch.stack([t, 2 * t], dim=-1).view(1, 3, 4, 1, 2).expand(1, 3, 4, 2, 2)  # 2 joints
    patches = xy.permute(0, 1, 3, 2, 4).reshape(1, 3, 2, 8)
    # patch t+1 is patch t shifted by 4 frames: |dx| = 4, |dy| = 8, mean 6; I[0] copies I[1]
    assert torch.allclose(token_motion(patches), torch.full((1, 3, 2), 6.0, dtype=torch.float64))
    holes = patches.clone()
    holes[0, 1, 0, :2] = torch.nan  # one frame of joint 0 missing in patch 1
    got = token_motion(holes)
    assert torch.allclose(
        got, torch.full((1, 3, 2), 6.0, dtype=torch.float64)
    )  # mean of the pairs left
    holes[0, 1, 1] = torch.nan
    assert torch.isnan(token_motion(holes)[0, 1:, 1]).all()
    assert torch.equal(token_motion(patches[:, :1]), torch.zeros(1, 1, 2, dtype=torch.float64))


# ------------------------------------------------------------------------------ tube masking


def _tubes(TP, tube_len):
    return [range(s, min(s + tube_len, TP)) for s in range(0, TP, tube_len)]


def test_tube_mask_keeps_the_same_joints_through_each_tube():
    B, TP, V = 6, 13, 25  # tubes of 5, 5 and a last one of 3 patches
    m = tube_mask(B, TP, V, 0.9, 5, generator=gen(18))
    tubes = _tubes(TP, 5)
    for tube in tubes:
        block = m[:, list(tube)]
        assert torch.equal(block, block[:, :1].expand_as(block))
        assert (~block[:, 0]).sum(dim=1).tolist() == [2] * B  # int(25 · 0.1) = 2 joints kept
    assert any(not torch.equal(m[:, 0], m[:, t[0]]) for t in tubes[1:])
    # Skeleton2vec's dev config: 30 patches, 25 joints -> 60 visible tokens
    assert (~tube_mask(2, 30, 25, generator=gen(19))).sum(dim=(1, 2)).tolist() == [60, 60]
    assert (~tube_mask(2, 5, 20, 0.9, 5, generator=gen(19))).sum(dim=(1, 2)).tolist() == [
        10,
        10,
    ]  # 2 of 20


def test_tube_mask_keeps_fully_tracked_joints_first():
    B, TP, V = 50, 10, 6  # ratio 0.6 keeps floor(6 · 0.4) = 2 joints per tube of 5 patches
    valid = torch.ones(B, TP, V, dtype=torch.bool)
    valid[:, 0, [0, 1, 3]] = False
    valid[:, 1:3, 2] = False  # tube 0: only joints 4 and 5 are tracked throughout
    valid[:, 5:, 1:5] = False
    valid[:, 6, 0] = False  # tube 1: joint 5 complete, joint 0 misses one patch, 1-4 all five
    m = tube_mask(B, TP, V, 0.6, 5, valid=valid, generator=gen(20))
    assert torch.equal(~m[:, :5], torch.tensor([False] * 4 + [True] * 2).expand(B, 5, V))
    assert torch.equal(~m[:, 5:], torch.tensor([True] + [False] * 4 + [True]).expand(B, 5, V))
    padding = ~m & ~valid  # the one unavoidable unmasked invalid token: joint 0 at patch 6
    assert padding.sum(dim=(1, 2)).eq(1).all() and padding[:, 6, 0].all()


@pytest.mark.parametrize("tau", [1.0, 0.5])
def test_motion_aware_tubes_mask_the_moving_joints(tau):
    """Tube 0: joints 0-4 move (mean over the tube 1.0, varying inside it); tube 1: joints 5-9.
    7 of 10 joints are masked per tube; the moving ones are drawn with odds exp(1/tau)."""
    B, TP, V = 4000, 10, 10
    motion = torch.zeros(B, TP, V, dtype=torch.float64)
    motion[:, :5, :5] = torch.tensor([2.0, 0.0, 2.0, 0.0, 1.0], dtype=torch.float64).view(1, 5, 1)
    motion[:, 5:, 5:] = 1.0
    m = tube_mask(B, TP, V, 0.7, 5, motion, tau, generator=gen(21))
    ref = stats.nchypergeom_wallenius(10, 5, 7, math.exp(1 / tau))
    se = math.sqrt(ref.var() / B)
    for first, moving in ((0, slice(0, 5)), (5, slice(5, 10))):
        high_masked = m[:, first, moving].sum(dim=1).double()
        assert abs(high_masked.mean().item() - ref.mean()) < 4.5 * se
    uniform = tube_mask(B, TP, V, 0.7, 5, generator=gen(22))[:, 0, :5].sum(dim=1).double()
    hyper = stats.hypergeom(10, 5, 7)
    assert abs(uniform.mean().item() - hyper.mean()) < 4.5 * math.sqrt(hyper.var() / B)


# ------------------------------------------------------------------------------ MSAE two-stage


def test_gap_mask_hides_one_run_per_keypoint_at_the_asked_fraction():
    """Occlusion-like gaps: per (sample, keypoint) at most one run of consecutive frames, no
    longer than max_len; about `fraction` of all entries hidden; reproducible from the
    generator; lengths spread over the whole range (not only short gaps)."""
    g = torch.Generator().manual_seed(0)
    masked = gap_mask(400, 64, 13, fraction=0.25, max_len=32, generator=g)
    assert masked.shape == (400, 64, 13) and masked.dtype == torch.bool
    m = masked.numpy().transpose(0, 2, 1).reshape(-1, 64).astype(int)  # (B*V, T)
    starts = (np.diff(np.pad(m, ((0, 0), (1, 0))), axis=1) == 1).sum(axis=1)
    assert starts.max() == 1  # one run at most
    lengths = m.sum(axis=1)[starts == 1]
    assert lengths.max() <= 32 and lengths.min() >= 1
    assert (lengths > 24).mean() > 0.15 and (lengths <= 8).mean() > 0.15
    assert abs(masked.float().mean().item() - 0.25) < 0.02
    again = gap_mask(400, 64, 13, fraction=0.25, max_len=32,
                     generator=torch.Generator().manual_seed(0))
    assert torch.equal(masked, again)
    with pytest.raises(SkelmaeError, match="max_len"):
        gap_mask(2, 64, 13, max_len=65)


def test_two_stage_mask_matches_msae_counts():
    B, T, V = 40, 120, 13
    m, frames = two_stage_mask(B, T, V, generator=gen(23))
    assert frames.shape == (B, T) and frames.sum(dim=1).tolist() == [48] * B
    assert m[frames].all()
    kept = m[~frames]  # (B·72, 13)
    assert kept.sum(dim=1).eq(6).all()
    grid = visible_index(m).view(B, 72, 7)
    assert (grid // V == grid[..., :1] // V).all()  # visible tokens form a frames x joints grid
    distinct = {tuple(row) for row in m[0][~frames[0]].tolist()}
    assert len(distinct) >= 65  # 72 frames; two equal draws of 6 of 13 joints have odds 1/1716


def test_two_stage_frames_are_uniform_and_short_frames_go_first():
    B, T, V = 3000, 20, 13
    _, frames = two_stage_mask(B, T, V, generator=gen(24))
    rate = frames.double().mean(dim=0)
    assert (rate - 0.4).abs().max() < 5 * math.sqrt(0.24 / B)
    valid = torch.ones(5, 10, V, dtype=torch.bool)
    valid[:, [1, 4, 6, 9], 3:] = False  # 3 tracked joints: cannot fill the 7 visible slots
    valid[:, 2, 0] = False
    m, frames = two_stage_mask(5, 10, V, valid=valid, generator=gen(25))
    assert frames[:, [1, 4, 6, 9]].all() and frames.sum(dim=1).eq(4).all()
    assert m[~valid].all()


# ------------------------------------------------------------------- body parts, SkeletonMAE


def _connected(part, edges):
    part = set(part)
    reached, frontier = {min(part)}, [min(part)]
    while frontier:
        n = frontier.pop()
        for a, b in edges:
            for x, y in ((a, b), (b, a)):
                if x == n and y in part and y not in reached:
                    reached.add(y)
                    frontier.append(y)
    return reached == part


def _check_partition(parts, edges, n):
    assert sorted(i for p in parts for i in p) == list(range(n))
    assert all(_connected(p, edges) for p in parts)


def test_body_parts_of_real_skeletons(fly_tracks):
    names = list(fly_tracks.keypoint_names)
    edges = fly_tracks.edges.tolist()
    parts = body_parts(fly_tracks.edges, len(names))
    _check_partition(parts, edges, len(names))
    named = {frozenset(names[i] for i in p) for p in parts}
    assert frozenset({"head", "eyeL", "eyeR"}) in named
    for limb in ("thorax", "abdomen", "wingL", "wingR", "forelegL4", "hindlegR4"):
        assert frozenset({limb}) in named
    assert body_parts(edges, len(names)) == parts  # deterministic

    fish = load_tracks(data_path(*ZEBRAFISH), fps=250)
    assert len(fish.edges) == 0
    chain = [(i, i + 1) for i in range(len(fish.keypoint_names) - 1)]
    fish_parts = body_parts(chain, len(fish.keypoint_names))
    _check_partition(fish_parts, chain, 13)
    assert [len(p) for p in fish_parts] == [3, 3, 3, 2, 2]
    assert body_parts([], 4) == [[0], [1], [2], [3]]  # DLC open-field mouse: no skeleton
    with pytest.raises(SkelmaeError, match="outside"):
        body_parts([(0, 4)], 4)


def test_graph_part_mask_masks_whole_parts_up_to_the_ratio(fly_tracks):
    V = len(fly_tracks.keypoint_names)
    parts = body_parts(fly_tracks.edges, V)
    B, T, ratio = 30, 20, 0.5
    target = 7  # ceil(0.5 · 13)
    m = graph_part_mask(B, T, V, parts, ratio, generator=gen(26))
    whole = torch.stack([m[..., p].all(dim=-1) for p in parts], dim=-1)
    none = torch.stack([~m[..., p].any(dim=-1) for p in parts], dim=-1)
    assert (whole | none).all()
    count = m.sum(dim=-1)
    assert (count >= target).all()
    largest = torch.stack([whole[..., i] * len(p) for i, p in enumerate(parts)], dim=-1).amax(
        dim=-1
    )
    assert (count - largest < target).all()  # no part more than needed
    assert 0 < whole.double().mean(dim=(0, 1)).min() and whole.double().mean(dim=(0, 1)).max() < 1

    valid = random_valid((B, T, V), 0.2, 27)
    mv = graph_part_mask(B, T, V, parts, ratio, valid, gen(26))
    assert mv[~valid].all() and (mv.sum(dim=-1) >= target).all()
    for p in parts:
        sel = mv[..., p] | ~valid[..., p]
        hit = (mv[..., p] & valid[..., p]).any(dim=-1)
        assert torch.equal(sel.all(dim=-1) | ~hit, torch.ones_like(hit))
    with pytest.raises(SkelmaeError, match="exactly once"):
        graph_part_mask(1, 1, 3, [[0, 1], [1, 2]], 0.5)


# ------------------------------------------------------------------------------ determinism


def test_every_strategy_is_reproducible_from_its_generator():
    B, TP, V = 4, 12, 13
    motion = torch.rand((B, TP, V), generator=gen(28))
    parts = body_parts([(1, j) for j in range(V) if j != 1], V)
    draws = {
        "random": lambda g: random_mask((B, TP, V), 0.8, g),
        "motion": lambda g: motion_aware_mask(motion, 0.8, 0.8, generator=g),
        "tube": lambda g: tube_mask(B, TP, V, 0.8, 4, motion, generator=g),
        "two_stage": lambda g: two_stage_mask(B, TP, V, generator=g)[0],
        "graph": lambda g: graph_part_mask(B, TP, V, parts, 0.5, generator=g),
    }
    for name, draw in draws.items():
        assert torch.equal(draw(gen(5)), draw(gen(5))), name
        assert not torch.equal(draw(gen(5)), draw(gen(6))), name
