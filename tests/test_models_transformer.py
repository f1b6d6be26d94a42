"""MAMP and Skeleton2vec (models/mamp.py, models/skeleton2vec.py) and their shared blocks.

Tiny configurations on CPU; the learning checks use real fly windows from
sleap_analysis_example/predictions.slp."""

from __future__ import annotations

import math

import pytest
import torch

import napari_skelmae as sk
from napari_skelmae.errors import SkelmaeError
from napari_skelmae.models import ModelSpec, build_model, mamp, model_class
from napari_skelmae.models.blocks import patchify, sincos_1d, sincos_2d, unpatchify

from .conftest import data_path
from .shared_fixtures import one_thread  # noqa: F401

METHODS = ("mamp", "skeleton2vec")
SPEC = ModelSpec(n_keypoints=13, n_channels=2, n_frames=32)
TINY = dict(dim=32, depth=2, heads=4, decoder_dim=32, decoder_depth=1, decoder_heads=4)


def tiny(method: str, **overrides) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(method, SPEC, **{**TINY, **overrides})


@pytest.fixture(scope="module")
def fly_windows() -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 64, 13, 2) windows of both flies, centred on the thorax, in ~body-length units."""
    tracks = sk.load_tracks(data_path("sleap_analysis_example", "predictions.slp"))
    thorax = list(tracks.keypoint_names).index("thorax")
    pos = torch.from_numpy(tracks.positions)  # (frames, flies, 13, 2)
    ego = pos - pos[:, :, thorax : thorax + 1]
    valid = torch.isfinite(ego).all(-1)
    x = torch.where(valid.unsqueeze(-1), ego / 40.0, 0.0)  # head-thorax distance is ~40 px
    n = x.shape[0] // 64 * 64
    windows = x[:n].permute(1, 0, 2, 3).reshape(-1, 64, 13, 2)
    return windows, valid[:n].permute(1, 0, 2).reshape(-1, 64, 13)


@pytest.fixture(scope="module")
def batch(fly_windows) -> tuple[torch.Tensor, torch.Tensor]:
    """8 real windows cut to the tiny models' 32 frames, with some keypoints made missing."""
    x, valid = fly_windows
    x, valid = x[::10][:8, :32].clone(), valid[::10][:8, :32].clone()
    gaps = torch.rand(valid.shape, generator=torch.Generator().manual_seed(5)) < 0.1
    valid &= ~gaps
    valid[0, :, 3] = False  # one keypoint lost for a whole window
    return torch.where(valid.unsqueeze(-1), x, 0.0), valid


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---- blocks ----------------------------------------------------------------------------------
def test_patchify_groups_frames_of_one_keypoint_and_inverts():
    x = torch.arange(2 * 8 * 3 * 2, dtype=torch.float32).reshape(2, 8, 3, 2)
    tokens = patchify(x, 4)
    assert tokens.shape == (2, 2, 3, 8)
    # token (b=1, patch 1, keypoint 2) = frames 4..7 of keypoint 2, frame-major
    assert torch.equal(tokens[1, 1, 2], x[1, 4:8, 2].reshape(-1))
    assert torch.equal(unpatchify(tokens, 4, 2), x)
    with pytest.raises(SkelmaeError, match="multiple"):
        patchify(x, 3)


def test_sincos_embeddings_follow_the_formula():
    e = sincos_1d(10, 8)
    assert e.shape == (10, 8)
    # position p, frequency i: sin(p / 10000^(2i/8)) in the first half, cos in the second
    assert e[3, 1] == pytest.approx(math.sin(3 / 10000 ** (2 / 8)), abs=1e-6)
    assert e[3, 5] == pytest.approx(math.cos(3 / 10000 ** (2 / 8)), abs=1e-6)
    e2 = sincos_2d(5, 7, 16)
    assert e2.shape == (5, 7, 16)
    assert torch.equal(e2[2, 4, :8], sincos_1d(5, 8)[2])
    assert torch.equal(e2[2, 4, 8:], sincos_1d(7, 8)[4])


# ---- shapes, presets, config errors ----------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_feature_shapes(method, batch):
    model = tiny(method).eval()
    x, valid = batch
    with torch.no_grad():
        assert model.encode(x, valid).shape == (8, 8, 13, 32)
        assert model.frame_features(x, valid).shape == (8, 32, 32)
        assert model.window_features(x, valid).shape == (8, 32)
        # another window length: temporal position embeddings are interpolated
        assert model.encode(x[:, :16], valid[:, :16]).shape == (8, 4, 13, 32)
    assert model.temporal_patch == 4 and model.feature_dim == 32


