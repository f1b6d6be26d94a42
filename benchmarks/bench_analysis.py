"""Print the figures of docs/analysis.md (run from the repository root)."""
import sys
import time
import warnings

import numpy as np
import torch
from threadpoolctl import threadpool_limits

sys.path.insert(0, ".")
from tests.test_analysis_classify import (  # noqa: E402
    NAMES,
    TINY,
    WINDOW,
    _chance,
    _few_bouts,
    _scores,
    wing_labels,
)

from napari_skelmae import load_tracks  # noqa: E402
from napari_skelmae.analysis.bouts import frames_to_bouts  # noqa: E402
from napari_skelmae.analysis.classify import fine_tune_classifier, train_classifier  # noqa: E402
from napari_skelmae.analysis.clustering import cluster, load_clusterer  # noqa: E402
from napari_skelmae.training import pretrain  # noqa: E402

threadpool_limits(1)
torch.set_num_threads(1)
warnings.simplefilter("ignore")
fit = load_tracks("../shared/data/sleap_analysis_example/predictions.slp")
other = load_tracks("../shared/data/sleap_flies13/demo-flies13-preds.slp")
model = pretrain(fit, "mamp", max_steps=60, window=WINDOW, batch_size=16,
                 precision="float32", **TINY)
emb, other_emb = model.embed(fit), model.embed(other)
for method in ["kmeans", "gmm", "hdbscan"]:
    t = time.perf_counter()
    labels, c = cluster(emb, method, None if method == "hdbscan" else 6)
    dt = time.perf_counter() - t
    loaded = load_clusterer(c.save("/tmp/bench.clusterer"))
    same = (loaded.predict(other_emb) == c.predict(other_emb)).all()
    print(f"{method}: {dt:.2f} s, sizes {np.round(c.cluster_sizes, 3).tolist()}, "
          f"identical on the other recording after save/load: {same}")
codes = wing_labels(fit)
bouts = frames_to_bouts(codes, NAMES, fit.frame_index, fit.individual_names)
print("bouts", bouts.groupby("behaviour").size().to_dict(),
      "frames", np.bincount(codes[codes >= 0]).tolist())
flies = (fit, emb, codes)
train_codes, held = _few_bouts(flies)
truth = codes[held]
probe = train_classifier(emb, train_codes, NAMES, cv=None)
print("few bouts:", int((train_codes >= 0).sum()), "training frames,", int(held.sum()),
      "held out; balanced acc, macro F1", np.round(_scores(truth, probe.predict(emb)[0][held]), 3),
      "chance", np.round(_chance(truth, train_codes), 3))
y_train = np.bincount(train_codes[train_codes >= 0]).argmax()
print("majority", np.round(_scores(truth, np.full(len(truth), y_train)), 3))
shuffled = []
for seed in range(5):
    p = train_codes.copy()
    p[p >= 0] = np.random.default_rng(seed).permutation(p[p >= 0])
    shuffled_probe = train_classifier(emb, p, NAMES, cv=None)
    shuffled.append(_scores(truth, shuffled_probe.predict(emb)[0][held])[0])
print("shuffled labels, balanced acc", np.round(shuffled, 3).tolist())
t = time.perf_counter()
tuned, ft = fine_tune_classifier(model, fit, train_codes, NAMES, steps=100, batch_size=16)
dt = time.perf_counter() - t
tuned_scores = _scores(truth, ft.predict(tuned.embed(fit))[0][held])
print(f"fine-tuned ({dt:.1f} s):", np.round(tuned_scores, 3))
for kind in ["linear", "mlp"]:
    t = time.perf_counter()
    clf = train_classifier(emb, codes, NAMES, tracks=fit, kind=kind, cv=5)
    print(kind, f"{time.perf_counter() - t:.1f} s", clf.cv_summary)
    print(clf.cv_report.round(3).to_string())
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import f1_score  # noqa: E402
from sklearn.model_selection import KFold  # noqa: E402

x = np.asarray(emb).reshape(-1, emb.shape[2]).astype(float)
y = codes.reshape(-1)
ok = (y >= 0) & np.isfinite(x).all(1)
x, y = x[ok], y[ok]
oof = np.empty_like(y)
for tr, te in KFold(5, shuffle=True, random_state=0).split(x):
    mu, sd = x[tr].mean(0), x[tr].std(0)
    oof[te] = LogisticRegression(max_iter=2000, class_weight="balanced").fit(
        (x[tr] - mu) / sd, y[tr]).predict((x[te] - mu) / sd)
print(f"frames split at random (leaky): macro F1 {f1_score(y, oof, average='macro'):.3f}")
