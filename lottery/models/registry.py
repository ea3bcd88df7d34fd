"""The model registry: adding a model is one builder function plus one ``@register`` line.

A builder takes the dataset's input shape ``(channels, height, width)``, the number of classes and its own
keyword arguments, and returns a plain ``nn.Module``; models know nothing about pruning or initialisation.
A user's own model is named by import path, ``package.module:Class``, and gets the same two arguments when
its signature accepts them.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable

from torch import nn

Shape = tuple[int, int, int]
Builder = Callable[..., nn.Module]
MODELS: dict[str, Builder] = {}


def register(*names: str) -> Callable[[Builder], Builder]:
    def add(builder: Builder) -> Builder:
        for name in names:
            MODELS[name] = builder
        return builder

    return add


def is_import_path(name: str) -> bool:
    return ":" in name


def resolve(name: str) -> Builder:
    """The builder for a registered name or a ``package.module:Class`` path; ``ValueError`` says why not."""
    if not is_import_path(name):
        if name not in MODELS:
            raise ValueError(f"model.name: {name!r} is not valid; choose one of {', '.join(sorted(MODELS))} "
                             "or give an import path package.module:Class")
        return MODELS[name]
    module_name, _, attr = name.partition(":")
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"model.name: cannot import {name!r} ({e})") from None
    if not callable(obj):
        raise ValueError(f"model.name: {name!r} is not a class or function")
    return obj


def build(name: str, input_shape: Shape, num_classes: int, **kwargs: object) -> nn.Module:
    builder = resolve(name)
    params = inspect.signature(builder).parameters
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    given = dict(kwargs)
    for key, value in (("input_shape", input_shape), ("num_classes", num_classes)):
        if accepts_any or key in params:
            given.setdefault(key, value)
    unknown = [k for k in kwargs if not accepts_any and k not in params]
    if unknown:
        valid = [k for k in params if k not in ("input_shape", "num_classes")]
        raise ValueError(f"model.kwargs: {unknown[0]!r} is not an argument of {name}; "
                         f"choose from {', '.join(valid) or '(none)'}")
    try:
        model = builder(**given)
    except TypeError as e:  # e.g. model.name=os.path:join: callable, but not a network builder
        raise ValueError(f"model.name: {name!r} did not build a network ({e}); give a registered model or a "
                         "package.module:Class whose constructor takes input_shape/num_classes (or model.kwargs)") \
            from None
    if not isinstance(model, nn.Module):
        raise ValueError(f"model.name: {name!r} returned {type(model).__name__}, not an nn.Module")
    return model