@pytest.mark.parametrize("method", METHODS)
def test_presets_build_and_paper_encoder_has_the_papers_size(method):
    cls = model_class(method)
    assert {"paper", "small", "default"} <= set(cls.presets)
    for preset in cls.presets:
        build_model(method, SPEC, preset=preset)
    # METHODS.md counts ~6.3M parameters in MAMP's NTU encoder (T=120, 25 joints, 3D)
    paper = build_model(method, ModelSpec(25, 3, 120), preset="paper")
    n_encoder = sum(p.numel() for p in paper.encoder.parameters())
    assert n_encoder == pytest.approx(6.3e6, rel=0.02)


@pytest.mark.parametrize("method", METHODS)
def test_bad_options_and_batches_raise_skelmae_error(method, batch):
    with pytest.raises(SkelmaeError, match="unknown"):
        build_model(method, SPEC, no_such_option=1)
    with pytest.raises(SkelmaeError, match="heads"):
        build_model(method, SPEC, dim=30, heads=4)
    with pytest.raises(SkelmaeError, match="patch"):
        build_model(method, ModelSpec(13, 2, 30), patch=4)
    with pytest.raises(SkelmaeError, match="mask_ratio"):
        build_model(method, SPEC, mask_ratio=1.0)
    model = tiny(method)
    x, valid = batch
    with pytest.raises(SkelmaeError, match="12 keypoints"):
        model.loss(x[:, :, :12], valid[:, :, :12])
    with pytest.raises(SkelmaeError, match="multiple"):
        model.encode(x[:, :30], valid[:, :30])


# ---- MAMP target and loss --------------------------------------------------------------------
def test_mamp_motion_target_matches_hand_computation():
    # one keypoint, 1D, 8 frames; frame 6 missing
    x = torch.tensor([0.0, 1, 3, 6, 10, 15, 0, 28]).reshape(1, 8, 1, 1)
    valid = torch.tensor([True] * 6 + [False, True]).reshape(1, 8, 1)
    target, defined = mamp.motion_target(x, valid, 4)
    # token 0: motion 1, 2, 3, 4; mean 2.5, unbiased variance 5/3
    expected0 = (torch.tensor([1.0, 2, 3, 4]) - 2.5) / math.sqrt(5 / 3 + 1e-6)
    # token 1: motion 5, (15->missing), (missing->28), (last frame: none) -> only 5 is defined;
    # a single value normalises to 0
    assert defined[0, :, 0].tolist() == [[True] * 4, [True, False, False, False]]
    assert torch.allclose(target[0, 0, 0], expected0, atol=1e-6)
    assert torch.equal(target[0, 1, 0], torch.zeros(4))


def test_mamp_motion_target_two_coordinates_normalise_together():
    x = torch.zeros(1, 4, 1, 2)
    x[0, :, 0, 0] = torch.tensor([0.0, 1, 2, 3])  # x moves by 1 per frame, y stays
    target, defined = mamp.motion_target(x, torch.ones(1, 4, 1, dtype=torch.bool), 4)
    values = torch.tensor([1.0, 0, 1, 0, 1, 0])  # frame-major (dx, dy) of the 3 defined steps
    expected = (values - 0.5) / math.sqrt(values.var() + 1e-6)
    assert defined[0, 0, 0].tolist() == [True] * 6 + [False] * 2
    assert torch.allclose(target[0, 0, 0, :6], expected, atol=1e-6)


def test_mamp_loss_ignores_targets_of_visible_tokens(batch, monkeypatch):
    model = tiny("mamp").eval()
    x, valid = batch
    masked = model.mask(x, valid, seeded(3))
    assert masked.any() and (~masked).any()
    honest = model.loss(x, valid, seeded(3))["loss"]

    def perturbed(where):
        real = mamp.motion_target

        def target(*args):
            t, defined = real(*args)
            return t + 100.0 * where.unsqueeze(-1), defined

        monkeypatch.setattr(mamp, "motion_target", target)
        out = model.loss(x, valid, seeded(3))["loss"]
        monkeypatch.setattr(mamp, "motion_target", real)
        return out

    assert torch.equal(perturbed(~masked), honest)  # visible tokens: no effect at all
    one_masked = torch.zeros_like(masked)
    fully_tracked = valid.reshape(8, 8, 4, 13).all(2)
    one_masked.view(-1)[torch.nonzero((masked & fully_tracked).view(-1))[0]] = True
    assert perturbed(one_masked) > honest + 1.0  # a hidden token's target does count


