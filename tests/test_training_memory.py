import pytest

from hf_slm.training import ConfigError
from hf_slm.training.memory import GIB, MemoryModel, divisors, largest_fitting


def test_divisors_largest_first():
    assert divisors(12) == [12, 6, 4, 3, 2, 1]
    assert divisors(1) == [1]


def test_largest_fitting_divisor():
    memory = MemoryModel(fixed=10 * GIB, per_sequence=2 * GIB)  # m sequences need 10 + 2m GiB
    assert largest_fitting(12, memory, budget=21 * GIB) == 4  # 5 would fit, but does not divide 12
    assert largest_fitting(12, memory, budget=40 * GIB) == 12
    assert largest_fitting(7, memory, budget=23 * GIB) == 1  # 7 needs 24


def test_nothing_fits_says_how_much_is_needed():
    with pytest.raises(ConfigError, match=r"about 12\.0 GiB.*only 11\.0 GiB"):
        largest_fitting(8, MemoryModel(fixed=10 * GIB, per_sequence=2 * GIB), budget=11 * GIB)
