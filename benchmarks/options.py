"""Command-line helpers shared by the benchmark scripts."""

from __future__ import annotations

import json


def parse_set(items: list[str]) -> dict[str, dict]:
    """``["method.key=value", ...]`` -> ``{method: {key: value}}``, each value parsed as
    JSON when it can be (``msae.embed_dim=32``, ``mamp.pos_init=sincos``)."""
    out: dict[str, dict] = {}
    for item in items:
        key, _, value = item.partition("=")
        method, _, name = key.partition(".")
        if not name or not _:
            raise SystemExit(f"--set {item!r}: expected METHOD.KEY=VALUE")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        out.setdefault(method, {})[name] = parsed
    return out