# ---- Skeleton2vec targets and EMA ------------------------------------------------------------
def test_skeleton2vec_loss_ignores_targets_of_visible_tokens(batch, monkeypatch):
    model = tiny("skeleton2vec").eval()
    x, valid = batch
    masked = model.mask(x, valid, seeded(3))
    honest = model.loss(x, valid, seeded(3))["loss"]
    real = model.targets(x, valid)

    def loss_with(offset):
        monkeypatch.setattr(model, "targets", lambda *a: real + offset.unsqueeze(-1))
        return model.loss(x, valid, seeded(3))["loss"]

    assert torch.equal(loss_with(100.0 * ~masked), honest)
    tok_valid = valid.reshape(8, 8, 4, 13).any(2)
    assert loss_with(100.0 * (masked & tok_valid)) > honest + 100.0


def test_skeleton2vec_targets_average_layer_normed_top_blocks(batch):
    model = tiny("skeleton2vec", depth=3, top_k_blocks=2).eval()
    x, valid = batch
    _, hidden = model.teacher.encode_all(x, valid, return_hidden=True)

    def norm(h):
        centred = h - h.mean(-1, keepdim=True)
        return centred / torch.sqrt(centred.pow(2).mean(-1, keepdim=True) + 1e-5)

    expected = norm((norm(hidden[1]) + norm(hidden[2])) / 2).reshape(8, 8, 13, 32)
    assert torch.allclose(model.targets(x, valid), expected, atol=1e-4)


def test_skeleton2vec_ema_schedule_and_update(batch):
    model = tiny("skeleton2vec", ema_start=0.9, ema_end=0.99, ema_anneal_steps=10)
    assert model.ema_decay(0, 1000) == pytest.approx(0.9)
    assert model.ema_decay(5, 1000) == pytest.approx(0.945)
    assert model.ema_decay(10, 1000) == pytest.approx(0.99)
    assert model.ema_decay(500, 1000) == pytest.approx(0.99)
    relative = tiny("skeleton2vec", ema_start=0.9, ema_end=0.99, ema_anneal_fraction=0.5)
    assert relative.ema_decay(25, 100) == pytest.approx(0.945)  # horizon = half of 100 steps
    assert relative.ema_decay(50, 100) == pytest.approx(0.99)

    x, valid = batch
    model.loss(x, valid, seeded(0))["loss"].backward()
    assert all(p.grad is None and not p.requires_grad for p in model.teacher.parameters())
    assert all(p.grad is not None for p in model.encoder.stack.parameters())
    with torch.no_grad():
        for p in model.encoder.parameters():
            p.add_(torch.randn(p.shape, generator=seeded(9)))
    teacher0 = [p.detach().clone() for p in model.teacher.parameters()]
    student = [p.detach().clone() for p in model.encoder.parameters()]
    model.after_step(5, 1000)  # decay 0.945
    for t0, s, t1 in zip(teacher0, student, model.teacher.parameters(), strict=True):
        assert torch.allclose(t1, 0.945 * t0 + 0.055 * s, atol=1e-6)
    gap_before = sum(float((t - s).abs().sum()) for t, s in zip(teacher0, student, strict=True))
    gap_after = sum(
        float((t - s).abs().sum()) for t, s in zip(model.teacher.parameters(), student, strict=True)
    )
    assert gap_after == pytest.approx(0.945 * gap_before, rel=1e-4)
    model.train()
    assert not model.teacher.training


# ---- validity, precision, determinism --------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_missing_keypoints_never_contribute(method, batch):
    model = tiny(method, drop_path=0.0) if method == "skeleton2vec" else tiny(method)
    model.eval()
    x, valid = batch
    garbage = torch.where(valid.unsqueeze(-1), x, 1e3 * torch.randn(x.shape, generator=seeded(1)))
    garbage[1, 5, 2] = torch.nan
    valid_nan = valid.clone()
    valid_nan[1, 5, 2] = False
    x_nan = torch.where(valid_nan.unsqueeze(-1), x, 0.0)
    with torch.no_grad():
        assert torch.allclose(
            model.loss(x_nan, valid_nan, seeded(2))["loss"],
            model.loss(garbage, valid_nan, seeded(2))["loss"],
            atol=1e-6,
        )
        clean, noisy = model.encode(x_nan, valid_nan), model.encode(garbage, valid_nan)
        assert torch.isfinite(noisy).all()
        assert torch.allclose(clean, noisy, atol=1e-5)
        # control: the same change on tracked keypoints does change the features
        moved = x_nan.clone()
        moved[1, 8, 4] += 1.0
        assert valid_nan[1, 8, 4]
        assert not torch.allclose(clean, model.encode(moved, valid_nan), atol=1e-3)


