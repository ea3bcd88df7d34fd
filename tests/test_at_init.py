"""Pruning-at-initialisation scores (issue 35 §1) against direct computations: finite differences for SNIP's
gradient and GraSP's Hessian-gradient product, SynFlow's closed form on a linear network, SNIP as the mask
gradient (Synaptic-Flow's formulation), and SynFlow's point: iterated, it does not collapse a layer where
magnitude pruning does."""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from lottery.pruning.at_init import GRASP_TEMPERATURE, SCORERS, collapsed, forward_of, prune_at_init, state_at


def tiny(bias: bool = True, act: type[nn.Module] = nn.Tanh) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3, bias=bias), act(), nn.Linear(3, 2, bias=bias)).double()


def batches(n: int = 2) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(5, 4, generator=g, dtype=torch.float64), torch.randint(0, 2, (5,), generator=g))
            for _ in range(n)]


NAMES = ["0.weight", "2.weight"]


def score(method: str, model: nn.Module, data: list, names: list[str] = NAMES) -> dict[str, torch.Tensor]:
    return SCORERS[method](forward_of(model), state_at(model), names, data, 0)


def total_loss(model: nn.Module, params: dict[str, torch.Tensor], data: list, temperature: float = 1.0) -> torch.Tensor:
    return sum(F.cross_entropy(functional_call(model, params, (x,)) / temperature, y) for x, y in data)


def finite_difference_grad(model: nn.Module, data: list, temperature: float = 1.0, shift: dict | None = None,
                           eps: float = 1e-6) -> dict[str, torch.Tensor]:
    """∂L/∂w by central differences, coordinate by coordinate (no autograd), at w + ``shift``."""
    base = {k: v.detach().clone() + (shift or {}).get(k, 0.0) for k, v in model.named_parameters()}
    out = {}
    for name in NAMES:
        grad = torch.zeros_like(base[name])
        for i in range(base[name].numel()):
            for sign in (1, -1):
                p = {k: v.clone() for k, v in base.items()}
                p[name].view(-1)[i] += sign * eps
                grad.view(-1)[i] += sign * float(total_loss(model, p, data, temperature)) / (2 * eps)
        out[name] = grad
    return out


def test_snip_is_the_loss_gradient_times_the_weight() -> None:
    model, data = tiny(), batches()
    scores = score("snip", model, data)
    fd = finite_difference_grad(model, data)
    for name, w in zip(NAMES, (model[0].weight, model[2].weight), strict=True):
        torch.testing.assert_close(scores[name], (fd[name] * w.detach()).abs(), rtol=1e-6, atol=1e-9)


def test_snip_equals_synaptic_flows_mask_gradient() -> None:
    """Synaptic-Flow scores SNIP as |∂L/∂m| with w ⊙ m in the forward pass, normalised by the sum."""
    model, data = tiny(), batches()
    masks = {n: torch.ones_like(p, requires_grad=True) for n, p in model.named_parameters() if n in NAMES}
    params = {n: p.detach() * masks[n] if n in masks else p.detach() for n, p in model.named_parameters()}
    grads = torch.autograd.grad(total_loss(model, params, data), [masks[n] for n in NAMES])
    theirs = [g.abs() / sum(h.abs().sum() for h in grads) for g in grads]
    ours = score("snip", model, data)
    norm = sum(s.sum() for s in ours.values())
    for name, t in zip(NAMES, theirs, strict=True):
        torch.testing.assert_close(ours[name] / norm, t)


def test_grasp_is_the_weight_times_the_hessian_gradient_product() -> None:
    """Hg by central differences of the gradient along g (the gradient from autograd, checked above by finite
    differences for SNIP), against GraSP's double backpropagation. g and H are over the prunable weights (the
    masked parameters of Synaptic-Flow's GraSP), not the biases."""
    model, data = tiny(), batches()
    scores = score("grasp", model, data)
    params = {k: v.detach() for k, v in model.named_parameters()}

    def grad(shift: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        p = {k: (v + shift.get(k, 0.0)).requires_grad_() for k, v in params.items()}
        return dict(zip(p, torch.autograd.grad(total_loss(model, p, data, GRASP_TEMPERATURE), list(p.values())),
                        strict=True))

    g = {k: v for k, v in grad({}).items() if k in NAMES}  # GraSP's g: over the prunable weights, as theirs
    eps = 1e-3 / float(torch.sqrt(sum((v**2).sum() for v in g.values())))  # a step of 1e-3 along g
    plus, minus = grad({k: eps * v for k, v in g.items()}), grad({k: -eps * v for k, v in g.items()})
    for name in NAMES:
        hg = (plus[name] - minus[name]) / (2 * eps)
        torch.testing.assert_close(scores[name], params[name] * hg, rtol=1e-4, atol=1e-12)


def test_synflow_matches_its_closed_form_on_a_linear_network() -> None:
    """R = 1ᵀ|W2||W1|1: ∂R/∂|W1|[i, j] = Σ_k |W2|[k, i] and ∂R/∂|W2|[k, i] = Σ_j |W1|[i, j]."""
    model = tiny(bias=False, act=nn.Identity)
    w1, w2 = model[0].weight.detach().abs(), model[2].weight.detach().abs()
    scores = score("synflow", model, batches())
    torch.testing.assert_close(scores["0.weight"], w1 * w2.sum(0)[:, None])
    torch.testing.assert_close(scores["2.weight"], w2 * w1.sum(1)[None, :])
    assert torch.equal(model[0].weight.detach().abs(), w1) and (model[0].weight < 0).any()  # model untouched


def deep() -> nn.Sequential:
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(20, 20), nn.ReLU(), nn.Linear(20, 20), nn.ReLU(), nn.Linear(20, 2))
    with torch.no_grad():
        net[2].weight.mul_(1e-3)  # a layer of small weights: the first that global magnitude pruning empties
    return net


