"""Initialise a module from a spec and regenerate any parameter's initial value on demand, storing nothing.

Roles, decided per parameter: tensors of ≥ 2 dims (Linear/Conv/Embedding weights) follow the scheme; 1-d
``*.bias`` beside a ≥ 2-d weight follows the spec's bias rule (other biases, e.g. norm layers', are
0); other 1-d ``*weight`` (norm layers) are ones; anything else zeros.

Stacked members: a parameter marked by ``mark_stacked(param, k)`` holds k networks along dim 0, and the
module is initialised from a sequence of k specs; member m's slice is exactly what spec m gives alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from lottery.generators import HashStream, SobolStream, Transform, draw, stream_key
from lottery.generators.sobol import MAX_DIM
from lottery.init.learned import learned_values
from lottery.init.schemes import SCHEMES, Fans
from lottery.init.spec import LEARNED, InitSpec

SPEC_ATTR = "lottery_init_spec"
MEMBERS_ATTR = "lottery_members"
Specs = InitSpec | Sequence[InitSpec]
Arch = tuple[tuple[int, ...], ...]


class NotRegenerableError(ValueError):
    """Raised when w0 is asked of a start whose source cannot regenerate it (``torch``)."""


def mark_stacked(param: torch.Tensor, members: int) -> torch.Tensor:
    """Declare that dim 0 of ``param`` indexes ``members`` independent networks."""
    if param.shape[0] != members:
        raise ValueError(f"stacked parameter has {param.shape[0]} members along dim 0, expected {members}")
    setattr(param, MEMBERS_ATTR, members)
    return param


def members_of(param: torch.Tensor) -> int | None:
    return getattr(param, MEMBERS_ATTR, None)


def role(name: str, shape: tuple[int, ...]) -> str:
    if len(shape) >= 2:
        return "scheme"
    if name.endswith("bias"):
        return "bias"
    return "ones" if name.endswith("weight") else "zeros"


def member_shape(param: torch.Tensor) -> tuple[int, ...]:
    return tuple(param.shape[1:]) if members_of(param) else tuple(param.shape)


def weight_ordinals(module: nn.Module) -> dict[str, int]:
    """Order of the scheme-initialised tensors: the QRNG paper gives tensor t Sobol' dimension s + t."""
    names = [n for n, p in module.named_parameters() if role(n, member_shape(p)) == "scheme"]
    return {n: i for i, n in enumerate(names)}


def _values(
    spec: InitSpec,
    name: str,
    shape: tuple[int, ...],
    fan_in: int | None,
    ordinal: int,
    dtype: torch.dtype,
    device: torch.device,
    arch: Arch,
) -> torch.Tensor:
    if 0 in shape:
        raise ValueError(f"parameter {name!r} has a zero-size shape {tuple(shape)}; every dimension must be ≥ 1")
    kind = role(name, shape)
    if kind in ("ones", "zeros") or (kind == "bias" and (spec.bias == "zeros" or fan_in is None)):
        return (torch.ones if kind == "ones" else torch.zeros)(shape, dtype=dtype, device=device)
    numel = math.prod(shape)
    key = stream_key(spec.seed, name)
    if kind == "bias":  # torch's nn.Linear/Conv default, regenerable from the hash source
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        return draw(HashStream(key), numel, Transform.uniform(-bound, bound), dtype, device).reshape(shape)

    if spec.source in LEARNED:
        assert spec.generator is not None
        w = learned_values(spec.source, spec.generator, spec.seed, name, arch, ordinal)
        return (w * spec.scale).to(device=device, dtype=dtype)

    start, layout = 0, None
    if spec.source == "hash":
        stream = HashStream(key)
    elif spec.source == "sobol":
        stream = SobolStream.scrambled_for(key, 1 + key % (MAX_DIM - 1), numel)
    elif spec.source == "sobol-paper":
        dim = spec.sobol_start_dim - 1 + ordinal
        if dim >= MAX_DIM:
            raise ValueError(f"sobol-paper: tensor {name!r} would need Sobol' dimension {dim + 1} > {MAX_DIM}")
        # Keras kernel layout (*kernel, in, out), C order, zero point skipped (the paper's exact mapping).
        stream, start = SobolStream(dim), 1
        layout = (*shape[2:], shape[1], shape[0])
    else:
        stream = None

    def values(transform: Transform) -> torch.Tensor:
        if stream is None:  # torch's PRNG: for comparison only, not addressable
            gen = torch.Generator().manual_seed(key & ((1 << 63) - 1))
            u = torch.rand(numel, generator=gen, dtype=torch.float64).clamp_(min=2.0**-53)
            return transform.apply(u).to(device, dtype).reshape(shape)
        flat = draw(stream, numel, transform, dtype, device, start=start)
        if layout is None:
            return flat.reshape(shape)
        k = len(shape) - 2
        return flat.reshape(layout).permute(k + 1, k, *range(k)).contiguous()

    out = SCHEMES[spec.scheme](values, shape, Fans.of(shape), spec.scale)
    return out.to(device=device, dtype=dtype)


