"""The one device helper every torch stage uses."""

from __future__ import annotations

import pytest
import torch

from lhcchain.device import select_device
from lhcchain.errors import InputError


def test_cpu_and_threads() -> None:
    before = torch.get_num_threads()
    try:
        assert select_device("cpu", threads=1) == torch.device("cpu")
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_auto_follows_cuda_availability() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert select_device("auto").type == expected


@pytest.mark.skipif(torch.cuda.is_available(), reason="only meaningful without a GPU")
def test_cuda_without_gpu_is_a_clear_error() -> None:
    with pytest.raises(InputError, match="'device' is 'cuda'.*no CUDA device"):
        select_device("cuda")


def test_unknown_device_names_the_key() -> None:
    with pytest.raises(InputError, match="config key 'device'"):
        select_device("tpu")
