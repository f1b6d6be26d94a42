"""The Qt-free pictures (Agg): palette, loss curve, ethogram and embedding map draw what
they are given, into PNG files, with the right legends; map coordinates are a PCA."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from napari_skelmae.errors import SkelmaeError  # noqa: E402
from napari_skelmae.plots import (  # noqa: E402
    UNLABELLED_COLOR,
    category_colors,
    codes_to_colors,
    embedding_map_coordinates,
    ethogram_bouts,
    loss_series,
    plot_embedding_map,
    plot_ethogram,
    plot_loss_curve,
    umap_available,
)
from napari_skelmae.training import Progress  # noqa: E402


def _axes(size=(6.0, 3.0)):
    fig = Figure(figsize=size, dpi=100)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot(1, 1, 1)


def _png(fig, path) -> np.ndarray:
    fig.savefig(path)
    return matplotlib.image.imread(str(path))


def _legend_labels(legend) -> list[str]:
    return [t.get_text() for t in legend.get_texts()]


def _pixel(fig, ax, x, y) -> np.ndarray:
    """RGBA (0-1) of the rendered figure at data coordinates (x, y)."""
    fig.canvas.draw()
    buf = np.asarray(fig.canvas.buffer_rgba()).astype(float) / 255
    px, py = ax.transData.transform((x, y))
    return buf[int(round(buf.shape[0] - py)), int(round(px))]


# ------------------------------------------------------------------------------ palette
def test_category_colors_distinct_stable_and_grey_for_unlabelled():
    names = [f"c{i}" for i in range(30)]
    colors = category_colors(names)
    rgba = np.array([colors[n] for n in names])
    assert len({tuple(np.round(c, 3)) for c in rgba}) == 30  # all distinct
    assert not any(np.allclose(c, UNLABELLED_COLOR) for c in rgba)
    # a category keeps its colour when more categories come
    assert category_colors(names[:5]) == {n: colors[n] for n in names[:5]}
    # unlabelled names are grey and do not use up a palette slot
    with_noise = category_colors([-1, "c0", None, "c1"])
    assert with_noise[-1] == UNLABELLED_COLOR and with_noise[None] == UNLABELLED_COLOR
    assert with_noise["c0"] == colors["c0"] and with_noise["c1"] == colors["c1"]
    # matplotlib's tab10 blue first
    assert np.allclose(colors["c0"][:3], matplotlib.colors.to_rgb("tab:blue"))


def test_codes_to_colors_indexes_the_palette():
    names = ["walk", "groom", "rest"]
    out = codes_to_colors(np.array([[0, 2], [-1, 1]]), names)
    colors = category_colors(names)
    assert out.shape == (2, 2, 4)
    np.testing.assert_allclose(out[0, 0], colors["walk"])
    np.testing.assert_allclose(out[0, 1], colors["rest"])
    np.testing.assert_allclose(out[1, 0], UNLABELLED_COLOR)


# --------------------------------------------------------------------------- loss curve
def _progress(step, train, val):
    return Progress(step=step, total_steps=40, epoch=0, train_loss=train, val_loss=val,
                    lr=1e-3, windows_per_s=100.0, eta_s=1.0)


def test_loss_series_from_progress_takes_each_validation_once():
    # every report repeats the latest validation loss; the first is the one before step 1;
    # an epoch ends at step 20: a second report there with the epoch's mean train loss
    reports = [_progress(10, 1.0, 2.0), _progress(20, 0.8, 2.0), _progress(20, 0.9, 0.9),
               _progress(30, 0.6, 0.9), _progress(40, 0.5, 0.6)]
    s = loss_series(reports)
    np.testing.assert_array_equal(s["train"], [[10, 1.0], [20, 0.8], [30, 0.6], [40, 0.5]])
    np.testing.assert_array_equal(s["val"], [[0, 2.0], [20, 0.9], [40, 0.6]])


def test_loss_curve_png_and_legend_from_a_history(tmp_path):
    history = {"epochs": [{"epoch": 0, "step": 0, "train_loss": None, "val_loss": 2.0},
                          {"epoch": 1, "step": 50, "train_loss": 1.2, "val_loss": 1.0},
                          {"epoch": 2, "step": 100, "train_loss": 0.8, "val_loss": 0.7}],
               "trivial_val_loss": 1.5}
    fig, ax = _axes()
    lines = plot_loss_curve(ax, history)
    np.testing.assert_array_equal(lines["val"].get_xdata(), [0, 50, 100])
    np.testing.assert_array_equal(lines["train"].get_xdata(), [50, 100])
    assert _legend_labels(ax.get_legend()) == ["train", "validation", "trivial baseline"]
    img = _png(fig, tmp_path / "loss.png")
    assert img[..., :3].std() > 0.02, "loss curve PNG is blank"
    # nothing to draw: an empty axes that says so, not an error
    fig2, ax2 = _axes()
    assert plot_loss_curve(ax2, [])["train"] is None
    assert any("no loss" in t.get_text() for t in ax2.texts)


# ----------------------------------------------------------------------------- ethogram
@pytest.fixture
def labelled():
    rng = np.random.default_rng(3)
    frame_index = np.concatenate([np.arange(0, 300), np.arange(320, 400)])  # a gap
    codes = np.repeat(rng.integers(-1, 3, size=(38, 2)), 10, axis=0)
    return codes, ["walk", "groom", "rest"], frame_index, ["fly0", "fly1"]


def test_ethogram_bouts_match_the_bouts_module(labelled):
    from napari_skelmae.analysis.bouts import frames_to_bouts

    codes, names, frame_index, individuals = labelled
    ours = ethogram_bouts(codes, frame_index)
    table = frames_to_bouts(codes, names, frame_index, individuals)
    got = sorted(zip([individuals[i] for i in ours["individual"]],
                     [names[c] for c in ours["code"]], ours["start"], ours["stop"],
                     strict=True))
    want = sorted(table.itertuples(index=False, name=None))
    assert got == want and len(got) > 10
    # the gap at frames 300-319 splits a bout
    assert not ((ours["start"] < 300) & (ours["stop"] >= 320)).any()


def test_ethogram_png_colours_legend_marker_and_hit_test(labelled, tmp_path):
    codes, names, frame_index, individuals = labelled
    fig, ax = _axes((8.0, 3.0))
    art = plot_ethogram(ax, codes, names, frame_index, individuals, current_frame=123)
    assert _legend_labels(art.legend) == names
    assert art.current_line.get_visible() and art.current_line.get_xdata()[0] == 123
    img = _png(fig, tmp_path / "ethogram.png")
    assert img[..., :3].std() > 0.05, "ethogram PNG is blank"
    # the middle of a long bout is drawn in its category's colour
    b = art.bouts
    k = int(np.argmax(b["stop"] - b["start"]))
    mid = (b["start"][k] + b["stop"][k]) / 2
    colour = category_colors(names)[names[b["code"][k]]]
    np.testing.assert_allclose(_pixel(fig, ax, mid, b["individual"][k])[:3], colour[:3],
                               atol=0.02)
    assert art.bout_at(mid, b["individual"][k]) == k
    assert art.bout_at(mid, b["individual"][k] + 0.45) is None  # between the rows
    # an unlabelled stretch is not a bout
    row, col = np.argwhere(codes == -1)[0]
    assert art.bout_at(frame_index[row], col) is None


def test_ethogram_rejects_codes_that_do_not_fit(labelled):
    codes, names, frame_index, individuals = labelled
    fig, ax = _axes()
    with pytest.raises(SkelmaeError, match="names"):
        plot_ethogram(ax, codes, names[:2], frame_index, individuals)
    with pytest.raises(SkelmaeError, match="individuals"):
        plot_ethogram(ax, codes, names, frame_index, individuals[:1])


# ------------------------------------------------------------------------ embedding map
def test_pca_map_matches_sklearn_and_keeps_missing_rows():
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(0)
    emb = rng.normal(size=(200, 3, 16)).astype(np.float32)
    emb[..., 0] *= 10  # a dominant direction
    emb[..., 5] *= 5
    emb[7, 1] = np.nan  # an absent animal
    xy = embedding_map_coordinates(emb, method="pca")
    assert xy.shape == (200, 3, 2)
    assert np.isnan(xy[7, 1]).all() and np.isfinite(np.delete(xy.reshape(-1, 2), 22, 0)).all()
    flat = emb.reshape(-1, 16)
    ok = np.isfinite(flat).all(axis=1)
    ref = PCA(n_components=2).fit_transform(flat[ok])
    ours = xy.reshape(-1, 2)[ok]
    for j in range(2):  # equal up to the sign of each component
        assert min(np.abs(ours[:, j] - ref[:, j]).max(),
                   np.abs(ours[:, j] + ref[:, j]).max()) < 1e-3
    assert ours[:, 0].var() > ours[:, 1].var()


def test_map_coordinates_bad_input():
    with pytest.raises(SkelmaeError, match="method"):
        embedding_map_coordinates(np.zeros((5, 4)), method="tsne")
    with pytest.raises(SkelmaeError, match="at least 3"):
        embedding_map_coordinates(np.full((5, 4), np.nan))
    if not umap_available():
        with pytest.raises(SkelmaeError, match="umap-learn"):
            embedding_map_coordinates(np.random.default_rng(0).normal(size=(20, 4)), "umap")
        auto = embedding_map_coordinates(np.arange(40.0).reshape(10, 4) ** 1.5, "auto")
        pca = embedding_map_coordinates(np.arange(40.0).reshape(10, 4) ** 1.5, "pca")
        np.testing.assert_array_equal(auto, pca)


def test_embedding_map_png_legend_current_and_point_at(tmp_path):
    rng = np.random.default_rng(1)
    labels = np.repeat([0, 1, 2, -1], 50)
    xy = rng.normal(size=(200, 2)) + np.repeat([[0, 0], [6, 0], [0, 6], [6, 6]], 50, axis=0)
    names = ["cluster 0", "cluster 1", "cluster 2"]
    fig, ax = _axes((5.0, 4.0))
    art = plot_embedding_map(ax, xy, labels, names, current=[3, 60])
    assert _legend_labels(art.legend) == names
    np.testing.assert_allclose(np.c_[art.current_marker.get_data()], xy[[3, 60]])
    img = _png(fig, tmp_path / "map.png")
    assert img[..., :3].std() > 0.02, "map PNG is blank"
    fig.canvas.draw()
    px, py = ax.transData.transform(xy[120])
    assert art.point_at(px, py) == 120
    far = ax.transAxes.transform((-0.5, -0.5))
    assert art.point_at(*far) is None
    art.set_current(None)
    assert not art.current_marker.get_visible()
