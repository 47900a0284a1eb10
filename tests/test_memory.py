"""The measuring context manager on CPU, including a simulated out-of-memory error."""

import numpy as np
import pandas as pd
import pytest
import torch

from helpers import memory


def test_measure_records_time_and_cpu_peak():
    with memory.measure("alloc", device="cpu", recipe="x") as record:
        block = np.ones(300 * 1024**2 // 8)  # 300 MiB that must show up in the peak
        block.sum()
        del block
    assert record["status"] == "ok" and record["seconds"] > 0 and record["recipe"] == "x"
    assert record["cpu peak is"] == "since this block"  # Linux lets us reset the peak
    with memory.measure("idle", device="cpu") as idle:
        pass
    assert record["peak RSS, CPU (GiB)"] - idle["peak RSS, CPU (GiB)"] > 0.2
    frame = pd.DataFrame([record, idle])
    assert list(frame["label"]) == ["alloc", "idle"]


@pytest.mark.parametrize(
    "error",
    [torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), RuntimeError("CUDA error: out of memory")],
)
def test_simulated_oom_is_caught_and_reported(error, capsys):
    with memory.measure("too big", device="cpu") as record:
        big = torch.ones(1000)
        raise error
    assert record["status"] == "OOM"
    assert "chunk" in record["advice"] and "notebook 02" in record["advice"]
    assert "Out of memory" in capsys.readouterr().err
    assert "seconds" in record and "peak RSS, CPU (GiB)" in record  # the record is complete after an OOM
    del big


def test_other_errors_propagate():
    with pytest.raises(ValueError):
        with memory.measure("bug", device="cpu"):
            raise ValueError("not a memory problem")


def test_is_oom():
    assert memory.is_oom(MemoryError())
    assert not memory.is_oom(RuntimeError("shape mismatch"))


def test_stored_bytes_count_quantized_weights_as_stored_and_by_device():
    quanto = pytest.importorskip("optimum.quanto")
    layer = torch.nn.Sequential(torch.nn.Linear(64, 32))
    quanto.quantize(layer, weights=quanto.qint8)
    quanto.freeze(layer)
    weight = layer[0].weight
    # int8 data (32 × 64 bytes), its scales, the fp32 bias (32 × 4) and Quanto's own scalar buffers
    inner = 32 * 64 + memory.tensor_bytes(weight._scale) + 32 * 4 + sum(b.numel() * 4 for b in layer.buffers())
    assert memory.stored_bytes(layer) == inner and weight.numel() * weight.element_size() == 32 * 64 * 4
    assert memory.stored_bytes(layer, device="cpu") == inner and memory.stored_bytes(layer, device="meta") == 0
    assert memory.stored_bytes(layer, exclude=[layer[0]]) == 0
    assert memory.stored_bytes(layer, bytes_of=lambda t: 1) == 4  # once per parameter (weight, bias) and buffer (2)
