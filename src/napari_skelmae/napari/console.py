"""One-call helpers for the napari console and scripts (main thread only): show tracks, and
the steps of the dock widgets (cluster, classify, export a points layer)."""

from __future__ import annotations

import os
from typing import Any

from ..errors import SkelmaeError
from ..tracks import PoseTracks


def add_layer_tuples(viewer, layer_tuples: list[tuple]) -> list:
    """Add LayerDataTuples to a viewer and return the layers; switches on the viewer's layer
    tooltip, so the point under the cursor shows its individual, keypoint and confidence
    (its features; napari's status bar shows them too, which is all a file dropped onto
    napari gets: a reader cannot reach the viewer)."""
    from napari.layers import Layer

    viewer.tooltip.visible = True
    return [viewer.add_layer(Layer.create(*t)) for t in layer_tuples if t[0] is not None]


def show_tracks(
    tracks: PoseTracks | str | os.PathLike, viewer=None, **layer_options: Any
) -> list:
    """Show tracks (or a tracks file) in ``viewer`` (the current one, or a new viewer).

    ``layer_options`` go to :func:`~napari_skelmae.napari.layers.tracks_to_layers`
    (e.g. ``trails=True``, ``color_by="keypoint"``). Returns the layers added.
    """
    import napari

    from ..io import load_tracks
    from .layers import tracks_to_layers

    if not isinstance(tracks, PoseTracks):
        tracks = load_tracks(tracks)
    if viewer is None:
        viewer = napari.current_viewer() or napari.Viewer()
    return add_layer_tuples(viewer, tracks_to_layers(tracks, **layer_options))


# ---------------------------------------------------------------- the widgets' steps
# Each helper is what one dock widget does, as one call on the main thread: the same worker
# function the widget runs in a thread, then the same updates of the layers, the views and
# the viewer's shared results (so the Export widget sees what the console did, and back).
def _viewer_of(viewer):
    import napari

    viewer = viewer or napari.current_viewer()
    if viewer is None:
        raise SkelmaeError("no napari viewer: pass viewer=... or open one first")
    return viewer


def _points_layer(viewer, points):
    from .widgets._common import unwrap

    if isinstance(points, str):
        if points not in viewer.layers:
            raise SkelmaeError(f"no layer called {points!r} in the viewer")
        points = viewer.layers[points]
    return unwrap(points)


def cluster_layer(
    points: Any,
    model: Any = None,
    *,
    viewer=None,
    method: str = "kmeans",
    n_clusters: int | None = 8,
    min_bout_frames: int | None = None,
    ethogram: bool = True,
    embedding_map: str | None = None,
    clusterer: Any = None,
    save_clusterer: Any = None,
) -> dict[str, Any]:
    """Embed & cluster, as the dock widget does: embeddings of a points layer's tracks
    (``model``: a SkeletonModel, a model file, or None for the viewer's latest model),
    clusters, the points and skeleton coloured by cluster, the ethogram (and, with
    ``embedding_map="pca"``/``"umap"``, the map). ``clusterer``: a saved clusterer file to
    apply instead of fitting (the same clusters as on the recording it came from);
    ``save_clusterer``: write the fitted one there. Returns tracks, embeddings, labels,
    names, clusterer (and ``saved``, the clusterer file written)."""
    from pathlib import Path

    from ..model import SkeletonModel
    from .layers import label_layers
    from .widgets._common import LayerResults, layer_snapshot, session, skeleton_of
    from .widgets._views import show_ethogram, show_map
    from .widgets.embed_cluster import CLUSTER_COLUMN, run_embed_cluster

    viewer = _viewer_of(viewer)
    layer = _points_layer(viewer, points)
    state = session(viewer)
    path = None if model is None or isinstance(model, SkeletonModel) else Path(model)
    result = run_embed_cluster(layer_snapshot(layer), state.model if model is None else
                               (model if path is None else None), path, method, n_clusters,
                               min_bout_frames, embedding_map,
                               clusterer_path=None if clusterer is None else Path(clusterer),
                               save_clusterer=None if save_clusterer is None
                               else Path(save_clusterer))
    label_layers(layer, result["labels"], result["names"], column=CLUSTER_COLUMN,
                 skeleton=skeleton_of(viewer, layer))
    state.set_results(layer, LayerResults(
        tracks=result["tracks"], model=result["model"], embeddings=result["embeddings"],
        clusters=result["labels"], cluster_names=result["names"],
        clusterer=result["clusterer"], map_xy=result["xy"], map_method=result["map_method"]))
    state.set_model(result["model"])
    title = f"{layer.name}: clusters ({result['clusterer'].method})"
    if ethogram:
        show_ethogram(viewer, result["tracks"], result["labels"], result["names"], title,
                      source=(layer.name, CLUSTER_COLUMN))
    if result["xy"] is not None:
        show_map(viewer, result["tracks"], result["xy"], result["labels"], result["names"],
                 result["map_method"], title)
    return result


