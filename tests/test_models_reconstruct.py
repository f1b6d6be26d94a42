"""SkeletonMAE and MSAE: the formulas, validity handling, and learning on real fly windows."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from napari_skelmae import load_tracks
from napari_skelmae.errors import SkelmaeError
from napari_skelmae.masking import two_stage_mask
from napari_skelmae.models import ModelSpec, build_model, msae, skeletonmae
from napari_skelmae.models.blocks import sincos_1d
from napari_skelmae.models.fill import interpolate_in_time

from .conftest import data_path
from .shared_fixtures import one_thread  # noqa: F401

METHODS = ("skeletonmae", "msae")
#: the imputation setting of each method next to its default (docs/methods/*.md, Imputation)
VARIANTS = [
    ("skeletonmae", {}),
    ("skeletonmae", dict(masking="two_stage", fill="interpolate", gap_ratio=0.5)),
    ("msae", {}),
    ("msae", dict(fill="interpolate", gap_ratio=0.5)),
]
VARIANT_IDS = ["skeletonmae", "skeletonmae-impute", "msae", "msae-impute"]
T = 64
# tiny configurations: these tests check behaviour, not capacity
TINY = {
    "skeletonmae": dict(dim=16, gin_layers=2),
    "msae": dict(embed_dim=8, encoder=((8, 8, 4), (8, 16, 4)), decoder=((16, 8, 4),)),
}
SMALL = {
    "skeletonmae": dict(dim=32, gin_layers=2),
    "msae": dict(embed_dim=16, encoder=((16, 16, 8), (16, 16, 8)), decoder=((16, 16, 8),)),
}


@pytest.fixture(scope="module")
def fly_windows():
    """Real two-fly courtship tracks cut into 64-frame windows, centred on the thorax and
    scaled by the spread of the centred positions (so values are O(1))."""
    tracks = load_tracks(data_path("sleap_analysis_example", "predictions.slp"))
    pos = tracks.positions  # (frames, flies, 13, 2), NaN = missing
    centre = tracks.keypoint_names.index("thorax")
    ego = pos - pos[:, :, centre : centre + 1]
    ego = ego / np.nanstd(ego)
    valid = np.isfinite(ego).all(-1)
    ego = np.nan_to_num(ego, nan=0.0)
    starts = range(0, ego.shape[0] - T + 1, T)
    x = np.stack([ego[s : s + T, i] for i in range(ego.shape[1]) for s in starts])
    v = np.stack([valid[s : s + T, i] for i in range(ego.shape[1]) for s in starts])
    edges = tuple((int(a), int(b)) for a, b in np.asarray(tracks.edges))
    spec = ModelSpec(len(tracks.keypoint_names), 2, T, edges)
    return torch.from_numpy(x.astype(np.float32)), torch.from_numpy(v), spec


def batch_with_gaps(fly_windows, n: int = 4):
    """Real windows that contain untracked keypoints (the recording has ~2 % NaN)."""
    x, v, spec = fly_windows
    order = torch.argsort((~v).sum(dim=(1, 2)), descending=True)[:n]
    xb, vb = x[order].clone(), v[order].clone()
    assert (~vb).any(), "expected the courtship recording to have missing keypoints"
    return xb, vb, spec


def build(method: str, spec: ModelSpec, sizes=TINY, seed: int = 0, **overrides):
    torch.manual_seed(seed)
    return build_model(method, spec, **{**sizes[method], **overrides})


# ---- shapes -------------------------------------------------------------------------------
SPECS = [
    ModelSpec(13, 2, T, ((1, 0), (1, 2), (0, 3))),  # partial skeleton
    ModelSpec(4, 2, T),  # DLC open-field mouse: 4 bodyparts, no skeleton
    ModelSpec(7, 3, T),  # 3D, no skeleton: chain fallback
]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("spec", SPECS, ids=["13x2-edges", "4x2-noedges", "7x3-noedges"])
def test_output_shapes(method, spec):
    model = build(method, spec)
    b, v, c = 3, spec.n_keypoints, spec.n_channels
    x = torch.randn(b, T, v, c)
    valid = torch.rand(b, T, v) > 0.1
    x = torch.where(valid.unsqueeze(-1), x, 0.0)
    p, d = model.temporal_patch, model.feature_dim
    assert model.reconstructs_coordinates
    assert model.encode(x, valid).shape == (b, T // p, v, d)
    assert model.frame_features(x, valid).shape == (b, T, d)
    assert model.window_features(x, valid).shape == (b, d)
    assert model.reconstruct(x, valid, ~valid).shape == (b, T, v, c)
    out = model.loss(x, valid, torch.Generator().manual_seed(0))
    assert out["loss"].ndim == 0 and torch.isfinite(out["loss"])


@pytest.mark.parametrize("method", METHODS)
def test_wrong_windows_are_refused(method):
    spec = ModelSpec(5, 2, T)
    model = build(method, spec)
    valid = torch.ones(2, T, 6, dtype=torch.bool)
    with pytest.raises(SkelmaeError, match="keypoints"):
        model.encode(torch.zeros(2, T, 6, 2), valid)
    with pytest.raises(SkelmaeError, match="multiple"):
        model.encode(torch.zeros(2, T - 1, 5, 2), torch.ones(2, T - 1, 5, dtype=torch.bool))
    with pytest.raises(SkelmaeError, match="masked"):
        model.reconstruct(torch.zeros(2, T, 5, 2), valid[..., :5], valid[:1, :, :5])


# ---- validity -----------------------------------------------------------------------------
@pytest.mark.parametrize("method,options", VARIANTS, ids=VARIANT_IDS)
def test_untracked_entries_never_contribute(fly_windows, method, options):
    """Whatever sits in x where valid is False (here NaN, then huge values) changes neither the
    loss, nor its gradients, nor the features, nor the reconstruction."""
    xb, vb, spec = batch_with_gaps(fly_windows)
    model = build(method, spec, **options)
    junk_nan = torch.where(vb.unsqueeze(-1), xb, torch.nan)
    junk_big = torch.where(vb.unsqueeze(-1), xb, 1e4)

    def run(x):
        model.zero_grad()
        out = model.loss(x, vb, torch.Generator().manual_seed(3))
        out["loss"].backward()
        grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
        return out["loss"].detach(), grads

    base_loss, base_grads = run(xb)
    assert torch.isfinite(base_loss)
    for junk in (junk_nan, junk_big):
        loss, grads = run(junk)
        assert torch.equal(loss, base_loss)
        assert all(torch.equal(a, b) for a, b in zip(grads, base_grads))
    model.eval()
    hidden = ~vb | (torch.rand(vb.shape, generator=torch.Generator().manual_seed(1)) < 0.2)
    with torch.no_grad():
        for junk in (junk_nan, junk_big):
            assert torch.equal(model.encode(junk, vb), model.encode(xb, vb))
            assert torch.equal(
                model.reconstruct(junk, vb, hidden), model.reconstruct(xb, vb, hidden)
            )


def test_masked_entries_are_not_seen_by_reconstruct(fly_windows):
    """Imputation must not peek: changing the masked (still valid) entries changes nothing."""
    xb, vb, spec = batch_with_gaps(fly_windows)
    g = torch.Generator().manual_seed(2)
    hidden = torch.rand(vb.shape, generator=g) < 0.3
    changed = torch.where(hidden.unsqueeze(-1), xb + 5.0, xb)
    for method, options in VARIANTS:
        model = build(method, spec, **options).eval()
        with torch.no_grad():
            assert torch.equal(
                model.reconstruct(changed, vb, hidden), model.reconstruct(xb, vb, hidden)
            )


def test_interpolate_in_time_matches_numpy():
    """Hidden entries: np.interp over the seen frames of the same keypoint (constant past the
    ends); a keypoint seen nowhere in its window: 0; seen entries: unchanged; what sits at
    hidden entries (NaN here) never reaches the result."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 20, 4, 2, generator=g)
    seen = torch.rand(3, 20, 4, generator=g) < 0.4
    seen[0, :, 1] = False  # seen nowhere
    seen[1, :, 2] = False
    seen[1, 7, 2] = True  # seen once: constant
    out = interpolate_in_time(torch.where(seen.unsqueeze(-1), x, torch.nan), seen)
    t = np.arange(20)
    for b in range(3):
        for k in range(4):
            s = seen[b, :, k].numpy()
            for c in range(2):
                expected = (np.interp(t, t[s], x[b, s, k, c].numpy()) if s.any()
                            else np.zeros(20))
                np.testing.assert_allclose(out[b, :, k, c].numpy(), expected, atol=1e-6)
    assert torch.equal(out[seen], x[seen])


