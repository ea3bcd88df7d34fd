"""Training the generators: a VAE per layer on a zoo's weight slices; a hypernetwork on the task itself.

Both return the bytes of a generator file (``lottery.init.learned.payload``); the caller names it by its
content hash. Training is seeded, so the same zoo and options give the same file.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
from torch import nn
from tqdm import tqdm

from lottery.generative.zoo import Zoo, slices
from lottery.init.learned import payload
from lottery.init.learned_nets import LayerHypernet, SliceVAE

log = logging.getLogger("lottery")


def fit_vae(zoo: Zoo, *, slice_size: int = 16, latent: int = 4, hidden: int = 64, steps: int = 2000,
            batch: int = 512, lr: float = 2e-3, seed: int = 0, progress: bool = True) -> bytes:
    torch.manual_seed(seed)
    nets: dict[str, nn.Module] = {}
    layers, stats = {}, {}
    for name, ws in zoo.weights.items():
        data = torch.cat([slices(w, slice_size) for w in ws]).float()
        std = float(data.std())
        data = data / std
        vae = SliceVAE(data.shape[1], latent, hidden)
        opt = torch.optim.Adam(vae.parameters(), lr=lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
        bar = tqdm(range(steps), desc=f"vae {name}", disable=not progress, leave=False)
        for _ in bar:
            loss = vae.loss(data[torch.randint(len(data), (batch,))])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            bar.set_postfix(nelbo=f"{loss.item():.3f}", refresh=False)
        nets[name] = vae
        calibration = 1.0 / prior_spread(vae)
        layers[name] = {"shape": list(ws[0].shape), "slice": data.shape[1], "std": std * calibration}
        stats[name] = {"slices": len(data), "mean": float(data.mean() * std), "std": std,
                       "calibration": calibration, "final_nelbo": loss.item()}
        log.info(f"vae {name}: {len(data):,} slices of {data.shape[1]}, zoo std {std:.4f}, samples rescaled "
                 f"×{calibration:.3f}, final −ELBO {loss.item():.3f} per slice")
    meta = {"model": zoo.model, "datasets": zoo.datasets, "runs": [str(r) for r in zoo.runs], "latent": latent,
            "hidden": hidden, "slice": slice_size, "steps": steps, "seed": seed, "zoo": stats}
    return payload("vae", meta, nets, {"layers": layers})


def prior_spread(vae: SliceVAE, n: int = 1 << 16) -> float:
    """The std of prior samples in units of the zoo's std: VAE samples come out 5–15 % too narrow (the
    aggregate posterior is not the prior), so ``fit_vae`` divides it out once, with a fixed draw."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        x = vae.sample(torch.randn(n, vae.latent, generator=g), torch.randn(n, vae.size, generator=g))
    return float(x.std())


def generated_params(hyper: LayerHypernet, net: nn.Module, generator: torch.Generator | None = None) \
        -> dict[str, torch.Tensor]:
    """Every parameter of ``net`` from the hypernetwork with fresh noise (biases 0, norm weights 1)."""
    params = dict(net.named_parameters())
    names = [n for n, p in params.items() if p.dim() >= 2]
    arch = [tuple(params[n].shape) for n in names]
    out = {n: (torch.ones_like(p) if n.endswith("weight") else torch.zeros_like(p)) for n, p in params.items()}
    codes = [torch.randn(shape[0], hyper.noise, generator=generator) for shape in arch]
    for i, (name, shape) in enumerate(zip(names, arch, strict=True)):
        out[name] = hyper(arch, i, codes.__getitem__, torch.randn(shape, generator=generator))
    return out


def fit_ghn(tasks: Sequence[tuple[str, nn.Module, torch.Tensor, torch.Tensor]], *, hidden: int = 32,
            noise: int = 8, rank: int = 16, steps: int = 1000, batch: int = 128, lr: float = 1e-3, seed: int = 0,
            progress: bool = True) -> tuple[bytes, dict[str, float]]:
    """Train on the task: each step generates one (model, dataset)'s weights and descends its loss.

    ``tasks``: (label, network, normalised images, labels). Returns the file bytes and, per task, the
    test-free accuracy of networks generated afresh on the training images (a sanity check, in the meta).
    """
    torch.manual_seed(seed)
    hyper = LayerHypernet(hidden, noise, rank)
    opt = torch.optim.Adam(hyper.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    bar = tqdm(range(steps), desc="ghn", disable=not progress)
    for step in bar:
        label, net, x, y = tasks[step % len(tasks)]
        idx = torch.randint(len(x), (batch,))
        logits = torch.func.functional_call(net, generated_params(hyper, net), (x[idx],))
        loss = nn.functional.cross_entropy(logits, y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(hyper.parameters(), 5.0)
        opt.step()
        sched.step()
        bar.set_postfix(task=label, loss=f"{loss.item():.3f}", refresh=False)
    accuracy = {}
    with torch.no_grad():
        for label, net, x, y in tasks:
            logits = torch.func.functional_call(net, generated_params(hyper, net), (x[:5000],))
            accuracy[label] = float((logits.argmax(1) == y[:5000]).double().mean())
    meta = {"model": "any", "tasks": [t[0] for t in tasks], "hypernet": {"hidden": hidden, "noise": noise,
            "rank": rank}, "steps": steps, "seed": seed, "train_accuracy_at_init": accuracy,
            "note": "one round of message passing on the chain of layers; trained on the task (as GHN-2)"}
    return payload("ghn", meta, {"hypernet": hyper}, {}), accuracy

