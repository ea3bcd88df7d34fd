"""The experiment config: typed sections, defaults, help text and the checks that need nothing but the values
(what needs a registry, the data or a file on disk is checked in ``lottery.preflight``)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from lottery import checks
from lottery.config.typed import ConfigError, document, non_defaults
from lottery.init.spec import InitSpec


def opt(default: Any, help: str) -> Any:  # noqa: A002  (the metadata key OpenLTH and argparse use)
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass
class DataConfig:
    dataset: str = opt("mnist", "mnist, fashion_mnist or cifar10")
    root: str | None = opt(None, "data root; null: $LOTTERY_DATA, else ~/.cache/lottery/data")
    download: bool = opt(True, "download into the root (or the user cache) when files are missing")
    val_size: int = opt(5000, "training images held out for validation (Frankle & Carbin: 5,000); 0: none")
    split_seed: int = opt(0, "seed of the validation split; kept fixed so every start sees the same split")
    batch_size: int = opt(60, "training batch size")
    eval_batch_size: int = opt(1000, "evaluation batch size")
    augment: bool | None = opt(None, "random crop + flip; null: the dataset's standard recipe (CIFAR on)")
    train_subset: int | None = opt(None, "use only the first N training images (quick runs)")
    test_subset: int | None = opt(None, "use only the first N test images (quick runs)")


@dataclass
class ModelConfig:
    name: str = opt("lenet_300_100", "a registered model (lottery.models.MODELS) or package.module:Class")
    kwargs: dict[str, Any] = opt({}, "keyword arguments of the model builder")


@dataclass
class InitConfig:
    scheme: str = opt("xavier_normal", "initialisation scheme (lottery.init.SCHEMES)")
    scale: float = opt(1.0, "× the scheme's std / bound / gain (0.5 = half, 2 = double)")
    source: str = opt("hash", "hash, sobol, sobol-paper (ignores the seed: one fixed sequence, so its seeds differ "
                              "in batch order only), torch (not regenerable: stores θ0), or a learned "
                              "generator: vae or ghn (with init.generator)")
    bias: str = opt("zeros", "zeros or torch")
    sobol_start_dim: int = opt(1, "first Sobol' dimension in sobol-paper mode")
    generator: str | None = opt(None, "generator file of init.source vae or ghn (python -m lottery.generative fit)")
    seed: int | None = opt(None, "seed of the start; null: the top-level seed")


@dataclass
class OptimConfig:
    name: Literal["adam", "adamw", "sgd"] = opt("adam", "optimiser")
    lr: float = opt(1.2e-3, "learning rate")
    momentum: float = opt(0.0, "SGD momentum")
    nesterov: bool = opt(False, "Nesterov momentum (SGD)")
    weight_decay: float = opt(0.0, "L2 weight decay")
    milestones: list[int] = opt([], "epochs (from each round's start) at which the LR is multiplied by gamma")
    gamma: float = opt(0.1, "LR factor at each milestone")
    warmup_steps: int = opt(0, "linear LR warm-up steps at the start of each round")
    fused: bool = opt(True, "fused optimiser kernels (1.2–1.4× faster Adam on CPU)")


@dataclass
class PruneConfig:
    rounds: int | None = opt(20, "training rounds, the dense one included")
    target_density: float | None = opt(None, "instead of rounds: prune until this fraction remains")
    epochs_per_round: int = opt(5, "epochs of training per round")
    steps_per_round: int | None = opt(None, "instead of epochs_per_round: optimizer steps per round (Frankle & "
                                            "Carbin: 50,000 at batch 60); needs train.eval_every_steps")
    rate: float = opt(0.2, "fraction of surviving weights pruned per round")
    conv_rate: float | None = opt(None, "rate for convolution weights (Frankle & Carbin: 0.1–0.15); null: rate")
    output_rate: float | None = opt(0.1, "rate for the output layer; null: rate")
    layer_rates: dict[str, float] = opt({}, "per-parameter (glob) rate overrides")
    scope: Literal["layer", "global"] = opt("layer", "layer-wise or one global magnitude threshold")
    criterion: str = opt("magnitude", "pruning score (lottery.pruning.CRITERIA)")
    rewind: Literal["init", "step", "lr", "none"] = opt("init", "what the survivors go back to each round")
    rewind_step: int = opt(0, "step of the snapshot for rewind=step")
    reset_optimizer: bool = opt(True, "clear optimiser state at each rewind")
    control: str | None = opt(None, "a control experiment (lottery.pruning.controls.CONTROLS): reinit, "
                                    "random_prune or signed_constant; null: the ticket itself")
    control_seed: int = opt(1_000_003, "seed offset of the reinit control")
    masks_from: str | None = opt(None, "a finished run's directory: train its per-round masks, each level once, "
                                       "with the control's weights (null control: the ticket itself)")
    masks_of: str | None = opt(None, "what chose the masks of masks_from (e.g. snip), for the table's labels; a "
                                     "grid sets it on the controls of a pruning-at-init cell; null: IMP")
    prune_seed: int = opt(0, "seed of the random criterion")
    at_init: str | None = opt(None, "prune at initialisation instead of IMP: snip, grasp, synflow, magnitude or "
                                    "random (lottery.pruning.at_init): each level's masks chosen afresh on the "
                                    "regenerated w0 at the densities the rates give that level, trained from w0; "
                                    "null: IMP")
    at_init_batches: int = opt(1, "training batches the data-driven scores of prune.at_init (snip, grasp) use")
    invert: bool = opt(False, "keep the lowest scores instead of the highest (Frankle et al. 2021's ablation), for "
                              "prune.at_init and IMP's criterion alike")
    monitor: Literal["val_loss", "val_acc", "test_loss", "test_acc"] = opt(
        "val_loss", "early-stopping metric whose best epoch is recorded per round")
    monitor_mode: Literal["min", "max"] = opt("min", "whether the best monitor value is the min or the max")
    sleeping_thresholds: list[float] = opt([1e-5, 1e-4, 1e-3], "absolute |w − w0| thresholds of sleeping weights")
    sleeping_relative: list[float] = opt([0.01, 0.1], "thresholds × std(w0)")
    sleeping_check: float | None = opt(None, "zero the sleepers below this relative τ and re-measure accuracy")

    def check(self, prefix: str = "prune.") -> None:
        """Every check that needs nothing but these values, worded for the CLI and the callback alike (the
        registries and the mask files are checked where the callback is built). Raises ``ConfigError``."""
        try:
            self._check(prefix)
        except ConfigError:
            raise
        except ValueError as e:  # lottery.checks speaks ValueError
            raise ConfigError(str(e)) from None

    def _check(self, f: str) -> None:
        for name, choices in (("scope", ("layer", "global")), ("rewind", ("init", "step", "lr", "none")),
                              ("monitor_mode", ("min", "max"))):
            checks.choice(f + name, getattr(self, name), choices)
        if (self.rounds is None) == (self.target_density is None) and not (self.masks_from and self.rounds is None):
            raise ConfigError(f"{f}rounds / {f}target_density: give exactly one (set the other to null)")
        for name in ("rounds", "epochs_per_round"):
            checks.at_least(f + name, getattr(self, name), 1, "an integer")
        for name, value, limit in (("rounds", self.rounds, MAX_ROUNDS), ("epochs_per_round", self.epochs_per_round,
                                   MAX_EPOCHS), ("steps_per_round", self.steps_per_round, MAX_STEPS)):
            checks.in_range(f + name, value, 1, limit)
        for name in ("control_seed", "prune_seed"):
            checks.seed(f + name, getattr(self, name))
        for name in ("sleeping_thresholds", "sleeping_relative"):
            for i, tau in enumerate(getattr(self, name)):
                checks.at_least(f"{f}{name}[{i}]", tau, 0, "a threshold")
        checks.at_least(f + "sleeping_check", self.sleeping_check, 0, "a threshold")
        checks.at_least(f + "rewind_step", self.rewind_step, 0, "an integer")
        checks.fraction(f + "target_density", self.target_density, closed_low=False)
        for name in ("rate", "conv_rate", "output_rate"):
            checks.fraction(f + name, getattr(self, name))
        for key, rate in self.layer_rates.items():
            checks.fraction(f"{f}layer_rates.{key}", rate)
        checks.at_least(f + "at_init_batches", self.at_init_batches, 1, "an integer")
        if self.at_init is not None:
            if self.masks_from is not None:
                raise ConfigError(f"{f}at_init: not valid with {f}masks_from (the masks are the source's); remove "
                                  "one of them")
            if self.rewind != "init":
                raise ConfigError(f"{f}rewind: {self.rewind!r} is not valid with {f}at_init (pruning at "
                                  "initialisation trains from w0); use init")
        if self.masks_of is not None and self.masks_from is None:
            raise ConfigError(f"{f}masks_of: {self.masks_of!r} labels the masks of {f}masks_from, which is not set; "
                              "remove it or give masks_from")
        if self.masks_from is not None:
            if self.rewind not in ("init", "step"):
                raise ConfigError(f"{f}rewind: {self.rewind!r} is not valid with {f}masks_from; use init or step")
            if self.target_density is not None:
                raise ConfigError(f"{f}target_density: not valid with {f}masks_from (the levels are the source's); "
                                  f"use {f}rounds")


@dataclass
class TrainConfig:
    steps_per_call: int = opt(8, "optimizer steps per Lightning training_step call: amortises Lightning's "
                              "per-call overhead, same steps and results as 1 (forced to 1 for rewind=step)")
    eval_every: int = opt(1, "evaluate validation and test sets every N epochs (must divide epochs_per_round)")
    eval_every_steps: int | None = opt(None, "instead: evaluate every N optimizer steps, across epoch boundaries "
                                             "(Frankle & Carbin: 100); must divide prune.steps_per_round")
    accelerator: str = opt("cpu", "Lightning accelerator: cpu, gpu, auto, …")
    devices: int | str = opt(1, "Lightning devices")
    strategy: str = opt("auto", "Lightning strategy, e.g. ddp")
    num_nodes: int = opt(1, "machines of a DDP run (Lightning num_nodes; under SLURM, sbatch --nodes)")
    precision: str = opt("32-true", "Lightning precision")
    threads: int = opt(0, "torch CPU threads; 0: all cores, or $OMP_NUM_THREADS when set")
    deterministic: bool = opt(True, "deterministic algorithms (bit-identical reruns on CPU)")
    progress_bar: bool = opt(True, "Lightning's progress bar")
    checkpoint: bool = opt(True, "save last.ckpt every epoch so an interrupted run resumes")
    keep_checkpoint: bool = opt(False, "keep last.ckpt after the run finishes")


@dataclass
class WandbConfig:
    enabled: bool = opt(False, "log to Weights & Biases (respects $WANDB_MODE)")
    project: str = opt("lottery", "W&B project")
    entity: str | None = opt(None, "W&B entity")
    group: str | None = opt(None, "W&B group; null: the start's label")
    tags: list[str] = opt([], "W&B tags")
    mode: Literal["online", "offline", "disabled", None] = opt(None, "W&B mode; null: $WANDB_MODE or online")


@dataclass
class Config:
    name: str = opt("experiment", "experiment name: the run directory's prefix")
    seed: int = opt(0, "seed of the start (unless init.seed) and of the batch order")
    output_dir: str = opt("runs", "where run directories are created")
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    init: InitConfig = field(default_factory=InitConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    prune: PruneConfig = field(default_factory=PruneConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    wandb: WandbConfig = field(default_factory=WandbConfig)

    # keys that change where or how a run is reported, not what it computes
    PRESENTATION = ("name", "output_dir", "data.root", "data.download", "train.threads", "train.progress_bar",
                    "train.checkpoint", "train.keep_checkpoint", "train.steps_per_call")

    def run_hash(self) -> str:
        keys = {k: v for k, v in non_defaults(self).items() if k not in self.PRESENTATION and
                not k.startswith("wandb.")}
        if self.prune.masks_from is not None:  # the source run's name, wherever its directory lies
            source = Path(self.prune.masks_from)
            keys["prune.masks_from"] = (source.parent if source.name == "masks" else source).name
        if self.init.generator is not None:  # named by its content hash, so its name is its identity
            keys["init.generator"] = Path(self.init.generator).name
        return hashlib.sha256(json.dumps(keys, sort_keys=True, default=str).encode()).hexdigest()[:8]

    @property
    def run_name(self) -> str:
        return f"{self.name}-{self.run_hash()}"

    def init_spec(self) -> InitSpec:
        """The start: ``init``'s fields as they are (the same names as ``InitSpec``'s, tested), the seed
        defaulting to the top-level one."""
        fields = {f.name: getattr(self.init, f.name) for f in dataclasses.fields(self.init)}
        return InitSpec(**{**fields, "seed": self.seed if self.init.seed is None else self.init.seed})


for _section in (DataConfig, ModelConfig, InitConfig, OptimConfig, PruneConfig, TrainConfig, WandbConfig, Config):
    document(_section)  # help(PruneConfig) lists the fields with the text --help prints

_NAME = re.compile(r"[A-Za-z0-9._+-]+")
MAX_NAME = 200  # + "-" + 8 hex digits of the run hash stays well under 255 bytes
MAX_THREADS = 1024
MAX_STEPS = 10**9
MAX_ROUNDS, MAX_EPOCHS = 10_000, 1_000_000


def validate(cfg: Config) -> None:
    """The checks beyond types: registries, ranges, consistency. Raises ``ConfigError``."""
    try:
        _validate(cfg)
    except ConfigError:
        raise
    except ValueError as e:  # lottery.checks and the registries speak ValueError
        raise ConfigError(str(e)) from None


def _validate(cfg: Config) -> None:
    # the registries (dataset, model, criterion, control) are checked by lottery.preflight, above this layer
    d, o, p, t = cfg.data, cfg.optim, cfg.prune, cfg.train
    for name in ("batch_size", "eval_batch_size", "train_subset", "test_subset"):
        checks.at_least(f"data.{name}", getattr(d, name), 1, "an integer")
    checks.at_least("data.val_size", d.val_size, 0, "an integer")
    for name, value in (("seed", cfg.seed), ("init.seed", cfg.init.seed), ("data.split_seed", d.split_seed)):
        checks.seed(name, value)
    if not _NAME.fullmatch(cfg.name) or set(cfg.name) == {"."}:
        raise ConfigError(f"name: {cfg.name!r} is not valid; use letters, digits, '.', '_', '+' and '-' (it names "
                          "a folder inside output_dir: no path separators, no '..')")
    if len(cfg.name) > MAX_NAME:
        raise ConfigError(f"name: {cfg.name[:40]!r}… ({len(cfg.name)} characters) is not valid; use at most "
                          f"{MAX_NAME} (it names a folder, and file systems stop at 255 bytes)")
    if "\0" in cfg.output_dir or not cfg.output_dir.strip():
        raise ConfigError(f"output_dir: {cfg.output_dir!r} is not valid; give a folder path (no NUL bytes)")
    cfg.output_dir = os.path.expanduser(cfg.output_dir)  # '~/runs' means the home folder, as in a shell
    checks.in_range("train.threads", t.threads, 0, MAX_THREADS, "an integer (0: all cores)")
    try:
        cfg.init_spec()  # InitSpec checks its own fields
    except ValueError as e:
        raise ConfigError(str(e)) from None
    if o.lr <= 0:
        raise ConfigError(f"optim.lr: {o.lr!r} is not valid; use a learning rate > 0")
    checks.fraction("optim.momentum", o.momentum)
    checks.at_least("optim.weight_decay", o.weight_decay, 0)
    checks.at_least("optim.warmup_steps", o.warmup_steps, 0, "an integer")
    if o.gamma <= 0:
        raise ConfigError(f"optim.gamma: {o.gamma!r} is not valid; use a factor > 0")
    for i, m in enumerate(o.milestones):
        checks.at_least(f"optim.milestones[{i}]", m, 1, "an epoch")
    if o.nesterov and (o.name != "sgd" or o.momentum <= 0):
        raise ConfigError("optim.nesterov: true needs optim.name=sgd and optim.momentum > 0")
    p.check()
    if p.monitor.startswith("val") and d.val_size == 0:
        raise ConfigError(f"prune.monitor: {p.monitor!r} needs a validation split; set data.val_size > 0 "
                          "or monitor test_loss / test_acc")
    checks.at_least("train.eval_every", t.eval_every, 1, "an integer")
    checks.in_range("train.eval_every_steps", t.eval_every_steps, 1, MAX_STEPS)
    if p.steps_per_round is not None:
        if t.eval_every_steps is None:
            raise ConfigError("prune.steps_per_round: needs train.eval_every_steps (evaluations every N steps), so "
                              "that every round ends with an evaluation")
        if p.steps_per_round % t.eval_every_steps:
            raise ConfigError(f"train.eval_every_steps: {t.eval_every_steps} is not valid; it must divide "
                              f"prune.steps_per_round ({p.steps_per_round}) so every round ends with an evaluation")
        if p.rewind == "step":
            raise ConfigError("prune.steps_per_round: not valid with prune.rewind=step yet; use epochs_per_round")
    if t.eval_every_steps is not None and t.eval_every_steps % t.steps_per_call:
        raise ConfigError(f"train.steps_per_call: {t.steps_per_call} is not valid with train.eval_every_steps="
                          f"{t.eval_every_steps}; it must divide it (evaluations fall between calls)")
    if p.epochs_per_round % t.eval_every and p.steps_per_round is None:
        raise ConfigError(f"train.eval_every: {t.eval_every} is not valid; it must divide prune.epochs_per_round "
                          f"({p.epochs_per_round}) so every round ends with an evaluation")
    checks.in_range("train.steps_per_call", t.steps_per_call, 1, MAX_EPOCHS)
