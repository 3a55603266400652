"""lhcchain.training.seeded: the block draws the seed's numbers, and the random streams around it go on untouched."""

from __future__ import annotations

import pytest
import torch

from lhcchain.generate.models import CFM
from lhcchain.training import seeded


def test_seeded_draws_the_seed_and_restores_the_state() -> None:
    torch.manual_seed(1)
    expected_after = torch.rand(4)  # the training stream without the block
    torch.manual_seed(1)
    before = torch.get_rng_state()
    with seeded(7):
        inside = torch.rand(1000)
    assert torch.equal(torch.get_rng_state(), before)
    torch.testing.assert_close(torch.rand(4), expected_after, rtol=0, atol=0)
    torch.testing.assert_close(inside, torch.rand(1000, generator=torch.Generator().manual_seed(7)), rtol=0, atol=0)


def test_seeded_restores_the_state_when_the_block_fails() -> None:
    before = torch.get_rng_state()
    with pytest.raises(RuntimeError), seeded(3):
        torch.rand(10)
        raise RuntimeError("validation failed")
    assert torch.equal(torch.get_rng_state(), before)


def test_two_validations_give_the_same_value() -> None:
    """A flow-matching loss draws random times and noise: seeded, two validations between training draws agree;
    unseeded, they would not."""
    torch.manual_seed(0)
    net = CFM(3, 0, hidden=16, layers=2)
    x, mask, cond = torch.randn(200, 3), torch.ones(200, 3), torch.zeros(200, 0)

    @torch.no_grad()
    def validate() -> float:
        with seeded(11):
            return float(net.loss(x, mask, cond).mean())

    first = validate()
    torch.rand(100)  # training in between
    assert validate() == first
    with torch.no_grad():
        assert float(net.loss(x, mask, cond).mean()) != float(net.loss(x, mask, cond).mean())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_seeded_restores_the_gpu_generators() -> None:
    torch.manual_seed(1)
    cpu, gpus = torch.get_rng_state(), torch.cuda.get_rng_state_all()
    with seeded(7, torch.device("cuda")):
        inside = torch.rand(1000, device="cuda")
    assert torch.equal(torch.get_rng_state(), cpu)
    assert all(torch.equal(a, b) for a, b in zip(torch.cuda.get_rng_state_all(), gpus))
    expected = torch.rand(1000, device="cuda", generator=torch.Generator(device="cuda").manual_seed(7))
    torch.testing.assert_close(inside, expected, rtol=0, atol=0)
