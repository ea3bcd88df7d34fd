"""Stability to SGD noise (Frankle, Dziugaite, Roy & Carbin 2020, linear mode connectivity).

    python -m lottery.stability configs/lenet300_mnist.yaml --steps 0,25,100,500 --out runs/stability

For each rewind step k: train the network from its regenerated w0 for k steps (the config's batch order),
then train two copies from there for the rest of the budget on two other batch orders (``--orders``; the
optimiser restarts at k, as a rewind does), and measure the test error at ``--points`` evenly spaced points of
the straight line between the two trained copies. Instability = the largest error along the line − the mean of
the two ends; below 2 % the network is stable (the paper's threshold). ``--masks RUN_DIR --level L`` does the
same for a ticket: the run's level-L masks, kept on both copies and, because both ends are zero there,
everywhere along the line. Writes ``path.csv`` (k, α, test error), ``stability.csv`` (k, instability, the
ends' errors) and ``stability.png`` to ``--out``; ``stable_step`` of the table is what ``prune.rewind_step``
can take.
"""

from __future__ import annotations

import argparse
import copy
from collections.abc import Iterable
from pathlib import Path

import matplotlib
import pytorch_lightning as pl
import torch
from torch import nn

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from lottery.atomic import write_csv, write_json  # noqa: E402
from lottery.build import build_classifier, build_datamodule, configure_threads  # noqa: E402
from lottery.config import Config, ConfigError, load, to_dict  # noqa: E402
from lottery.console import run_cli, setup  # noqa: E402
from lottery.data import DATASETS  # noqa: E402
from lottery.environment import environment  # noqa: E402
from lottery.init import initialize  # noqa: E402
from lottery.models import build  # noqa: E402
from lottery.preflight import check_config  # noqa: E402
from lottery.pruning import MaskedMultiply  # noqa: E402
from lottery.pruning.levels import MaskSourceError, load_levels  # noqa: E402

STABLE = 0.02  # Frankle et al.: instability below 2 % (test error) counts as stable


class KeepMasks(pl.Callback):
    """Pruned weights stay zero in any ``Trainer``: the masks are applied as training starts and after every
    optimizer step (the ticket's own kernel). ``masks`` are keyed by the ``LightningModule``'s own parameter
    names, as ``LotteryTicket.masks`` and its ``save_masks`` files (``lottery.pruning.levels.load_levels``)
    name them."""

    def __init__(self, masks: dict[str, torch.Tensor]) -> None:
        self.masks = masks

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        params = dict(pl_module.named_parameters())
        if missing := sorted(set(self.masks) - set(params)):
            raise ValueError(f"KeepMasks: the module has no parameters {missing[:3]}; key the masks by the "
                             f"module's own names (such as {next(iter(params), '?')!r})")
        apply = MaskedMultiply([params[n].data for n in self.masks], [m.to(params[n].device)
                                                                      for n, m in self.masks.items()])
        apply()
        for opt in trainer.optimizers:
            opt.register_step_post_hook(lambda *_: apply())


def train(cfg: Config, net: nn.Module, masks: dict[str, torch.Tensor], order: int, steps: int) -> None:
    """``steps`` optimizer steps of ``net`` in place, on batch order ``order``."""
    if steps == 0:
        return
    dm = build_datamodule(cfg, seed=order)
    dm.setup("fit")
    trainer = pl.Trainer(max_steps=steps, max_epochs=-1, accelerator=cfg.train.accelerator, devices=1,
                         logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0,
                         deterministic=cfg.train.deterministic,
                         callbacks=[KeepMasks({f"model.{n}": m for n, m in masks.items()})])
    trainer.fit(build_classifier(cfg, dm, net), dm)


