"""Learned starts: w0 decoded by a trained generator from latents drawn by the coordinate hash.

Two generators (after "From Pointwise to Powerhouse", Harder et al. 2023, arXiv 2310.16695):

- ``vae`` (local): one small VAE per layer of a model, trained on slices of that layer's trained weights
  (each conv kernel, or each run of ``slice`` consecutive inputs of a Linear row). w0 of a layer is
  ``dec(z) + σ·ε`` per slice, with z and ε standard normals from the hash keyed by (seed, layer, slice).
- ``ghn`` (global): a hypernetwork that generates any Linear/Conv layer conditioned on the architecture:
  a context vector from the layer's descriptor and its neighbours' (one round of message passing on the
  chain of layers, a small stand-in for GHN-2's gated graph network), row and column codes from
  per-unit hash noise and position, a kernel basis over positions, plus a learned full-rank noise term.

Nothing but the generator is stored: it is one file named by its content hash (``vae-<12 hex>.pt``), which
the InitSpec names. Decoding runs on the CPU in float64 on one thread, so the same spec regenerates the same
bits in any process, whatever its thread count or device.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lottery.checks import not_a
from lottery.generators import STANDARD_NORMAL, HashStream, draw, stream_key
from lottery.init.learned_nets import LayerHypernet, Shape, SliceVAE
from lottery.safe_load import UnsafeFile, first_non_finite, load_weights_only

FORMAT = "lottery-generator/1"
KINDS = ("vae", "ghn")
FILE_NAME = re.compile(r"^(vae|ghn)-([0-9a-f]{12})\.pt$")


class GeneratorError(ValueError):
    """A generator file that is missing, corrupt, of the wrong kind, or that does not fit the layer."""


@dataclass(frozen=True)
class VAELayer:
    shape: Shape
    slice: int
    std: float
    vae: SliceVAE


@dataclass(frozen=True)
class Generator:
    kind: str
    digest: str
    meta: dict[str, Any]
    layers: dict[str, VAELayer] | None = None
    hypernet: LayerHypernet | None = None


def payload(kind: str, meta: dict[str, Any], nets: dict[str, nn.Module], extra: dict[str, Any]) -> bytes:
    """The bytes of a generator file (float64 weights, so decoding needs no conversion)."""
    state = {name: {k: v.detach().to(torch.float64) for k, v in net.state_dict().items()} for name, net in nets.items()}
    buf = io.BytesIO()
    torch.save({"format": FORMAT, "kind": kind, "meta": meta, "state": state, **extra}, buf)
    return buf.getvalue()


def file_name(kind: str, data: bytes) -> str:
    return f"{kind}-{hashlib.sha256(data).hexdigest()[:12]}.pt"


@functools.lru_cache(maxsize=8)
def _load(path: str, mtime_ns: int, size: int) -> Generator:
    data = Path(path).read_bytes()
    name = FILE_NAME.match(Path(path).name)
    assert name is not None
    digest = hashlib.sha256(data).hexdigest()
    if not digest.startswith(name.group(2)):
        raise GeneratorError(f"init.generator: {path} is corrupt: its content hash is {digest[:12]} but its name "
                             f"says {name.group(2)}; fit it again (python -m lottery.generative fit …)")
    try:
        blob = load_weights_only(data)
    except UnsafeFile as e:
        raise GeneratorError(f"init.generator: {path} {e}; fit one with python -m lottery.generative fit") from None
    except Exception as e:  # noqa: BLE001  (any unpickling failure means the same thing to the user)
        raise GeneratorError(f"init.generator: {path} cannot be read ({type(e).__name__}: {e})") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT or blob.get("kind") != name.group(1):
        raise GeneratorError(f"init.generator: {path} is not a {name.group(1)} generator of format {FORMAT}")
    bad = first_non_finite(blob.get("state"))  # a start of NaN would train on NaN from the first step
    if bad:
        raise GeneratorError(f"init.generator: {path} is damaged: it holds non-finite weights ({bad}); fit it again "
                             "(python -m lottery.generative fit …)")
    try:  # a file with the right name and format whose contents are incomplete or cut
        return _build(blob, digest)
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as e:
        why = " ".join(str(e).split())[:160]
        raise GeneratorError(f"init.generator: {path} is incomplete or damaged ({type(e).__name__}: {why}); fit it "
                             "again (python -m lottery.generative fit …)") from None


def _build(blob: dict[str, Any], digest: str) -> Generator:
    meta, state = blob["meta"], blob["state"]
    if blob["kind"] == "ghn":
        net = LayerHypernet(**meta["hypernet"]).to(torch.float64)
        net.load_state_dict(state["hypernet"])
        return Generator("ghn", digest, meta, hypernet=net.eval())
    layers = {}
    for pname, info in blob["layers"].items():
        vae = SliceVAE(info["slice"], meta["latent"], meta["hidden"]).to(torch.float64)
        vae.load_state_dict(state[pname])
        layers[pname] = VAELayer(tuple(info["shape"]), info["slice"], info["std"], vae.eval())
    return Generator("vae", digest, meta, layers=layers)


def load(path: str | Path, kind: str | None = None) -> Generator:
    """Read and verify a generator file (cached per path and modification time)."""
    p = Path(path)
    if not FILE_NAME.match(p.name):
        raise GeneratorError(f"init.generator: {str(path)!r} is not a generator file name; generator files are "
                             "named by kind and content hash, e.g. vae-1a2b3c4d5e6f.pt (lottery.generative fit "
                             "writes them; keep the name when you copy one)")
    if not p.is_file():
        raise GeneratorError(f"init.generator: {str(path)!r} {not_a(p, 'file')}; fit one with "
                             "python -m lottery.generative fit vae|ghn …")
    stat = p.stat()
    gen = _load(str(p.resolve()), stat.st_mtime_ns, stat.st_size)
    if kind is not None and gen.kind != kind:
        raise GeneratorError(f"init.generator: {p.name} is a {gen.kind} generator, but init.source is {kind!r}")
    return gen


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def normals(seed: int, tag: str, n: int) -> torch.Tensor:
    return draw(HashStream(stream_key(seed, tag)), n, STANDARD_NORMAL, torch.float64)


def vae_layer(gen: Generator, name: str, shape: Shape, ordinal: int | None = None) -> VAELayer:
    """The VAE of layer ``name``: by name when the module is the zoo's model, else by position (the
    ``ordinal``-th weight tensor, of the same kind: Linear or conv with the same kernel size), so a user's own
    784-300-100-10 named ``net.0.weight`` … finds the zoo's ``1.weight`` …."""
    assert gen.layers is not None
    layer = gen.layers.get(name)
    if layer is None and ordinal is not None and ordinal < len(gen.layers):
        candidate = list(gen.layers.values())[ordinal]
        same_kind = len(candidate.shape) == len(shape) and tuple(candidate.shape[2:]) == tuple(shape[2:])
        layer = candidate if same_kind else None
    if layer is None:
        have = ", ".join(f"{n} {tuple(v.shape)}" for n, v in gen.layers.items())
        where = "" if ordinal is None else f" (weight tensor {ordinal + 1}, shape {tuple(shape)})"
        raise GeneratorError(f"init.generator: the vae generator (fitted on {gen.meta['model']}) has no VAE for "
                             f"layer {name!r}{where}; it has {have}, matched by name or else by position and kind. "
                             "Fit one on runs of this model")
    if len(shape) != len(layer.shape):
        raise GeneratorError(f"init.generator: layer {name!r} has shape {shape} but the VAE was fitted on "
                             f"{layer.shape}: a {len(layer.shape)}-d weight cannot be sliced into a {len(shape)}-d one")
    if len(shape) > 2 and math.prod(shape[2:]) != layer.slice:
        raise GeneratorError(f"init.generator: layer {name!r} has {'×'.join(map(str, shape[2:]))} kernels but the "
                             f"VAE generates {'×'.join(map(str, layer.shape[2:]))} kernels; fit one for this kernel")
    return layer


