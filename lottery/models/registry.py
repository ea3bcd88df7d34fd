"""The model registry: adding a model is one builder function plus one ``@register`` line.

A builder takes the dataset's input shape ``(channels, height, width)``, the number of classes and its own
keyword arguments, and returns a plain ``nn.Module``; models know nothing about pruning or initialisation.
A user's own model is named by import path, ``package.module:Class``, and gets the same two arguments when
its signature accepts them. An import path may name only an ``nn.Module`` subclass or a builder registered
here: nothing else a file names is ever called. Importing the module runs its top-level code, as importing any
module does, so a config is code, like a script; a record read back from someone else (a ticket) may name an
import path only when the reader says ``trust_code=True`` (Hugging Face's ``trust_remote_code``).
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


class UntrustedCode(ValueError):
    """A record from elsewhere names code to import; the reader did not say ``trust_code=True``."""


def resolve(name: str, trust_code: bool = True) -> Builder:
    """The builder for a registered name or a ``package.module:Class`` path naming an ``nn.Module`` subclass
    or a registered builder; ``ValueError`` says why not. ``trust_code=False`` (records from elsewhere)
    refuses import paths before importing anything."""
    if not is_import_path(name):
        if name not in MODELS:
            raise ValueError(f"model.name: {name!r} is not valid; choose one of {', '.join(sorted(MODELS))} "
                             "or give an import path package.module:Class")
        return MODELS[name]
    if not trust_code:
        raise UntrustedCode(f"model.name: {name!r} is an import path, and importing it would run that module's "
                            "code; load it only if you trust its source (trust_code=True, or --trust-code)")
    module_name, _, attr = name.partition(":")
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"model.name: cannot import {name!r} ({e})") from None
    except Exception as e:  # noqa: BLE001  (the module's own code failed while importing)
        raise ValueError(f"model.name: importing {module_name!r} failed ({type(e).__name__}: {e})") from None
    if isinstance(obj, type) and issubclass(obj, nn.Module):
        return obj
    if any(obj is builder for builder in MODELS.values()):
        return obj
    raise ValueError(f"model.name: {name!r} is a {type(obj).__name__}, not an nn.Module class or a registered "
                     "builder; name a network class (package.module:Class) or @register the builder")


def build(name: str, input_shape: Shape, num_classes: int, trust_code: bool = True, **kwargs: object) -> nn.Module:
    builder = resolve(name, trust_code)
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
    except TypeError as e:  # e.g. a class whose constructor wants other arguments
        raise ValueError(f"model.name: {name!r} did not build a network ({e}); give a registered model or a "
                         "package.module:Class whose constructor takes input_shape/num_classes (or model.kwargs)") \
            from None
    if not isinstance(model, nn.Module):
        raise ValueError(f"model.name: {name!r} returned {type(model).__name__}, not an nn.Module")
    return model
