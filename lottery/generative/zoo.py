"""The model zoo a VAE generator learns from: dense trained networks, read from finished run directories.

``train_zoo`` trains one (dense, one-round) run per dataset and seed with ``lottery.train`` and keeps its
checkpoint; ``collect`` reads the trained weights back. A zoo holds one model (the VAEs are per layer).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml

from lottery.build import build_datamodule
from lottery.config import ConfigError, load
from lottery.config.yaml_text import load_yaml
from lottery.data import DataMissingError
from lottery.preflight import check_config
from lottery.rundir import is_finished, run_dir
from lottery.runner import run
from lottery.safe_load import load_weights_only, unreadable

log = logging.getLogger("lottery")
PRUNED = 0.005  # a layer with more exact zeros than this was pruned: not a dense trained network


@dataclass
class Zoo:
    model: str
    runs: list[str] = field(default_factory=list)
    datasets: list[str] = field(default_factory=list)
    weights: dict[str, list[torch.Tensor]] = field(default_factory=dict)  # name → one tensor per run


def train_zoo(config: str, overrides: list[str], datasets: list[str], seeds: list[int]) -> list[Path]:
    """One dense run per dataset × seed (skipped when finished); returns their directories."""
    cells = [(d, s) for d in datasets for s in seeds]
    cfgs = []
    for dataset, seed in cells:  # every config checked first, so a bad one does not wait for others to train
        cfg = check_config(load(config, [*overrides, f"data.dataset={dataset}", f"seed={seed}", "prune.rounds=1",
                                         "train.keep_checkpoint=true"]))
        cfg.name = f"zoo-{cfg.model.name}-{dataset}-s{seed}"
        cfgs.append(cfg)
    for dataset in dict.fromkeys(datasets):  # and every dataset found (or downloaded) before any training
        first = next(c for c in cfgs if c.data.dataset == dataset)
        try:
            build_datamodule(first).load()
        except (ValueError, DataMissingError) as e:
            raise ConfigError(f"zoo: {e}") from None
    for i, (cfg, (dataset, seed)) in enumerate(zip(cfgs, cells, strict=True)):
        log.info(f"zoo {i + 1}/{len(cells)} · {cfg.model.name} on {dataset}, seed {seed}")
        run(cfg)
    return [run_dir(c) for c in cfgs]


def _read(run: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    cfg_path, ckpt = run / "config.yaml", run / "checkpoints" / "last.ckpt"
    if not cfg_path.is_file():
        raise ConfigError(f"zoo: {run} is not a run directory (no config.yaml)")
    if not is_finished(run):
        raise ConfigError(f"zoo: {run} did not finish (no finished results.json): its checkpoint would be a "
                          "half-trained network; rerun it (python -m lottery.train its config) or leave it out")
    if not ckpt.is_file():
        raise ConfigError(f"zoo: {run} has no checkpoints/last.ckpt; zoo runs keep their weights with "
                          "train.keep_checkpoint=true (python -m lottery.generative zoo does this)")
    try:
        state = load_weights_only(ckpt)["state_dict"]
    except Exception as e:  # noqa: BLE001  (whatever the bytes provoke)
        raise ConfigError(f"zoo: {ckpt} {unreadable(e)}; pass runs that lottery wrote") from None
    weights = {k.removeprefix("model."): v.double() for k, v in state.items()
               if k.startswith("model.") and v.dim() >= 2}
    try:
        cfg = load_yaml(cfg_path.read_text())
    except (ValueError, yaml.YAMLError) as e:
        raise ConfigError(f"zoo: {cfg_path} is not a run config ({e}); pass runs that lottery wrote") from None
    if not isinstance(cfg, dict) or not isinstance(cfg.get("model"), dict) or "name" not in cfg["model"]:
        raise ConfigError(f"zoo: {cfg_path} is not a run config (no model.name); pass runs that lottery wrote")
    return cfg, weights


def collect(runs: list[Path]) -> Zoo:
    """The dense trained weights of the runs; refuses an empty zoo, mixed models and pruned networks."""
    if not runs:
        raise ConfigError("zoo: no runs given; pass finished run directories (python -m lottery.generative zoo "
                          "trains some)")
    zoo: Zoo | None = None
    for folder in runs:
        cfg, weights = _read(Path(folder))
        model = cfg["model"]["name"]
        if zoo is None:
            zoo = Zoo(model, weights={n: [] for n in weights})
        if model != zoo.model:
            raise ConfigError(f"zoo: {folder} trained {model!r} but {zoo.runs[0]} trained {zoo.model!r}; a VAE "
                              "generator learns one model's layers, so fit one generator per model")
        if sorted(weights) != sorted(zoo.weights):
            raise ConfigError(f"zoo: {folder} has layers {sorted(weights)} but the zoo has {sorted(zoo.weights)}")
        for name, w in weights.items():
            first = zoo.weights[name][0] if zoo.weights[name] else w
            if w.shape != first.shape:
                raise ConfigError(f"zoo: {folder}: layer {name!r} has shape {tuple(w.shape)} but {tuple(first.shape)} "
                                  f"in {zoo.runs[0]} (model.kwargs differ); fit one generator per shape")
            zeros = float((w == 0).double().mean())
            if zeros > PRUNED:
                raise ConfigError(f"zoo: {folder}: layer {name!r} is {100 * zeros:.1f} % zeros, so it was pruned; the "
                                  "zoo needs dense trained networks (prune.rounds=1)")
            zoo.weights[name].append(w)
        zoo.runs.append(str(folder))
        if cfg["data"]["dataset"] not in zoo.datasets:
            zoo.datasets.append(cfg["data"]["dataset"])
    assert zoo is not None
    return zoo


def slices(w: torch.Tensor, size: int) -> torch.Tensor:
    """Conv: each kernel. Linear: each row in runs of ``size`` inputs (a partial last run is left out)."""
    if w.dim() > 2:
        return w.reshape(-1, w[0, 0].numel())
    full = (w.shape[1] // size) * size
    if full == 0:
        raise ConfigError(f"zoo: a Linear layer with {w.shape[1]} inputs has no slice of {size}; use --slice "
                          f"≤ {w.shape[1]}")
    return w[:, :full].reshape(-1, size)
