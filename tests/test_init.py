import json
import math

import numpy as np
import pytest
import torch
import yaml
from scipy import stats
from torch import nn

from lottery.init import (
    SCHEMES,
    TARGETS,
    Fans,
    InitSpec,
    NotRegenerableError,
    initial_state,
    initial_value,
    initialize,
    mark_stacked,
)


@pytest.mark.parametrize("shape", [(300, 784), (16, 3, 5, 5), (10, 100), (8, 4, 3)])
def test_fans_equal_torch(shape):
    expected = nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    fans = Fans.of(shape)
    assert (fans.fan_in, fans.fan_out) == expected


@pytest.mark.parametrize("source", ["hash", "sobol"])
@pytest.mark.parametrize("name", sorted(TARGETS))
@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_scheme_matches_formula(source, name, scale):
    layer = nn.Linear(1000, 1000)
    initialize(layer, InitSpec(seed=1, scheme=name, scale=scale, source=source))
    w = layer.weight.detach().double()
    kind, width = TARGETS[name](Fans(1000, 1000), scale)
    if kind == "normal":
        assert abs(float(w.std()) / width - 1) < 0.01
    else:
        assert abs(float(w.abs().max()) / width - 1) < 0.01
        assert abs(float(w.std()) / (width / math.sqrt(3)) - 1) < 0.01
    assert abs(float(w.mean())) < 0.01 * width


def test_half_and_double_scale_the_std():
    widths = {}
    for scale in (0.5, 1.0, 2.0):
        layer = initialize(nn.Linear(500, 400), InitSpec(scheme="xavier_normal", scale=scale))
        widths[scale] = float(layer.weight.std())
    target = math.sqrt(2 / 900)
    assert widths[1.0] == pytest.approx(target, rel=0.01)
    assert widths[0.5] == pytest.approx(target / 2, rel=0.01)
    assert widths[2.0] == pytest.approx(target * 2, rel=0.01)


def test_truncated_normal_is_cut_at_two_sigma():
    layer = initialize(nn.Linear(1000, 1000), InitSpec(scheme="kaiming_truncated_normal"))
    w = layer.weight.detach().double()
    underlying = math.sqrt(2 / 1000) / 0.87962566103423978
    assert float(w.abs().max()) <= 2 * underlying * (1 + 1e-6)


def test_hash_source_passes_ks_against_its_target():
    layer = initialize(nn.Linear(1000, 1000), InitSpec(seed=5, scheme="kaiming_normal"))
    std = math.sqrt(2 / 1000)
    assert stats.kstest(layer.weight.detach().double().flatten().numpy() / std, "norm").pvalue > 0.01


@pytest.mark.parametrize("shape", [(64, 256), (256, 64), (32, 8, 3, 3)])
def test_orthogonal(shape):
    w = torch.empty(shape)
    param = nn.Parameter(w)
    module = nn.Module()
    module.weight = param
    initialize(module, InitSpec(scheme="orthogonal", scale=2.0))
    flat = module.weight.detach().double().reshape(shape[0], -1)
    gram = flat @ flat.t() if flat.shape[0] <= flat.shape[1] else flat.t() @ flat
    torch.testing.assert_close(gram, 4 * torch.eye(gram.shape[0], dtype=torch.float64), atol=1e-5, rtol=0)


def test_zero_scheme():
    square = initialize(nn.Linear(8, 8), InitSpec(scheme="zero")).weight.detach()
    assert torch.equal(square, torch.eye(8))
    wide = initialize(nn.Linear(3, 8), InitSpec(scheme="zero")).weight.detach()  # widening: Hadamard block
    assert torch.allclose(wide.abs(), torch.full((8, 3), 2.0 ** (-(3 - 1) / 2)))
    conv = initialize(nn.Conv2d(4, 4, 3), InitSpec(scheme="zero")).weight.detach()
    assert torch.equal(conv[:, :, 1, 1], torch.eye(4)) and float(conv.abs().sum()) == 4


def net() -> nn.Sequential:
    return nn.Sequential(nn.Linear(20, 30), nn.ReLU(), nn.Linear(30, 10), nn.BatchNorm1d(10))


@pytest.mark.parametrize("source", ["hash", "sobol", "sobol-paper"])
@pytest.mark.parametrize("bias", ["zeros", "torch"])
def test_initial_value_regenerates_exactly(source, bias):
    m = initialize(net(), InitSpec(seed=3, source=source, bias=bias))
    state = initial_state(m)
    for name, p in m.named_parameters():
        assert torch.equal(state[name], p.detach()), name
        assert torch.equal(initial_value(m, name), p.detach())
    assert torch.equal(m[3].weight.detach(), torch.ones(10)) and not m[3].bias.detach().any()
    if bias == "torch":
        bound = 1 / math.sqrt(20)
        assert 0 < float(m[0].bias.abs().max()) <= bound