def spec_of(module: nn.Module) -> Specs:
    spec = getattr(module, SPEC_ATTR, None)
    if spec is None:
        raise ValueError("module has no init spec: call lottery.init.initialize(module, spec) first or pass spec=")
    return spec


def _member_specs(specs: Specs, name: str, param: torch.Tensor) -> list[InitSpec] | None:
    k = members_of(param)
    if isinstance(specs, InitSpec):
        if k is not None:
            raise ValueError(f"parameter {name!r} stacks {k} members; pass a sequence of {k} InitSpecs")
        return None
    specs = list(specs)
    if k is None or len(specs) != k:
        raise ValueError(f"parameter {name!r} has {k or 'no'} stacked members but {len(specs)} specs were given")
    return specs


def _layout(module: nn.Module) -> tuple[dict[str, nn.Parameter], dict[str, int], Arch]:
    """Parameters by name, the scheme tensors' order, and their shapes in that order (what ghn generates from)."""
    params, ordinals = dict(module.named_parameters()), weight_ordinals(module)
    return params, ordinals, tuple(member_shape(params[n]) for n in ordinals)


def _compute(
    module: nn.Module, name: str, specs: Specs, params: dict[str, nn.Parameter], ordinals: dict[str, int], arch: Arch
) -> torch.Tensor:
    if name not in params:
        raise KeyError(f"{name!r} is not a parameter of {type(module).__name__}; parameters: {sorted(params)}")
    param = params[name]
    per_member = _member_specs(specs, name, param)
    shape = member_shape(param)
    weight = params.get(name[: -len("bias")] + "weight") if name.endswith("bias") else None
    weight_shape = member_shape(weight) if weight is not None else ()
    fan_in = Fans.of(weight_shape).fan_in if len(weight_shape) >= 2 else None  # a BatchNorm bias has none
    args = (shape, fan_in, ordinals.get(name, 0), param.dtype, param.device, arch)
    value = _values(specs, name, *args) if per_member is None else torch.stack(
        [_values(s, name, *args) for s in per_member])
    owner = module.get_submodule(name.rpartition(".")[0])
    if isinstance(owner, nn.Embedding) and owner.padding_idx is not None and name.endswith("weight"):
        value.select(-2, owner.padding_idx).zero_()  # as torch: the padding row starts (and stays) zero
    return value


def check_regenerable(specs: Specs, what: str) -> None:
    for s in [specs] if isinstance(specs, InitSpec) else specs:
        if not s.regenerable:
            raise NotRegenerableError(
                f"init.source 'torch' cannot regenerate w0 of {what}: use a regenerable source "
                "(hash, sobol, sobol-paper) or keep an explicit stored copy (LotteryTicket(init_copy=True))"
            )


def initial_value(module: nn.Module, name: str, spec: Specs | None = None) -> torch.Tensor:
    """w0 of parameter ``name``, regenerated on the parameter's device and dtype; nothing is stored."""
    specs = spec_of(module) if spec is None else spec
    check_regenerable(specs, repr(name))
    return _compute(module, name, specs, *_layout(module))


def initial_state(module: nn.Module, spec: Specs | None = None) -> dict[str, torch.Tensor]:
    """w0 of every parameter (regenerated, not stored)."""
    specs = spec_of(module) if spec is None else spec
    check_regenerable(specs, type(module).__name__)
    layout = _layout(module)
    return {name: _compute(module, name, specs, *layout) for name in layout[0]}


@torch.no_grad()
def initialize(module: nn.Module, spec: Specs) -> nn.Module:
    """Set every parameter from ``spec`` and remember the spec on the module.

    Every source but ``torch`` can regenerate these values later through ``initial_value``.
    """
    specs = spec if isinstance(spec, InitSpec) else tuple(spec)
    layout = _layout(module)
    for name, param in layout[0].items():
        param.copy_(_compute(module, name, specs, *layout))
    setattr(module, SPEC_ATTR, specs)
    return module


def shifted(spec: Specs, shift: int) -> Specs:
    """The start(s) with every seed moved by ``shift`` (the reinit control's w0)."""
    if isinstance(spec, InitSpec):
        return spec.replace(seed=(spec.seed + shift) % 2**63)
    return tuple(s.replace(seed=(s.seed + shift) % 2**63) for s in spec)
