"""Measure wall time and peak memory of a block of code (GPU via torch and the driver, CPU via peak RSS)."""

from __future__ import annotations

import gc
import sys
import time
import traceback
import weakref
from contextlib import contextmanager
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

GIB = 1024**3
#: A free Colab T4 reports 15 GB total; about this much is usable by PyTorch (GiB).
T4_BUDGET_GIB = 14.56

OOM_ADVICE = (
    "Out of memory. The memory has been freed and the kernel is still alive. Next steps, cheapest first: "
    "set a trunk chunk size (model.trunk.set_chunk_size(64), or 32), fold a shorter protein, "
    "then move to a smaller recipe: fp16 language model (notebook 02) → int8 weights (notebook 03). "
    "If memory still looks full, restart the runtime."
)


def free_memory() -> None:
    """Collect garbage and return cached CUDA blocks to the driver."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def reset_cpu_peak() -> bool:
    """Reset the kernel's peak-RSS counter (Linux); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def cpu_peak_rss_gib() -> float:
    """Peak resident memory of this process in GiB (since the last reset where supported)."""
    kib = status_kib("VmHWM")
    if kib is None:
        import resource

        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        if sys.platform == "darwin":
            kib //= 1024
    return kib / 1024**2


def device_used_gib(device: int | None = None) -> float:
    """Memory in use on the whole GPU as nvidia-smi reports it (all processes + CUDA context), in GiB."""
    free, total = torch.cuda.mem_get_info(device)
    return (total - free) / GIB


@contextmanager
def gpu_budget(gib: float | None):
    """Cap this process's CUDA memory at `gib` GiB inside the block (emulates a smaller GPU); no-op without CUDA."""
    if gib is None or not torch.cuda.is_available():
        yield
        return
    total = torch.cuda.get_device_properties(0).total_memory / GIB
    free_memory()
    torch.cuda.set_per_process_memory_fraction(min(1.0, gib / total))
    try:
        yield
    finally:
        from helpers import notebook

        free_memory()
        torch.cuda.set_per_process_memory_fraction(1.0)
        notebook.apply_memory_cap()  # back to the session's own cap (T4 emulation), if any


def is_oom(error: BaseException) -> bool:
    """True for CUDA/CPU out-of-memory errors."""
    if isinstance(error, (torch.OutOfMemoryError, MemoryError)):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()


@contextmanager
def measure(label: str = "", device: str | None = None, **extra):
    """Time a block and record its peak memory (GPU via torch and the driver, CPU RAM as peak RSS); OOM is caught.

    An out-of-memory error inside the block is swallowed: memory is freed, the record's status says 'OOM' and advice
    is printed. The record is a dict that is filled in when the block ends and drops straight into a pandas DataFrame.
    """
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    on_cuda = device.startswith("cuda")
    record = {"label": label, "device": device, **extra}
    free_memory()
    if on_cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    record["cpu peak is"] = "since this block" if reset_cpu_peak() else "since process start"
    start = time.perf_counter()
    try:
        yield record
        record["status"] = "ok"
    except BaseException as error:  # noqa: BLE001 — only OOM is swallowed, everything else re-raised below
        if not is_oom(error):
            raise
        record["status"] = "OOM"
        record["advice"] = OOM_ADVICE
        traceback.clear_frames(error.__traceback__)
        del error
        print(f"[{label}] {OOM_ADVICE}", file=sys.stderr)
    finally:
        if on_cuda:
            torch.cuda.synchronize()
        record["seconds"] = time.perf_counter() - start
        if on_cuda:
            record["peak allocated (GiB)"] = torch.cuda.max_memory_allocated() / GIB
            record["peak reserved (GiB)"] = torch.cuda.max_memory_reserved() / GIB
            record["device used, nvidia-smi (GiB)"] = device_used_gib()
        record["peak RSS, CPU (GiB)"] = cpu_peak_rss_gib()
        if record.get("status") == "OOM":
            free_memory()


# --- counting live tensor bytes (any device, fake tensors too) ---------------------------------------------

def _is_fake(tensor) -> bool:
    """True for tensors without data: fake tensors and meta-device tensors."""
    from torch._subclasses.fake_tensor import FakeTensor

    return isinstance(tensor, FakeTensor) or tensor.device.type == "meta"


class LiveBytes(TorchDispatchMode):
    """A dispatch mode that counts the bytes of live tensor storages (each counted once, uncounted when freed)."""

    def __init__(self):
        super().__init__()
        self.live = 0
        self.peak = 0
        self._seen: dict[int, int] = {}
        self._refs: dict[int, weakref.ref] = {}
        self.scalar_reads = 0

    def _free(self, key: int) -> None:
        self.live -= self._seen.pop(key, 0)
        self._refs.pop(key, None)

    def track(self, tensor: torch.Tensor) -> None:
        """Count a tensor's storage if it is new."""
        storage = tensor.untyped_storage()
        key = id(storage)
        if key in self._seen:
            return
        size = storage.nbytes()
        self._seen[key] = size
        self.live += size
        self.peak = max(self.peak, self.live)
        self._refs[key] = weakref.ref(storage, lambda _, k=key: self._free(k))

    def track_module(self, module: torch.nn.Module) -> int:
        """Count every parameter and buffer of a module (its weights); return the live bytes."""
        for tensor in list(module.parameters()) + list(module.buffers()):
            self.track(tensor)
        return self.live

    def reset_peak(self) -> None:
        """Start a new peak from what is live now."""
        self.peak = self.live

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten.nonzero.default and _is_fake(args[0]):
            # Data-dependent size: on fake tensors nonzero cannot know how many elements it selects. Its one use in
            # the fold (pTM's argmax) selects one; its output is a few bytes either way.
            out = torch.zeros((1, args[0].dim()), dtype=torch.long, device=args[0].device)
        elif func is torch.ops.aten._local_scalar_dense.default and _is_fake(args[0]):
            # A tensor read as a Python number (pTM indexes with that argmax): fake tensors have no values; any valid
            # index gives the same memory.
            self.scalar_reads += 1
            return False if args[0].dtype == torch.bool else 0
        else:
            out = func(*args, **(kwargs or {}))
        if isinstance(out, torch.Tensor):
            self.track(out)
        else:
            for leaf in tree_leaves(out):
                if isinstance(leaf, torch.Tensor):
                    self.track(leaf)
        return out
