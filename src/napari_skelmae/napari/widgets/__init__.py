"""Dock widgets, thin over the core: each one reads its fields, runs the core function in a
napari ``thread_worker`` on copies of the layers and updates the viewer on the main thread
(errors: notifications). The widgets of one viewer share a session (``_common.session``):
the latest model, and each points layer's embeddings, clusters and behaviours.

(Importing this package is cheap: matplotlib, torch and scikit-learn load when a widget is
built or a run starts.)
"""

from .classify import ClassifyWidget
from .embed_cluster import EmbedClusterWidget
from .export import ExportWidget
from .open_tracks import open_tracks_widget
from .pretrain import PretrainWidget

__all__ = ["ClassifyWidget", "EmbedClusterWidget", "ExportWidget", "PretrainWidget",
           "open_tracks_widget"]
