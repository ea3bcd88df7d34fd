"""Pruning at initialisation: scores of the whole network at w0, and the masks they give at a target density.

Scorers (``SCORERS``, one function and one ``@scorer`` line each) take the network's forward pass, its
parameters with the masks applied (pruned weights are zero), the prunable names, a few batches and a key, and
return one score per weight; the highest scores survive (``prune_at_init``):

- ``snip`` (Lee et al. 2019): |∂L/∂w ⊙ w|, the loss gradient summed over the batches;
- ``grasp`` (Wang et al. 2020): w ⊙ Hg, with g the gradient of L/T (T = 200) summed over the batches and Hg by
  double backpropagation. Wang et al. remove the highest of −w ⊙ Hg; keeping the highest of w ⊙ Hg is the same;
- ``synflow`` (Tanaka et al. 2020): data-free. Every parameter replaced by its absolute value (in float64), an
  all-ones input, R = the sum of the output; score |∂R/∂w ⊙ w|. ``prune_at_init`` iterates it, 100 rounds on an
  exponential schedule to the target density, as the paper does to avoid layer collapse;
- ``magnitude`` (|w0|) and ``random`` (uniform scores from the hash generator, keyed).

Checked against direct computations (finite differences, SynFlow's closed form on a linear network) and
against the formulas of ganguli-lab/Synaptic-Flow ``Pruners/pruners.py`` in ``tests/test_at_init.py``. Nothing
here knows about Lightning or rounds; the module is never modified (``torch.func.functional_call``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from lottery.generators import STANDARD_UNIFORM, HashStream, draw, stream_key
from lottery.pruning.select import select_global, select_layerwise

Batch = tuple[torch.Tensor, torch.Tensor]
Tensors = dict[str, torch.Tensor]
Forward = Callable[[Tensors, torch.Tensor], torch.Tensor]  # the network's output from given parameters
Scorer = Callable[[Forward, Tensors, list[str], Sequence[Batch], int], Tensors]
SCORERS: dict[str, Scorer] = {}
GRASP_TEMPERATURE = 200.0  # Wang et al.'s softmax temperature for the gradient whose flow GraSP keeps
SYNFLOW_ITERATIONS = 100


def scorer(name: str) -> Callable[[Scorer], Scorer]:
    def register(fn: Scorer) -> Scorer:
        SCORERS[name] = fn
        return fn

    return register


def forward_of(module: nn.Module) -> Forward:
    """``module``'s forward pass with the parameters (and buffers) given, the module itself untouched."""
    return lambda params, x: functional_call(module, params, (x,))


def _loss_grad(forward: Forward, params: Tensors, names: list[str], batches: Sequence[Batch],
               temperature: float = 1.0, create_graph: bool = False) -> tuple[list[torch.Tensor], Tensors]:
    """∂L/∂w over ``names`` summed over the batches (L: cross-entropy of the output / ``temperature``, mean over
    a batch), and the parameters it was taken at (the named ones requiring grad)."""
    live = {**params, **{n: params[n].detach().clone().requires_grad_() for n in names}}
    weights = [live[n] for n in names]
    total = [torch.zeros_like(w) for w in weights]
    for x, y in batches:
        loss = F.cross_entropy(forward(live, x) / temperature, y)
        grads = torch.autograd.grad(loss, weights, create_graph=create_graph)
        total = [t + g for t, g in zip(total, grads, strict=True)]
    return total, live


@scorer("snip")
def snip(forward: Forward, params: Tensors, names: list[str], batches: Sequence[Batch], key: int) -> Tensors:
    grads, _ = _loss_grad(forward, params, names, batches)
    return {n: (g * params[n]).detach().abs() for n, g in zip(names, grads, strict=True)}


@scorer("grasp")
def grasp(forward: Forward, params: Tensors, names: list[str], batches: Sequence[Batch], key: int) -> Tensors:
    stopped = [g.detach() for g in _loss_grad(forward, params, names, batches, GRASP_TEMPERATURE)[0]]
    hg = [torch.zeros_like(params[n]) for n in names]
    for batch in batches:  # Hg = ∂(g · stop(g))/∂w, one batch's graph at a time
        grads, live = _loss_grad(forward, params, names, [batch], GRASP_TEMPERATURE, create_graph=True)
        z = sum((g * s).sum() for g, s in zip(grads, stopped, strict=True))
        hg = [h + d for h, d in zip(hg, torch.autograd.grad(z, [live[n] for n in names]), strict=True)]
    return {n: (params[n] * h).detach() for n, h in zip(names, hg, strict=True)}


