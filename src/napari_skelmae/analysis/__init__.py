"""Behaviour analysis on per-frame embeddings: clusters, labels, classifiers, bouts (no Qt)."""
