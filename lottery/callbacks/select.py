"""Which tensors a ticket prunes and at what rate: the weights of Linear and Conv layers by default, or names
(globs) or a filter; the output layer and ``layer_rates`` / ``conv_rate`` get their own rates."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping, Sequence

from torch import nn

from lottery.config import PruneConfig
from lottery.init import members_of

PRUNABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
ParamFilter = Callable[[str, nn.Module, nn.Parameter], bool]


def select_parameters(module: nn.Module, parameters: Sequence[str] | ParamFilter | None) -> list[str]:
    owners = {
        f"{prefix}.{n}" if prefix else n: (sub, p)
        for prefix, sub in module.named_modules()
        for n, p in sub.named_parameters(recurse=False)
    }
    if callable(parameters):
        names = [n for n, (sub, p) in owners.items() if parameters(n, sub, p)]
    elif parameters is None:
        names = [n for n, (sub, p) in owners.items() if n.endswith("weight") and (
            isinstance(sub, PRUNABLE) or (members_of(p) and p.dim() >= 3)  # stacked Linear/Conv weights
            or (isinstance(sub, nn.MultiheadAttention) and n.endswith("in_proj_weight")))]
    else:
        names = []
        for pattern in parameters:
            hits = [n for n in owners if fnmatch.fnmatchcase(n, pattern)]
            if not hits:
                raise ValueError(f"parameters: {pattern!r} matches no parameter; parameters are {sorted(owners)}")
            names += [h for h in hits if h not in names]
    if not names:
        raise ValueError(f"parameters: nothing to prune in {type(module).__name__}")
    return names


def output_tensor(module: nn.Module, names: list[str], output_layer: str | None) -> str:
    """The output layer's tensor: ``output_layer`` (a glob), else the module's ``lottery_output_layer``,
    else the last prunable tensor in registration order (``net.4.weight`` of a Sequential MLP)."""
    pattern = output_layer or getattr(module, "lottery_output_layer", None)
    hits = [n for n in names if fnmatch.fnmatchcase(n, pattern)] if pattern else names[-1:]
    if len(hits) != 1:
        raise ValueError(f"output_layer: {pattern!r} matches {len(hits)} prunable tensors ({hits}); it must "
                         f"name exactly one of {names}")
    return hits[0]


def conv_weights(module: nn.Module) -> list[str]:
    """The weights of convolution layers (and of stacked ones, which say ``convolution = True``)."""
    return [f"{n}.weight" for n, m in module.named_modules() if isinstance(m, nn.Conv2d) or getattr(m, "convolution",
                                                                                                     False)]


def rates_of(module: nn.Module, names: list[str], output: str, prune: PruneConfig) -> tuple[dict[str, float], set[str]]:
    """Each tensor's rate and the tensors whose rate is their own: the first ``layer_rates`` pattern that
    matches (convolution weights get ``conv_rate`` first, unless ``layer_rates`` names them exactly), then
    ``output_rate`` for the output layer, else ``rate``."""
    patterns: Mapping[str, float] = {}
    if prune.conv_rate is not None:
        patterns = dict.fromkeys(conv_weights(module), prune.conv_rate)
    patterns = {**patterns, **prune.layer_rates}
    for pattern in prune.layer_rates:
        if not any(fnmatch.fnmatchcase(n, pattern) for n in names):
            raise ValueError(f"layer_rates: {pattern!r} matches no prunable parameter; prunable are {names}")
    rates, own = {}, set()
    for name in names:
        hit = next((r for p, r in patterns.items() if fnmatch.fnmatchcase(name, p)), None)
        if hit is not None:
            rates[name] = hit
            own.add(name)
        elif prune.output_rate is not None and name == output:
            rates[name] = prune.output_rate
            own.add(name)
        else:
            rates[name] = prune.rate
    return rates, own