@pytest.mark.parametrize("method", METHODS)
def test_interpolate_fill_predicts_a_correction_to_interpolation(fly_windows, method):
    """With fill="interpolate" the output is the interpolation plus the decoder's correction:
    with the output layer zeroed, reconstruct returns the interpolation of the seen entries."""
    xb, vb, spec = batch_with_gaps(fly_windows)
    options = {"msae": dict(fill="interpolate"),
               "skeletonmae": dict(fill="interpolate", masking="two_stage")}[method]
    model = build(method, spec, **options).eval()
    head = model.head if method == "msae" else model.decoder.head
    with torch.no_grad():
        head.weight.zero_()
        head.bias.zero_()
        hidden = torch.rand(vb.shape, generator=torch.Generator().manual_seed(4)) < 0.6
        out = model.reconstruct(xb, vb, hidden)
    expected = interpolate_in_time(xb, vb & ~hidden)
    torch.testing.assert_close(out, expected)


def test_two_stage_masking_keeps_partly_seen_nodes(fly_windows):
    """SkeletonMAE with masking="two_stage": a node with some frames seen is an input (its
    hidden frames flagged), only a node with none takes [MASK]; the loss counts exactly the
    hidden tracked entries."""
    xb, vb, spec = batch_with_gaps(fly_windows)
    model = build("skeletonmae", spec, masking="two_stage")
    p = model.temporal_patch
    masked = torch.zeros_like(vb)
    masked[:, 1::p] = True  # one frame of every node hidden: every node is still partly seen
    seen = vb & ~masked
    feats = model.node_features(xb, seen)
    flags = feats[..., -p:]
    assert torch.equal(flags.bool(), seen.reshape(seen.shape[0], -1, p, seen.shape[2])
                       .permute(0, 1, 3, 2))
    model.eval()
    with torch.no_grad():
        a = model.reconstruct(xb, vb, masked)
        b = model.reconstruct(xb, vb, torch.ones_like(masked))  # everything hidden
    assert not torch.equal(a, b)  # the seen frames of partly hidden nodes reached the network