def fan_in(shape: Shape) -> int:
    return shape[1] * math.prod(shape[2:])


def vae_values(gen: Generator, seed: int, name: str, shape: Shape, ordinal: int | None = None) -> torch.Tensor:
    """Conv: one slice per kernel. Linear: each row in runs of ``slice`` inputs, the last run cut to fit."""
    layer = vae_layer(gen, name, shape, ordinal)
    size = layer.slice
    chunks = 1 if len(shape) > 2 else -(-shape[1] // size)
    n = shape[0] * (shape[1] if len(shape) > 2 else chunks)
    z = normals(seed, f"{name}#vae-z", n * layer.vae.latent).reshape(n, -1)
    eps = normals(seed, f"{name}#vae-eps", n * size).reshape(n, size)
    with torch.no_grad(), single_thread():
        x = layer.vae.sample(z, eps)
    # a layer of another width keeps the fitted layer's std per unit of 1/√fan_in
    x = x * (layer.std * math.sqrt(fan_in(layer.shape) / fan_in(shape)))
    if len(shape) == 2:
        x = x.reshape(shape[0], chunks * size)[:, : shape[1]]
    return x.reshape(shape)


def ghn_values(gen: Generator, seed: int, name: str, arch: Sequence[Shape], index: int) -> torch.Tensor:
    net = gen.hypernet
    assert net is not None
    shape = arch[index]
    if len(shape) not in (2, 4):
        raise GeneratorError(f"init.generator: the ghn generates Linear and Conv2d weights; layer {name!r} has "
                             f"shape {shape}")
    def codes(layer: int) -> torch.Tensor:  # keyed by the layer's place, so the next layer finds the same codes
        return normals(seed, f"#ghn-units-{layer}", arch[layer][0] * net.noise).reshape(arch[layer][0], -1)

    eps = normals(seed, f"{name}#ghn-eps", math.prod(shape)).reshape(shape)
    with torch.no_grad(), single_thread():
        return net(arch, index, codes, eps)


def learned_values(source: str, path: str, seed: int, name: str, arch: Sequence[Shape], index: int) -> torch.Tensor:
    gen = load(path, source)
    if source == "vae":
        return vae_values(gen, seed, name, arch[index], index)
    return ghn_values(gen, seed, name, arch, index)


def check_fits(source: str, path: str | Path, shapes: dict[str, Shape]) -> None:
    """Before training: the file is sound, of the source's kind, and can generate every weight tensor."""
    gen = load(path, source)
    for ordinal, (name, shape) in enumerate(shapes.items()):
        if source == "vae":
            vae_layer(gen, name, shape, ordinal)
        elif len(shape) not in (2, 4):
            raise GeneratorError(f"init.generator: the ghn generates Linear and Conv2d weights; layer {name!r} has "
                                 f"shape {shape}")