@pytest.mark.parametrize("method", METHODS)
def test_a_window_without_any_tracked_keypoint_stays_finite(method, batch):
    model = tiny(method)
    x, valid = batch[0].clone(), batch[1].clone()
    valid[2] = False
    x[2] = 0.0
    out = model.loss(x, valid, seeded(0))
    assert torch.isfinite(out["loss"])
    out["loss"].backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    with torch.no_grad():
        assert torch.isfinite(model.encode(x, valid)).all()


@pytest.mark.parametrize("method", METHODS)
def test_bf16_autocast_matches_float32(method, batch):
    model = tiny(method).eval()
    x, valid = batch
    with torch.no_grad():
        full = model.loss(x, valid, seeded(4))["loss"]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            half = model.loss(x, valid, seeded(4))["loss"]
            features = model.encode(x, valid)
    assert half.dtype == torch.float32 and torch.isfinite(features).all()
    assert half.item() == pytest.approx(full.item(), rel=0.03)


@pytest.mark.parametrize("method", METHODS)
def test_seeded_generator_makes_the_loss_reproducible(method, batch):
    model = tiny(method)  # training mode: drop-path draws from the generator too
    x, valid = batch
    a = model.loss(x, valid, seeded(7))["loss"]
    b = model.loss(x, valid, seeded(7))["loss"]
    c = model.loss(x, valid, seeded(8))["loss"]
    assert torch.equal(a, b) and not torch.equal(a, c)


# ---- learning on real windows ----------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_adam_steps_on_real_windows_lower_the_loss(method, batch):
    model = tiny(method)
    x, valid = batch
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-3)

    def held_out_loss():
        model.eval()
        with torch.no_grad():
            out = model.loss(x, valid, seeded(123))
        model.train()
        return out

    before = held_out_loss()
    gen = seeded(0)
    steps = 40
    for step in range(1, steps + 1):
        model.loss(x, valid, gen)["loss"].backward()
        opt.step()
        opt.zero_grad()
        model.after_step(step, steps)
    after = held_out_loss()
    assert after["loss"] < 0.7 * before["loss"]
    if method == "skeleton2vec":  # not by collapsing every target onto one vector
        assert after["target_std"] > 0.3


def rotating_skeletons(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Keypoints on circles, all turning at one random speed from one random phase: the motion
    of any hidden token follows from the visible ones."""
    t = torch.arange(32.0).view(1, 32, 1)
    speed = 0.1 + 0.3 * torch.rand(n, 1, 1, generator=generator)
    phase = 6.28 * torch.rand(n, 1, 1, generator=generator)
    angle = speed * t + phase + torch.linspace(0, 3, 13).view(1, 1, 13)
    radius = torch.linspace(0.2, 1.0, 13).view(1, 1, 13)
    x = torch.stack([radius * angle.cos(), radius * angle.sin()], dim=-1)
    return x, torch.ones(x.shape[:3], dtype=torch.bool)


@pytest.mark.slow
def test_mamp_predicts_motion_from_context_when_it_is_predictable():
    """Below the floor of predicting zero motion (the per-token normalised target's own mean
    square) only by reading the visible tokens."""
    model = tiny("mamp")
    gen = seeded(0)
    x_test, valid_test = rotating_skeletons(32, gen)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(300):
        model.loss(*rotating_skeletons(16, gen), gen)["loss"].backward()
        opt.step()
        opt.zero_grad()
    model.eval()
    with torch.no_grad():
        loss = model.loss(x_test, valid_test, seeded(1))["loss"]
    masked = model.mask(x_test, valid_test, seeded(1))
    target, defined = mamp.motion_target(x_test, valid_test, 4)
    weight = defined & masked.unsqueeze(-1)
    zero_floor = (target**2 * weight).sum() / weight.sum()
    assert loss < 0.75 * zero_floor