DEEP = ["0.weight", "2.weight", "4.weight"]
EVERY_5 = dict.fromkeys(DEEP, 0.05)


def test_iterated_synflow_avoids_the_layer_collapse_of_magnitude_pruning() -> None:
    data, net = [(torch.randn(8, 20), torch.randint(0, 2, (8,)))], deep()
    by_magnitude = prune_at_init(net, state_at(net), EVERY_5, "magnitude", DEEP, data)
    by_synflow = prune_at_init(net, state_at(net), EVERY_5, "synflow", DEEP, data)
    assert collapsed(by_magnitude) == ["2.weight"] and collapsed(by_synflow) == []
    for masks in (by_magnitude, by_synflow):  # 5 % of 840 weights, exactly
        assert sum(int(m.sum()) for m in masks.values()) == 42


def test_layerwise_keeps_each_layers_share_and_invert_keeps_the_lowest() -> None:
    data = [(torch.randn(8, 20), torch.randint(0, 2, (8,)))]
    targets = {"0.weight": 0.25, "2.weight": 0.25, "4.weight": 0.5}  # e.g. the output layer at its own rate
    net = deep()
    layerwise = prune_at_init(net, state_at(net), targets, "magnitude", (), data)
    assert [int(m.sum()) for m in layerwise.values()] == [100, 100, 20] and collapsed(layerwise) == []
    inverted = prune_at_init(net, state_at(net), targets, "magnitude", (), data, invert=True)
    for name, w in zip(DEEP, (net[0].weight, net[2].weight, net[4].weight), strict=True):
        kept, dropped = w.detach().abs()[inverted[name]], w.detach().abs()[~inverted[name]]
        assert kept.max() <= dropped.min()
        assert not (inverted[name] & layerwise[name]).any()


@pytest.mark.parametrize("method", sorted(SCORERS))
def test_every_method_is_deterministic_and_leaves_the_model_alone(method: str) -> None:
    data = [(torch.randn(8, 20, generator=torch.Generator().manual_seed(2)), torch.tensor([0, 1] * 4))]
    net = deep()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    first = prune_at_init(net, state_at(net), dict.fromkeys(DEEP, 0.1), method, DEEP, data, key=7)
    again = prune_at_init(net, state_at(net), dict.fromkeys(DEEP, 0.1), method, DEEP, data, key=7)
    assert all(torch.equal(first[n], again[n]) for n in DEEP)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    if method == "random":
        other = prune_at_init(net, state_at(net), dict.fromkeys(DEEP, 0.1), method, DEEP, data, key=8)
        assert any(not torch.equal(first[n], other[n]) for n in DEEP)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"method": "snipp"}, "method: 'snipp' is not valid"),
    ({"targets": {"0.weight": 0.0}}, "density of 0.weight: 0.0 is not valid")])
def test_bad_arguments_say_which(kwargs: dict, message: str) -> None:
    args = {"targets": dict.fromkeys(DEEP, 0.5), "method": "magnitude", **kwargs}
    with pytest.raises(ValueError, match=message):
        net = deep()
        prune_at_init(net, state_at(net), **args)


# ---------------------------------------------------------------- through the CLI config and a real Trainer
from lottery.config import ConfigError, load  # noqa: E402
from lottery.data import DATASETS  # noqa: E402
from lottery.init import InitSpec, initialize  # noqa: E402
from lottery.models import build  # noqa: E402
from lottery.preflight import check_config  # noqa: E402
from lottery.pruning.levels import load_levels  # noqa: E402
from lottery.runner import run, run_dir  # noqa: E402
from tests.test_train_cli import CONFIGS, QUICK  # noqa: E402


def _run(tmp_path, *more: str) -> tuple[list[dict[str, torch.Tensor]], dict]:
    cfg = load(CONFIGS / "lenet300_mnist.yaml", ["prune.rounds=4", "prune.epochs_per_round=1", "seed=3",
                                                 f"output_dir={tmp_path}", *QUICK, *more])
    result = run(cfg)
    return load_levels(str(run_dir(cfg)), 4), result


@pytest.mark.usefixtures("mnist_root")
def test_magnitude_at_init_chooses_imps_large_init_masks_level_by_level(tmp_path) -> None:
    """|w0| ranks the weights once, so pruning at initialisation to each level's densities keeps, level by
    level, what IMP with the large_init criterion keeps (which prunes the survivors of the level before)."""
    pai, result = _run(tmp_path / "pai", "prune.at_init=magnitude")
    imp, _ = _run(tmp_path / "imp", "prune.criterion=large_init")
    assert all(torch.equal(pai[k][n], imp[k][n]) for k in range(4) for n in pai[k])
    assert [r["collapsed_layers"] for r in result["rounds"]] == [0, 0, 0, 0]