# ---- SkeletonMAE formulas -----------------------------------------------------------------
def test_scaled_cosine_error_by_hand():
    target = torch.tensor([[3.0, 4.0], [1.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    pred = torch.tensor([[4.0, 3.0], [0.0, 2.0], [1.0, 1.0], [1.0, -5.0]])
    weight = torch.ones(4, 2)
    weight[3, 1] = 0.0  # the 4th node's second value is untracked: compare on the first only
    selected = torch.tensor([True, True, True, True])
    # node 0: cos = 24/25; node 1: cos = 0; node 2: zero target, no direction, left out;
    # node 3: (1) vs (1) -> cos = 1
    for gamma in (1.0, 2.0, 3.0):
        expected = ((1 - 24 / 25) ** gamma + 1.0 ** gamma + 0.0) / 3
        got = skeletonmae.scaled_cosine_error(pred, target, weight, selected, gamma)
        assert got.item() == pytest.approx(expected, rel=1e-6)
    only_first = torch.tensor([True, False, False, False])
    got = skeletonmae.scaled_cosine_error(pred, target, weight, only_first, 3.0)
    assert got.item() == pytest.approx((1 / 25) ** 3, rel=1e-5)
    # perfect reconstruction (at any positive scale) costs nothing
    perfect = skeletonmae.scaled_cosine_error(2.5 * target, target, weight, selected, 2.0)
    assert perfect.item() == pytest.approx(0.0, abs=1e-12)


def test_gin_aggregates_exactly_the_neighbours():
    edges = skeletonmae.skeleton_graph(((0, 1), (2, 1), (1, 1)), 4)  # path 0-1-2, node 3 alone
    assert edges == [(0, 1), (1, 2)]
    gin = skeletonmae.GINConv(skeletonmae.adjacency_matrix(edges, 4), 2, 2)
    with torch.no_grad():
        gin.eps.fill_(0.5)
    h = torch.tensor([[1.0, 0.0], [10.0, 1.0], [100.0, 2.0], [1000.0, 3.0]])
    expected = torch.tensor([
        [1.5 * 1 + 10, 1.5 * 0 + 1],
        [1.5 * 10 + 1 + 100, 1.5 * 1 + 0 + 2],
        [1.5 * 100 + 10, 1.5 * 2 + 1],
        [1.5 * 1000, 1.5 * 3],
    ])
    assert torch.equal(gin.aggregate(h), expected)
    batched = h.expand(2, 3, 4, 2)  # (B, TP, V, D): every graph aggregated on its own
    assert torch.equal(gin.aggregate(batched), expected.expand(2, 3, 4, 2))


def test_fallback_graph_without_skeleton():
    assert skeletonmae.skeleton_graph((), 4) == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    assert skeletonmae.skeleton_graph((), 8) == [(i, i + 1) for i in range(7)]
    with pytest.raises(SkelmaeError, match="outside"):
        skeletonmae.skeleton_graph(((0, 9),), 4)


# ---- MSAE / SSTFormer formulas --------------------------------------------------------------
def test_sstformer_attention_by_hand():
    c_in, heads, d, tp, pv = 2, 2, 1, 2, 3
    block = msae.SSTFormerBlock(c_in, 4, d, heads, pv)
    assert torch.equal(block.alpha.data, torch.ones(heads))
    assert torch.allclose(block.attn_bias.data, torch.full((heads, pv, pv), 1 / pv))
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        block.qk.weight.copy_(torch.randn(block.qk.weight.shape, generator=g))
        block.qk.bias.copy_(torch.randn(block.qk.bias.shape, generator=g))
        block.alpha.copy_(torch.tensor([0.5, -2.0]))
        block.attn_bias.copy_(torch.randn(heads, pv, pv, generator=g))
    x = torch.randn(1, c_in, tp, pv, generator=g)
    pe = sincos_1d(pv, c_in)  # (position, channel)
    w = block.qk.weight.detach()[:, :, 0, 0]
    bias = block.qk.bias.detach()
    alpha, a0 = block.alpha.detach(), block.attn_bias.detach()
    expected = torch.zeros(heads, pv, pv)
    for h in range(heads):
        for u in range(pv):
            for v in range(pv):
                s = 0.0
                for t in range(tp):
                    xs_u = x[0, :, t, u] + pe[u]
                    xs_v = x[0, :, t, v] + pe[v]
                    for c in range(d):
                        q = w[h * d + c] @ xs_u + bias[h * d + c]  # queries: first H*d channels
                        k = w[heads * d + h * d + c] @ xs_v + bias[heads * d + h * d + c]
                        s += q * k
                expected[h, u, v] = math.tanh(s / (d * tp)) * alpha[h] + a0[h, u, v]
    with torch.no_grad():
        got = block.attention(x)[0]
    assert torch.allclose(got, expected, atol=1e-5)


def test_sstformer_mix_by_hand_and_channels_last():
    """Y_h[c, t', v] = sum_u X[c, t', u] A_h[u, v] with channel h*C + c, written channels-last."""
    n, c, heads, tp, pv = 2, 2, 3, 2, 4
    block = msae.SSTFormerBlock(c, 4, 1, heads, pv)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, c, tp, pv, generator=g)
    a = torch.randn(n, heads, pv, pv, generator=g)
    expected = torch.zeros(n, heads * c, tp, pv)
    for i in range(n):
        for h in range(heads):
            for ch in range(c):
                for t in range(tp):
                    for v in range(pv):
                        expected[i, h * c + ch, t, v] = sum(
                            x[i, ch, t, u] * a[i, h, u, v] for u in range(pv))
    for layout in (torch.contiguous_format, torch.channels_last):
        got = block.mix(x.contiguous(memory_format=layout), a)
        assert torch.allclose(got, expected, atol=1e-5)
        assert got.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("dilation", [1, 2, 4])
def test_skeletonmae_temporal_convolution_equals_its_conv1d(dilation):
    """The shifted-copies matmul gives the Conv1d's numbers (same weights, zero padding)."""
    mixing = skeletonmae.TemporalMixing(8, 3, dilation)
    h = torch.randn(3, 5, 4, 8, generator=torch.Generator().manual_seed(dilation))
    b, tp, v, d = h.shape
    with torch.no_grad():
        expected = mixing.conv(h.permute(0, 2, 3, 1).reshape(b * v, d, tp))
        expected = expected.reshape(b, v, d, tp).permute(0, 3, 1, 2)
        assert torch.allclose(mixing.convolve(h), expected, atol=1e-5)


def test_msae_slicing_round_trip_and_layout():
    model = build("msae", ModelSpec(3, 2, 8), patch=4)
    x = torch.arange(1 * 8 * 3 * 2, dtype=torch.float32).reshape(1, 8, 3, 2)
    s = model.to_slices(x)
    assert s.shape == (1, 2, 2, 12)
    # row 0 holds frames 0-3, frame-major: entry u = frame * V + joint
    assert torch.equal(s[0, :, 0, 1 * 3 + 2], x[0, 1, 2])
    assert torch.equal(s[0, :, 1, 0], x[0, 4, 0])
    assert torch.equal(model.from_slices(s), x)


# ---- learning on real windows ---------------------------------------------------------------
def eval_mask(model, valid, generator):
    """A fresh mask of the kind the model was trained with, at frame resolution."""
    b, t, v = valid.shape
    if model.name == "msae":
        m, _ = two_stage_mask(b, t, v, 0.4, 0.5, valid=valid, generator=generator)
    else:
        m = model.mask(valid, generator).repeat_interleave(model.temporal_patch, dim=1)
    return m


@pytest.mark.parametrize("method,steps", [("skeletonmae", 120), ("msae", 120)])
def test_training_on_real_windows_learns_to_fill_in(fly_windows, method, steps):
    x, v, spec = fly_windows
    pick = torch.arange(0, x.shape[0], x.shape[0] // 12)[:12]
    xb, vb = x[pick], v[pick]
    model = build(method, spec, sizes=SMALL)

    def fixed_loss():
        with torch.no_grad():
            return model.loss(xb, vb, torch.Generator().manual_seed(99))["loss"].item()

    before = fixed_loss()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, [int(steps * 0.75)], gamma=0.1)
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        loss = model.loss(xb, vb, g)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    after = fixed_loss()
    assert after < 0.5 * before

    model.eval()
    hidden = eval_mask(model, vb, torch.Generator().manual_seed(123))
    target = hidden & vb
    seen = vb & ~hidden
    with torch.no_grad():
        filled = model.reconstruct(xb, vb, hidden)

    def error(pred):
        return ((pred - xb) ** 2).sum(-1)[target].mean().item()

    per_joint_mean = (xb * seen.unsqueeze(-1)).sum(1, keepdim=True) / seen.sum(1).clamp_min(1)[
        :, None, :, None
    ]
    model_err = error(filled)
    assert model_err < error(torch.zeros_like(xb))
    assert model_err < error(per_joint_mean.expand_as(xb))


# ---- presets, configs, precision, determinism -----------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_presets_build(method):
    cls = build_model(method, ModelSpec(13, 2, 120)).__class__
    assert {"paper", "default"} <= set(cls.presets)
    for preset in cls.presets:
        model = build_model(method, ModelSpec(13, 2, 120), preset=preset)
        assert model.feature_dim > 0


def test_paper_presets_follow_methods_md():
    paper = build_model("msae", ModelSpec(13, 2, 120), preset="paper")
    assert paper.config.patch == 6  # len_parts
    assert [b[:2] for b in paper.config.encoder][-1] == (256, 256)
    assert len(paper.encoder) == 8 and not paper.config.mask_token
    assert paper.config.visible_weight == 1.0  # the whole-sequence MSE
    with pytest.raises(SkelmaeError, match="patch=6 must divide the window length 64"):
        build_model("msae", ModelSpec(13, 2, 64), preset="paper")
    smae = build_model("skeletonmae", ModelSpec(13, 2, 64), preset="paper")
    assert smae.temporal_patch == 1 and smae.config.gamma == 3.0 and smae.config.remask


@pytest.mark.parametrize("method", METHODS)
def test_bad_options_raise_skelmae_error(method):
    spec = ModelSpec(13, 2, T)
    with pytest.raises(SkelmaeError, match="unknown"):
        build_model(method, spec, not_an_option=1)
    with pytest.raises(SkelmaeError):
        build_model(method, spec, patch=5)
    bad = {"skeletonmae": dict(mask_ratio=1.5), "msae": dict(encoder=((16, 16, 8),))}
    with pytest.raises(SkelmaeError):
        build_model(method, spec, **bad[method])


@pytest.mark.parametrize("method", METHODS)
def test_bf16_autocast_on_cpu(fly_windows, method):
    xb, vb, spec = batch_with_gaps(fly_windows)
    model = build(method, spec)
    full = model.loss(xb, vb, torch.Generator().manual_seed(4))["loss"]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        half = model.loss(xb, vb, torch.Generator().manual_seed(4))["loss"]
        feats = model.encode(xb, vb)
    half.backward()
    assert torch.isfinite(half) and torch.isfinite(feats).all()
    assert half.item() == pytest.approx(full.item(), rel=0.05)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize("method", METHODS)
def test_seeded_generator_makes_losses_reproducible(fly_windows, method):
    xb, vb, spec = batch_with_gaps(fly_windows)
    a, b = build(method, spec, seed=7), build(method, spec, seed=7)
    la = a.loss(xb, vb, torch.Generator().manual_seed(5))["loss"]
    lb = b.loss(xb, vb, torch.Generator().manual_seed(5))["loss"]
    other = a.loss(xb, vb, torch.Generator().manual_seed(6))["loss"]
    assert torch.equal(la, lb)
    assert not torch.equal(la, other)