def test_regenerates_on_dtype_of_parameter():
    m = initialize(net().double(), InitSpec(seed=3))
    assert initial_value(m, "0.weight").dtype == torch.float64
    assert torch.equal(initial_value(m, "0.weight").float(), initialize(net(), InitSpec(seed=3))[0].weight.detach())


def test_adding_another_layer_keeps_values():
    a = initialize(nn.Sequential(nn.Linear(20, 30), nn.Linear(30, 10)), InitSpec(seed=2))
    b = initialize(nn.Sequential(nn.Linear(20, 30), nn.Linear(30, 10), nn.Linear(10, 5)), InitSpec(seed=2))
    assert torch.equal(a[0].weight, b[0].weight) and torch.equal(a[1].weight, b[1].weight)
    c = initialize(nn.Sequential(nn.Linear(20, 30), nn.Linear(30, 10)), InitSpec(seed=3))
    assert not torch.equal(a[0].weight, c[0].weight)


def test_torch_source_initialises_but_refuses_regeneration():
    m = initialize(net(), InitSpec(source="torch", seed=1))
    assert float(m[0].weight.std()) > 0
    with pytest.raises(NotRegenerableError, match="torch"):
        initial_value(m, "0.weight")


def test_stacked_members_equal_individual_networks():
    specs = [InitSpec(seed=s, scheme=sch) for s, sch in [(1, "xavier_normal"), (2, "kaiming_uniform")]]
    stacked = nn.Module()
    stacked.weight = nn.Parameter(torch.empty(2, 30, 20))
    mark_stacked(stacked.weight, 2)
    initialize(stacked, specs)
    for k, spec in enumerate(specs):
        single = nn.Module()
        single.weight = nn.Parameter(torch.empty(30, 20))
        initialize(single, spec)
        assert torch.equal(stacked.weight[k], single.weight)
    with pytest.raises(ValueError, match="stacks 2 members"):
        initial_value(stacked, "weight", specs[0])


def test_spec_round_trips_through_json_and_yaml():
    spec = InitSpec(seed=42, scheme="xavier_uniform", scale=0.5, source="sobol-paper", sobol_start_dim=7)
    assert InitSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    assert InitSpec.from_dict(yaml.safe_load(yaml.safe_dump(spec.to_dict()))) == spec
    assert spec.label == "xavier_uniform×0.5/sobol-paper"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"scheme": "glorot"}, r"init.scheme: 'glorot' is not valid; choose one of .*xavier_normal"),
        ({"source": "qrng"}, r"init.source: 'qrng' is not valid; choose one of hash, sobol, sobol-paper, torch"),
        ({"seed": -1}, r"init.seed: -1 is not valid"),
        ({"seed": 2**64}, r"init.seed: .* is not valid"),
        ({"seed": 1.5}, r"init.seed: 1.5 is not valid"),
        ({"scale": 0}, r"init.scale: 0 is not valid"),
        ({"scale": -2.0}, r"init.scale: -2.0 is not valid"),
        ({"scale": float("nan")}, r"init.scale: nan is not valid"),
        ({"bias": "ones"}, r"init.bias: 'ones' is not valid; choose one of zeros, torch"),
        ({"sobol_start_dim": 0}, r"init.sobol_start_dim: 0 is not valid; use an integer in 1..21201"),
        ({"sobol_start_dim": 21202}, r"init.sobol_start_dim: 21202"),
    ],
)
def test_bad_spec_names_field_value_and_choices(changes, message):
    with pytest.raises(ValueError, match=message):
        InitSpec(**changes)


def test_unknown_spec_key():
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['std'\]"):
        InitSpec.from_dict({"std": 1})


def test_zero_size_shapes_are_rejected():
    with pytest.raises(ValueError, match="zero-size"):
        initialize(nn.Linear(0, 5), InitSpec())


def test_registry_lists_every_scheme_the_issue_names():
    expected = {f"{f}_{k}" for f in ("xavier", "kaiming", "lecun") for k in ("normal", "uniform", "truncated_normal")}
    assert expected | {"orthogonal", "zero"} <= set(SCHEMES)
    assert np.isfinite(list(TARGETS["xavier_normal"](Fans(10, 10), 1.0))[1])