@torch.no_grad()
def error_rate(net: nn.Module, test: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """The fraction of ``test``'s ``(x, y)`` batches that ``net``'s logits get wrong, on ``net``'s device."""
    net.eval()
    device = next(net.parameters()).device
    wrong = total = 0
    for x, y in test:
        wrong += int((net(x.to(device)).argmax(1) != y.to(device)).sum())
        total += len(y)
    return wrong / total


def eval_data(cfg: Config) -> tuple[Iterable[tuple[torch.Tensor, torch.Tensor]], int]:
    """The config's test set as batches (read once), and the optimizer steps of one round."""
    dm = build_datamodule(cfg)
    dm.setup("fit")
    return dm.val_dataloader()[-1], cfg.prune.epochs_per_round * len(dm.train_dataloader())  # val, then test


def interpolate(a: nn.Module, b: nn.Module, alpha: float) -> nn.Module:
    """(1 − α)·a + α·b, parameters and floating buffers alike."""
    out = copy.deepcopy(a)
    sb = b.state_dict()
    out.load_state_dict({k: (1 - alpha) * v + alpha * sb[k] if v.is_floating_point() else v
                         for k, v in a.state_dict().items()})
    return out


def copies(cfg: Config, k: int, total: int, orders: tuple[int, int],
           masks: dict[str, torch.Tensor]) -> tuple[nn.Module, nn.Module]:
    """The two networks trained from step k of the config's own run on batch orders ``orders``."""
    info = DATASETS[cfg.data.dataset]
    net = initialize(build(cfg.model.name, info.shape, info.classes, **cfg.model.kwargs), cfg.init_spec())
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name in masks:
                p.mul_(masks[name])
    train(cfg, net, masks, cfg.seed, k)
    pair = (copy.deepcopy(net), copy.deepcopy(net))
    for c, order in zip(pair, orders, strict=True):
        train(cfg, c, masks, order, total - k)
    return pair


def instability(a: nn.Module, b: nn.Module, points: int,
                test: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> tuple[float, list[float]]:
    """The largest test error along the line from a to b minus the mean of the ends, and the errors at the
    ``points`` evenly spaced points (ends included). ``a`` and ``b``: any two trained copies of one network
    (``nn.Module`` or ``LightningModule``); ``test``: ``(x, y)`` batches, such as a test ``DataLoader``."""
    errors = [error_rate(interpolate(a, b, i / (points - 1)), test) for i in range(points)]
    return max(errors) - (errors[0] + errors[-1]) / 2, errors


def level_masks(run: str, level: int) -> dict[str, torch.Tensor]:
    try:
        held = load_levels(run, level + 1)[level]
    except MaskSourceError as e:
        raise ConfigError(f"--masks: {e}") from None
    return {n.removeprefix("model."): m for n, m in held.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lottery.stability", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config")
    p.add_argument("overrides", nargs="*")
    p.add_argument("--steps", default="0,25,100,500", help="rewind steps k, comma-separated")
    p.add_argument("--train-steps", type=int, help="steps each copy trains in all (default: one round's)")
    p.add_argument("--orders", default="1,2", help="the two copies' batch-order seeds")
    p.add_argument("--points", type=int, default=30, help="points along the line, ends included")
    p.add_argument("--masks", help="a finished run's directory: train its level --level masks")
    p.add_argument("--level", type=int, default=0)
    p.add_argument("--out", default="runs/stability")
    args = p.parse_args(argv)

    def body() -> int:
        setup()
        cfg = check_config(load(args.config, args.overrides))
        cfg.train.steps_per_call = 1  # the masks after every step, and exactly k steps
        configure_threads(cfg.train.threads)
        try:
            steps = sorted({int(s) for s in args.steps.split(",")})
            orders = tuple(int(s) for s in args.orders.split(","))
        except ValueError:
            raise ConfigError(f"--steps / --orders: {args.steps!r} / {args.orders!r}: give integers separated "
                              "by commas") from None
        if len(orders) != 2 or min(steps) < 0 or args.points < 2:
            raise ConfigError("--orders: give two seeds; --steps: k ≥ 0; --points: at least 2")
        test, round_steps = eval_data(cfg)
        total = args.train_steps or round_steps
        if max(steps) > total:
            raise ConfigError(f"--steps: {max(steps)} is beyond the {total} steps a copy trains; give k ≤ {total}")
        masks = level_masks(args.masks, args.level) if args.masks else {}
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        table = []
        for k in steps:
            value, errors = instability(*copies(cfg, k, total, orders, masks), args.points, test)
            table.append((k, value, errors))
            print(f"k = {k}: instability {100 * value:.2f} % (ends {100 * errors[0]:.2f} and "
                  f"{100 * errors[-1]:.2f} % test error){' · stable' if value < STABLE else ''}")
        write(out, table, args.points)
        # what made the table: the resolved config, the study's arguments and the environment, whole
        write_json(out / "stability.json", {"config": to_dict(cfg), "steps": steps, "orders": list(orders),
                                            "points": args.points, "train_steps": total, "masks": args.masks,
                                            "level": args.level if args.masks else None,
                                            "environment": environment()})
        return 0

    return run_cli(body)


def write(out: Path, table: list[tuple[int, float, list[float]]], points: int) -> None:
    """``path.csv``, ``stability.csv`` and ``stability.png``, each written whole or not at all."""
    write_csv(out / "path.csv", [{"k": k, "alpha": f"{i / (points - 1):.6g}", "test_error": f"{e:.6g}"}
                                 for k, _, errors in table for i, e in enumerate(errors)])
    stable = next((k for k, v, _ in table if v < STABLE), None)
    write_csv(out / "stability.csv", [{"k": k, "instability": f"{v:.6g}", "error_a": f"{e[0]:.6g}",
                                       "error_b": f"{e[-1]:.6g}", "stable": v < STABLE, "stable_step": stable}
                                      for k, v, e in table])
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    for k, _, errors in table:
        left.plot([i / (points - 1) for i in range(points)], [100 * e for e in errors], label=f"k = {k}")
    left.set(xlabel="α along the line", ylabel="test error (%)")
    left.legend()
    right.plot([k for k, *_ in table], [100 * v for _, v, _ in table], marker="o")
    right.axhline(100 * STABLE, ls="--", c="grey")
    right.set(xlabel="rewind step k", ylabel="instability (%)")
    fig.tight_layout()
    fig.savefig(out / "stability.png", dpi=100, metadata={"Software": None})
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
