"""Views people would rather look at than read: the ethogram and the embedding map, both
linked to the viewer's frame slider (current frame marked; a click jumps to a frame)."""

from .embedding_map import EmbeddingMapView
from .ethogram import EthogramView, codes_from_points_layer, plugin_points_layers

__all__ = ["EmbeddingMapView", "EthogramView", "codes_from_points_layer",
           "plugin_points_layers"]