@pytest.mark.usefixtures("mnist_root")
def test_synflow_masks_are_scored_on_the_regenerated_w0(tmp_path) -> None:
    """Level 2's masks of a run equal SynFlow computed here on the network regenerated from the seed (the
    trained weights of rounds 0 and 1 play no part)."""
    pai, _ = _run(tmp_path, "prune.at_init=synflow", "prune.output_rate=null")
    info = DATASETS["mnist"]
    net = initialize(build("lenet_300_100", info.shape, info.classes), InitSpec(seed=3, scheme="xavier_normal"))
    names = ["1.weight", "3.weight", "5.weight"]
    direct = prune_at_init(net, state_at(net), dict.fromkeys(names, 0.8**2), "synflow",
                           batches=[(torch.zeros(1, 1, 28, 28), torch.zeros(1, dtype=torch.long))])
    for name in names:
        assert torch.equal(pai[2][f"model.{name}"], direct[name]), name
    assert not torch.equal(pai[2]["model.1.weight"], pai[1]["model.1.weight"])


def test_at_init_refuses_what_it_cannot_do() -> None:
    for more, message in ((["prune.at_init=synflow", "prune.rewind=lr"],
                           "prune.rewind: 'lr' is not valid with prune.at_init"),
                          (["prune.at_init=snipp"], "prune.at_init: 'snipp' is not valid; choose one of grasp, "
                                                    "magnitude, random, snip, synflow")):
        with pytest.raises(ConfigError, match=re.escape(message)):
            check_config(load(CONFIGS / "lenet300_mnist.yaml", more))


@pytest.mark.usefixtures("mnist_root")
def test_the_ablations_of_a_pai_mask_are_the_controls_on_its_saved_levels(tmp_path) -> None:
    """Frankle et al. 2021's shuffle (random positions, the same count per layer) and reinit train a PaI run's
    masks through ``prune.masks_from``, like a ticket's."""
    pai, _ = _run(tmp_path / "pai", "prune.at_init=snip")
    source = run_dir(load(CONFIGS / "lenet300_mnist.yaml", ["prune.rounds=4", "prune.epochs_per_round=1", "seed=3",
                                                            f"output_dir={tmp_path / 'pai'}", *QUICK,
                                                            "prune.at_init=snip"]))
    shuffled, _ = _run(tmp_path / "shuffle", f"prune.masks_from={source}", "prune.control=random_prune",
                       "prune.rounds=null")
    for k in range(1, 4):
        for name, mask in pai[k].items():
            assert int(shuffled[k][name].sum()) == int(mask.sum())
            assert not torch.equal(shuffled[k][name], mask)


@pytest.mark.usefixtures("mnist_root")
def test_prune_invert_keeps_the_lowest_scores(tmp_path) -> None:
    inverted, _ = _run(tmp_path, "prune.at_init=magnitude", "prune.invert=true")
    info = DATASETS["mnist"]
    net = initialize(build("lenet_300_100", info.shape, info.classes), InitSpec(seed=3, scheme="xavier_normal"))
    for name, w in net.named_parameters():
        if name.endswith("weight"):
            mask, size = inverted[1][f"model.{name}"], w.detach().abs()
            assert size[mask].max() <= size[~mask].min() and 0 < int(mask.sum()) < mask.numel()


def test_pruning_at_init_in_a_users_own_trainer_and_module(tmp_path) -> None:
    """The callback in a plain script: SynFlow's masks at every level chosen on the module's regenerated w0 (the
    same as scoring the module at fit start), the output layer kept alive, and the collapse count recorded."""
    from lottery.callbacks import LotteryTicket
    from tests.lightning_helpers import PlainClassifier, quick_prune, synthetic, trainer

    module = PlainClassifier()
    ticket = LotteryTicket(quick_prune(rounds=3, rate=0.7, at_init="synflow", scope="global"),
                           init=InitSpec(seed=5), save_masks=str(tmp_path / "masks"))
    train, val = synthetic()
    trainer(max_epochs=3, callbacks=[ticket]).fit(module, train, val)
    levels = load_levels(str(tmp_path / "masks"), 3)
    fresh = initialize(PlainClassifier(), InitSpec(seed=5))
    names = ["net.0.weight", "net.2.weight", "net.4.weight"]
    for k in (1, 2):
        direct = prune_at_init(fresh, state_at(fresh), dict.fromkeys(names, 0.3**k), "synflow", names,
                               batches=[(torch.zeros(1, 20), torch.zeros(1, dtype=torch.long))])
        assert all(torch.equal(levels[k][n], direct[n]) for n in names), k
    assert [r["collapsed_layers"] for r in ticket.history] == [0, 0, 0]
    assert 0 < int(levels[2]["net.4.weight"].sum()) < levels[2]["net.4.weight"].numel()