def classify_layer(
    points: Any,
    labels: Any,
    model: Any = None,
    *,
    viewer=None,
    kind: str = "linear",
    cv: int | None = 5,
    min_bout_frames: int | None = None,
    save: Any = None,
    ethogram: bool = True,
):
    """Classify, as the dock widget does: train on ``labels`` (a bouts table, a labels file, or
    a points feature name holding behaviour names, e.g. one you painted), predict every frame,
    colour
    the layers by behaviour and show the ethogram. Reuses the layer's embeddings from
    :func:`cluster_layer` when the model is the same. Returns the BehaviourClassifier (its
    ``cv_report`` holds the cross-validated per-class F1)."""
    import os
    from pathlib import Path

    from ..model import SkeletonModel
    from .layers import label_layers
    from .widgets._common import LayerResults, layer_snapshot, session, skeleton_of
    from .widgets._views import show_ethogram
    from .widgets.classify import BEHAVIOUR_COLUMN, run_classify

    viewer = _viewer_of(viewer)
    layer = _points_layer(viewer, points)
    state = session(viewer)
    previous = state.results(layer)
    path = None if model is None or isinstance(model, SkeletonModel) else Path(model)
    if model is None or isinstance(model, SkeletonModel):
        model = model or (previous.model if previous is not None else state.model)
    embeddings = (previous.embeddings if previous is not None and path is None
                  and previous.model is model else None)
    import pandas as pd

    if isinstance(labels, pd.DataFrame):
        spec = ("bouts", labels)
    elif isinstance(labels, (str, os.PathLike)) and Path(labels).is_file():
        spec = ("file", Path(labels))
    elif isinstance(labels, str) and labels in layer.features:
        from .views.ethogram import codes_from_points_layer

        found = codes_from_points_layer(layer, labels)
        spec = ("codes", found["codes"], found["names"])
    else:
        raise SkelmaeError(f"labels must be a bouts table, a labels file or a feature of "
                           f"'{layer.name}', got {labels!r}")
    result = run_classify(layer_snapshot(layer), embeddings, model, path, spec, kind, cv,
                          min_bout_frames, None if save is None else Path(save))
    clf = result["classifier"]
    label_layers(layer, result["codes"], clf.names, column=BEHAVIOUR_COLUMN,
                 skeleton=skeleton_of(viewer, layer))
    results = previous if previous is not None and previous.model is result["model"] else \
        LayerResults(tracks=result["tracks"], model=result["model"],
                     embeddings=result["embeddings"])
    results.behaviours, results.behaviour_names = result["codes"], list(clf.names)
    results.probabilities, results.classifier = result["probabilities"], clf
    state.set_results(layer, results)
    if ethogram:
        show_ethogram(viewer, result["tracks"], result["codes"], list(clf.names),
                      f"{layer.name}: behaviours ({clf.kind})",
                      source=(layer.name, BEHAVIOUR_COLUMN))
    return clf


def export_layer(points: Any, folder: Any = None, *, viewer=None,
                 with_embeddings: bool = True) -> dict:
    """Export, as the dock widget does: the layer's results table (parquet + CSV), SLEAP
    events and BORIS table, beside the video or in ``folder``. Returns ``{kind: path}``."""
    from pathlib import Path

    from .widgets._common import layer_snapshot, session
    from .widgets.export import run_export

    viewer = _viewer_of(viewer)
    layer = _points_layer(viewer, points)
    results = session(viewer).results(layer)
    if results is None:
        raise SkelmaeError(f"no results for '{layer.name}' yet: run cluster_layer or "
                           "classify_layer (or the Embed & cluster / Classify widgets) first")
    return run_export(layer_snapshot(layer), results, None if folder is None else Path(folder),
                      with_embeddings)
