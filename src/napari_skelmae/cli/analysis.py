"""``skelmae embed | cluster | classify``: apply a model to recordings and write the results.

Each command loads the recordings and the model, runs the same core functions as the console
and the dock widgets, and writes the per-frame results table of every recording
(``<stem>.skelmae.parquet`` and ``.csv``, beside the video unless ``--out-dir``); ``classify``
also writes the predicted bouts as SLEAP events and a BORIS table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..errors import SkelmaeError

__all__ = ["add_analysis_parsers"]


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", help="tracks files (.slp, .h5, .csv, .nc, .nwb)")
    p.add_argument("--model", required=True, help="model file (.skelmae) from skelmae pretrain")
    p.add_argument("--fps", type=float, default=None, help="frame rate of the files")
    p.add_argument("--out-dir", default=None,
                   help="folder for the result files (default: beside each video)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--batch-size", type=int, default=64, help="windows per batch")
    p.add_argument("--precision", default="auto", choices=("auto", "float32", "bfloat16"),
                   help="auto: bfloat16 on a CUDA GPU that has it, float32 elsewhere; "
                        "bfloat16 is 1.3-2.2x faster on CPUs with bf16 units")
    p.add_argument("--keypoint-map", action="append", default=[], metavar="MODEL=TRACKS",
                   help="use the tracks keypoint TRACKS for the model keypoint MODEL")


def add_analysis_parsers(sub: Any) -> None:
    p = sub.add_parser("embed", help="Per-frame embeddings of recordings, written as results "
                       "tables.", description="Per-frame embeddings written as results tables.")
    _common(p)
    p.set_defaults(func=cmd_embed)

    p = sub.add_parser("cluster", help="Cluster per-frame embeddings into behaviour clusters.",
                       description="Embed the recordings, fit one clusterer on all of them "
                       "(or apply a saved one) and write each recording's results table.")
    _common(p)
    p.add_argument("--method", default="kmeans", choices=("kmeans", "gmm", "hdbscan"))
    p.add_argument("--n-clusters", type=int, default=None, help="clusters (default 8)")
    p.add_argument("--min-bout-frames", type=int, default=None,
                   help="merge cluster bouts shorter than this into their neighbours")
    p.add_argument("--pca", type=int, default=None, help="principal components first")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save-clusterer", default=None, help="write the fitted clusterer here")
    p.add_argument("--clusterer", default=None,
                   help="apply this saved clusterer instead of fitting one")
    p.add_argument("--score", default=None, metavar="LOW:HIGH",
                   help="also print scores of cluster counts LOW..HIGH")
    p.set_defaults(func=cmd_cluster)

    p = sub.add_parser("classify", help="Learn behaviours from labelled bouts and predict them.",
                       description="Train a classifier on the embeddings of labelled "
                       "recordings (one labels file per tracks file, in the same order), print "
                       "its cross-validated per-class F1, predict every frame of the recordings "
                       "(and of --predict files) and write results, SLEAP events and BORIS tables.")
    _common(p)
    p.add_argument("--labels", action="append", required=True,
                   help="labels file (BORIS export, bouts CSV, per-frame CSV); once per file")
    p.add_argument("--kind", default="linear", choices=("linear", "mlp"))
    p.add_argument("--cv", type=int, default=5, help="cross-validation folds (0: none)")
    p.add_argument("--min-bout-frames", type=int, default=None,
                   help="merge predicted bouts shorter than this into their neighbours")
    p.add_argument("--predict", nargs="*", default=[], help="more tracks files to predict")
    p.add_argument("--save-classifier", default=None, help="write the classifier here")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_classify)


# ------------------------------------------------------------------------------- helpers
def _keypoint_map(items: list[str]) -> dict[str, str] | None:
    out = {}
    for item in items:
        model_name, sep, tracks_name = item.partition("=")
        if not sep or not model_name or not tracks_name:
            raise SkelmaeError(f"--keypoint-map needs MODEL=TRACKS, got {item!r}")
        out[model_name] = tracks_name
    return out or None


def _load(args: argparse.Namespace, files: list[str]):
    from ..io import load_tracks
    from ..model import load_model
    from ..training import resolve_device

    model = load_model(args.model, map_location=resolve_device(args.device),
                       keypoint_map=_keypoint_map(args.keypoint_map))
    recordings = [load_tracks(f, fps=args.fps) for f in files]
    return model, recordings


def _embed_all(model, recordings, batch_size: int, precision: str = "auto") -> list:
    out = []
    for tracks in recordings:
        print(f"embedding {tracks.source_path.name}: {tracks.n_frames} frames x "
              f"{tracks.n_individuals} individuals", file=sys.stderr, flush=True)
        out.append(model.embed(tracks, batch_size=batch_size, precision=precision))
    return out


def _written(paths: dict[str, Path]) -> None:
    for kind, path in paths.items():
        print(f"wrote {path} ({kind})")


# ------------------------------------------------------------------------------ commands
def cmd_embed(args: argparse.Namespace) -> int:
    from ..export import write_results
    from ..results import results_table

    model, recordings = _load(args, args.files)
    embeddings = _embed_all(model, recordings, args.batch_size, args.precision)
    for tracks, emb in zip(recordings, embeddings):
        table = results_table(tracks, embeddings=emb, model=model)
        _written(write_results(table, tracks, folder=args.out_dir))
    return 0


def cmd_cluster(args: argparse.Namespace) -> int:
    from ..analysis.clustering import cluster, load_clusterer, score_cluster_counts
    from ..export import write_results
    from ..results import results_table

    if args.clusterer and args.save_clusterer:
        raise SkelmaeError("give either --clusterer (apply a saved one) or --save-clusterer")
    model, recordings = _load(args, args.files)
    embeddings = _embed_all(model, recordings, args.batch_size, args.precision)
    frames = [t.frame_index for t in recordings]
    if args.score:
        low, sep, high = args.score.partition(":")
        if not sep or not low.isdigit() or not high.isdigit() or int(low) > int(high):
            raise SkelmaeError(f"--score needs LOW:HIGH, e.g. 2:12, got {args.score!r}")
        scores = score_cluster_counts(embeddings, range(int(low), int(high) + 1),
                                      method=args.method if args.method != "hdbscan"
                                      else "kmeans", seed=args.seed)
        print(scores.to_string(index=False))
    if args.clusterer:
        clusterer = load_clusterer(args.clusterer)
        labels = [clusterer.predict(e, frame_index=f) for e, f in zip(embeddings, frames)]
    else:
        labels, clusterer = cluster(embeddings, args.method, args.n_clusters,
                                    min_bout_frames=args.min_bout_frames, frame_index=frames,
                                    pca=args.pca, seed=args.seed)
        if args.save_clusterer:
            print(f"wrote {clusterer.save(args.save_clusterer)} (clusterer)")
    print(f"{clusterer!r}")
    for tracks, emb, codes in zip(recordings, embeddings, labels):
        table = results_table(tracks, embeddings=emb, clusters=codes, model=model)
        _written(write_results(table, tracks, folder=args.out_dir))
    return 0


def cmd_classify(args: argparse.Namespace) -> int:
    from ..analysis.classify import train_classifier
    from ..analysis.labels import load_labels
    from ..export import export_all
    from ..results import results_table

    if len(args.labels) != len(args.files):
        raise SkelmaeError(f"{len(args.files)} tracks file(s) but {len(args.labels)} --labels "
                           "file(s): give one labels file per tracks file, in the same order")
    model, recordings = _load(args, args.files + list(args.predict))
    labelled = recordings[: len(args.files)]
    bouts = [load_labels(path, tracks=t) for path, t in zip(args.labels, labelled)]
    embeddings = _embed_all(model, recordings, args.batch_size, args.precision)
    classifier = train_classifier(embeddings[: len(labelled)], bouts, tracks=labelled,
                                  kind=args.kind, cv=args.cv or None, seed=args.seed)
    if classifier.cv_report is not None:
        print("cross-validated per-class scores (grouped by bout):")
        print(classifier.cv_report.to_string())
    if args.save_classifier:
        print(f"wrote {classifier.save(args.save_classifier)} (classifier)")
    for tracks, emb in zip(recordings, embeddings):
        codes, prob = classifier.predict(emb, tracks.frame_index,
                                         min_bout_frames=args.min_bout_frames)
        table = results_table(tracks, embeddings=emb, behaviours=codes,
                              behaviour_names=classifier.names, probabilities=prob,
                              model=model)
        _written(export_all(tracks, table, folder=args.out_dir))
    return 0