@scorer("synflow")
def synflow(forward: Forward, params: Tensors, names: list[str], batches: Sequence[Batch], key: int) -> Tensors:
    linear = {k: v.detach().double().abs() if v.is_floating_point() else v for k, v in params.items()}
    weights = [linear[n].requires_grad_() for n in names]
    x = batches[0][0]
    out = forward(linear, torch.ones((1, *x.shape[1:]), dtype=torch.float64, device=x.device))
    grads = torch.autograd.grad(out.sum(), weights)
    return {n: (g * w).detach().abs() for n, g, w in zip(names, grads, weights, strict=True)}


@scorer("magnitude")
def magnitude(forward: Forward, params: Tensors, names: list[str], batches: Sequence[Batch], key: int) -> Tensors:
    return {n: params[n].detach().abs() for n in names}


@scorer("random")
def random(forward: Forward, params: Tensors, names: list[str], batches: Sequence[Batch], key: int) -> Tensors:
    return {n: draw(HashStream(stream_key(key, f"pai-random/{n}")), params[n].numel(), STANDARD_UNIFORM,
                    torch.float64, params[n].device).reshape(params[n].shape) for n in names}


def _select(scores: dict[str, torch.Tensor], masks: dict[str, torch.Tensor], targets: dict[str, float],
            pooled: Sequence[str]) -> dict[str, torch.Tensor]:
    """Each tensor keeps its highest scores down to its target; the ``pooled`` ones share one threshold, their
    targets weighted by size (as IMP's global scope)."""
    new = {n: select_layerwise(scores[n], m, targets[n]) for n, m in masks.items() if n not in pooled}
    if pooled:
        kept = select_global([scores[n] for n in pooled], [masks[n] for n in pooled], [targets[n] for n in pooled])
        new.update(zip(pooled, kept, strict=True))
    return {n: new[n] for n in masks}


def prune_at_init(module: nn.Module, params: Tensors, targets: dict[str, float], method: str,
                  pooled: Sequence[str] = (), batches: Sequence[Batch] = (), key: int = 0, invert: bool = False,
                  iterations: int | None = None) -> Tensors:
    """The masks (bool) that ``method`` keeps of the tensors named in ``targets``, each down to its target
    density (the ``pooled`` ones under one global threshold), scored on ``module`` with ``params`` (its
    parameters and buffers at w0; the module itself is not changed). ``iterations``: rounds on an exponential
    schedule to the targets, each re-scoring with the previous round's masks applied (default: 100 for SynFlow,
    1 otherwise). ``invert``: keep the lowest scores instead (Frankle et al. 2021's ablation)."""
    if method not in SCORERS:
        raise ValueError(f"method: {method!r} is not valid; choose one of {', '.join(SCORERS)}")
    for name, density in targets.items():
        if not 0.0 < density <= 1.0:
            raise ValueError(f"density of {name}: {density} is not valid; give a fraction in (0, 1]")
    names, steps = list(targets), iterations or (SYNFLOW_ITERATIONS if method == "synflow" else 1)
    masks = {n: torch.ones_like(params[n], dtype=torch.bool) for n in names}
    training = module.training
    module.eval()  # as Synaptic-Flow's prune loop: normalisation layers use their running statistics
    try:
        for k in range(1, steps + 1):
            masked = {**params, **{n: params[n].detach() * masks[n] for n in names}}
            scores = SCORERS[method](forward_of(module), masked, names, batches, key)
            if invert:
                scores = {n: -s for n, s in scores.items()}
            masks = _select(scores, masks, {n: d ** (k / steps) for n, d in targets.items()}, pooled)
    finally:
        module.train(training)
    return masks


def state_at(module: nn.Module) -> Tensors:
    """A module's parameters and buffers as they are now (detached), for ``prune_at_init``."""
    return {**{n: p.detach() for n, p in module.named_parameters()}, **dict(module.named_buffers())}


def collapsed(masks: dict[str, torch.Tensor]) -> list[str]:
    """The tensors left with no surviving weight: the network is cut there (layer collapse)."""
    return [n for n, m in masks.items() if not bool(m.any())]
