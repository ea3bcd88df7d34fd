"""Every registered model: shapes, published sizes, forward/backward, and one IMP round on synthetic data."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lottery.callbacks import LotteryTicket
from lottery.classifier import Classifier
from lottery.config import PruneConfig
from lottery.data import DATASETS, TensorBatches
from lottery.init import InitSpec, initialize
from lottery.models import MODELS, build, resolve
from tests.lightning_helpers import trainer

UNIQUE = sorted({builder: name for name, builder in sorted(MODELS.items(), reverse=True)}.values())
CIFAR = DATASETS["cifar10"].shape
MNIST = DATASETS["mnist"].shape


def home_shape(name: str) -> tuple[int, int, int]:
    return MNIST if name.startswith("lenet") else CIFAR


@pytest.mark.parametrize("name", UNIQUE)
def test_forward_backward_on_dataset_shapes(name: str) -> None:
    for shape in {MNIST, CIFAR, home_shape(name)}:
        net = build(name, shape, 10)
        x = torch.randn(3, *shape)
        out = net(x)
        assert out.shape == (3, 10)
        out.logsumexp(-1).sum().backward()
        grads = [p.grad for p in net.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads), name


@pytest.mark.parametrize(
    ("name", "shape", "count"),
    [
        ("lenet_300_100", MNIST, 266_610),  # 784·300 + 300·100 + 100·10 weights + 410 biases
        ("lenet5", MNIST, 61_706),  # LeCun et al. 1998 (with a padded first conv)
        ("resnet20", CIFAR, 272_474),  # He et al. 2016: 0.27M
        ("resnet56", CIFAR, 855_770),  # 0.85M
    ],
)
def test_parameter_counts_match_the_literature(name: str, shape: tuple[int, int, int], count: int) -> None:
    assert sum(p.numel() for p in build(name, shape, 10).parameters()) == count


def test_conv_and_vgg_sizes_are_those_of_frankle_and_carbin_and_openlth() -> None:
    weights = {n: sum(p.numel() for p in build(n, CIFAR, 10).parameters() if p.dim() > 1) for n in UNIQUE}
    assert round(weights["conv2"] / 1e6, 1) == 4.3  # F&C Table 1
    assert round(weights["conv4"] / 1e6, 1) == 2.4
    assert round(weights["vgg16"] / 1e6, 1) == 14.7  # OpenLTH cifar_vgg_16
    assert round(weights["vgg19"] / 1e6, 1) == 20.0


@pytest.mark.parametrize("name", UNIQUE)
def test_one_imp_round_on_synthetic_data(name: str) -> None:
    shape = home_shape(name)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, *shape, generator=g), torch.randint(0, 10, (16,), generator=g)
    net = build(name, shape, 10)
    initialize(net, InitSpec(seed=3, scheme="kaiming_normal"))
    lottery = LotteryTicket(
        PruneConfig(
            rounds=2, steps_per_round=2, rate=0.2, sleeping_thresholds=(), sleeping_relative=(), output_rate=None
        ),
        verbose=False,
    )
    module = Classifier(net, lr=1e-3, eval_names=("val",))
    trainer(callbacks=[lottery], max_epochs=-1, limit_val_batches=0).fit(module, TensorBatches(x, y, 8, shuffle=True))
    assert lottery.done and len(lottery.history) == 2
    for pname, mask in lottery.masks.items():
        param = dict(module.named_parameters())[pname]
        assert abs(mask.float().mean().item() - 0.8) < 0.01 or mask.numel() < 50, pname
        assert (param[~mask] == 0).all(), f"{name}: pruned weights of {pname} are not zero"
    prunable = {n for n, m in net.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))}
    assert {n.removeprefix("model.").removesuffix(".weight") for n in lottery.masks} == prunable


def test_a_users_model_by_import_path() -> None:
    net = build("tests.custom_model:TinyNet", MNIST, 10, hidden=7)
    assert net(torch.randn(2, *MNIST)).shape == (2, 10) and net[1].out_features == 7
    with pytest.raises(ValueError, match="'width' is not an argument of tests.custom_model:TinyNet; choose from hid"):
        build("tests.custom_model:TinyNet", MNIST, 10, width=2)
    with pytest.raises(ValueError, match="cannot import 'tests.custom_model:Nope'"):
        resolve("tests.custom_model:Nope")
    with pytest.raises(ValueError, match="'tests.custom_model:not_a_module' is a function, not an nn.Module class"):
        build("tests.custom_model:not_a_module", MNIST, 10)  # refused before it is called
    assert build("tests.custom_model:tiny_builder", MNIST, 10)[1].out_features == 5  # a registered builder
    with pytest.raises(ValueError, match="returned int, not an nn.Module"):
        build("tests.custom_model:broken_builder", MNIST, 10)
    with pytest.raises(ValueError, match="model.name: 'lenet' is not valid; choose one of .*lenet5"):
        resolve("lenet")
