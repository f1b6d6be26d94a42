"""Registry of the masked skeleton methods, by name."""

from __future__ import annotations

import importlib
from typing import Any

from ..errors import SkelmaeError
from .base import MaskedSkeletonModel, ModelSpec, check_config_keys

#: method name -> module defining a MaskedSkeletonModel subclass called ``Model``
METHODS: dict[str, str] = {
    "mamp": "mamp",
    "skeleton2vec": "skeleton2vec",
    "skeletonmae": "skeletonmae",
    "msae": "msae",
}


def model_class(method: str) -> type[MaskedSkeletonModel]:
    if method not in METHODS:
        raise SkelmaeError(f"unknown method {method!r}; choose one of {sorted(METHODS)}")
    return importlib.import_module(f"{__name__}.{METHODS[method]}").Model


def resolve_config(method: str, preset: str | None = None, **overrides: Any) -> Any:
    """The method's Config: its defaults, then a named preset, then explicit overrides
    (unknown options and presets refused, naming the known ones)."""
    cls = model_class(method)
    values: dict[str, Any] = {}
    if preset is not None:
        if preset not in cls.presets:
            raise SkelmaeError(
                f"unknown preset {preset!r} for {method}; presets: {sorted(cls.presets)}"
            )
        values.update(cls.presets[preset])
    check_config_keys(cls.Config, overrides, method)
    values.update(overrides)
    try:
        return cls.Config(**values)
    except TypeError as e:
        raise SkelmaeError(f"{method}: bad option: {e}") from None


def build_model(
    method: str, spec: ModelSpec, preset: str | None = None, **overrides: Any
) -> MaskedSkeletonModel:
    """A fresh model: the method's defaults, then a named preset, then explicit overrides."""
    return model_class(method)(spec, resolve_config(method, preset, **overrides))


__all__ = ["METHODS", "MaskedSkeletonModel", "ModelSpec", "build_model", "model_class",
           "resolve_config"]
