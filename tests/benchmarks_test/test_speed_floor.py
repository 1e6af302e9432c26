"""benchmarks/speed_floor.py without running it: the floors it derives from counted work and the machine's rates."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

PATH = Path(__file__).parents[2] / "benchmarks" / "speed_floor.py"
spec = importlib.util.spec_from_file_location("speed_floor", PATH)
bench = sys.modules.setdefault("speed_floor", importlib.util.module_from_spec(spec))
spec.loader.exec_module(bench)

RATES = {"peak_gflops": 50.0, "read_gbs": 10.0, "weight_gb": 0.5}


def test_each_part_costs_its_operations_at_the_peak_rate():
    result = {"flops": {"sampling": 100e9, "scoring": 25e9, "update": 200e9}, "passes": 0}
    floor = bench.floors(result, RATES)
    assert floor["sampling"] == pytest.approx(2.0)
    assert floor["scoring"] == pytest.approx(0.5)
    assert floor["update"] == pytest.approx(4.0)
    assert floor["total"] == pytest.approx(6.5)


def test_sampling_costs_at_least_its_weight_reads():
    # 19 one-token passes each read 0.5 GB at 10 GB/s: 0.95 s, more than its 10 GFLOP at 50 GFLOP/s (0.2 s).
    result = {"flops": {"sampling": 10e9, "scoring": 0.0, "update": 0.0}, "passes": 19}
    floor = bench.floors(result, RATES)
    assert floor["sampling"] == pytest.approx(0.95)
    assert floor["total"] == pytest.approx(0.95)
