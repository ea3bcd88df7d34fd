"""On a CUDA device (skipped cleanly without one): w0 regenerated on the GPU is bit-identical to the CPU's,
and stacked members on the GPU match their networks alone."""

from __future__ import annotations

import pytest
import torch

from lottery.generators import STANDARD_NORMAL, HashStream, SobolStream, draw
from lottery.init import InitSpec, initial_value, initialize
from lottery.models import build
from lottery.models.stacked import stack

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("stream", [HashStream(12345), SobolStream.scrambled_for(7, 3, 1 << 17), SobolStream(3)],
                         ids=["hash", "sobol", "sobol-paper"])
def test_regeneration_on_cuda_is_bit_identical_to_cpu(stream: object, dtype: torch.dtype) -> None:
    cpu = draw(stream, 100_000, STANDARD_NORMAL, dtype)
    gpu = draw(stream, 100_000, STANDARD_NORMAL, dtype, device="cuda")
    assert gpu.device.type == "cuda" and torch.equal(gpu.cpu(), cpu)


@pytest.mark.parametrize("spec", [InitSpec(seed=3), InitSpec(seed=4, scheme="kaiming_uniform", source="sobol"),
                                  InitSpec(seed=5, source="sobol-paper", scale=0.5)], ids=lambda s: s.label)
def test_a_network_initialised_on_cuda_equals_the_cpu_one(spec: InitSpec) -> None:
    cpu = initialize(build("lenet_300_100", (1, 28, 28), 10), spec)
    gpu = initialize(build("lenet_300_100", (1, 28, 28), 10).cuda(), spec)
    for (name, p), q in zip(cpu.named_parameters(), gpu.parameters(), strict=True):
        assert torch.equal(q.cpu(), p), name
        assert torch.equal(initial_value(gpu, name).cpu(), p), name


def test_stacked_members_on_cuda_match_their_networks_alone() -> None:
    specs = [InitSpec(seed=s) for s in range(3)]
    stacked = initialize(stack(build("lenet_300_100", (1, 28, 28), 10), 3).cuda(), specs)
    x = torch.randn(3, 64, 1, 28, 28, device="cuda")
    out = stacked(x)
    for m, spec in enumerate(specs):
        alone = initialize(build("lenet_300_100", (1, 28, 28), 10).cuda(), spec)
        assert torch.allclose(out[m], alone(x[m]), atol=1e-4, rtol=1e-4)


def test_stacked_convolutional_members_on_cuda_match_their_networks_alone() -> None:
    specs = [InitSpec(seed=s) for s in range(3)]
    stacked = initialize(stack(build("vgg11", (3, 32, 32), 10, width=0.25), 3).cuda(), specs)
    x = torch.randn(3, 16, 3, 32, 32, device="cuda")
    out = stacked(x)  # one grouped convolution per layer, BatchNorm over the members' channels
    for m, spec in enumerate(specs):
        alone = initialize(build("vgg11", (3, 32, 32), 10, width=0.25).cuda(), spec)
        assert torch.allclose(out[m], alone(x[m]), atol=1e-3, rtol=1e-3)
        assert torch.allclose(stacked[1].running_mean[m], alone[1].running_mean, atol=1e-5, rtol=1e-4)
