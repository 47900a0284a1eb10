"""Measure wall time and peak memory of a block of code (GPU via torch and the driver, CPU via peak RSS)."""

from __future__ import annotations

import gc
import resource
import sys
import time
import traceback
import weakref
from contextlib import contextmanager
from pathlib import Path

import torch
from torch._subclasses.fake_tensor import FakeTensor
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from helpers import gpu

GIB = 1024**3

OOM_ADVICE = (
    "The memory has been freed and the kernel is still alive. Next steps, cheapest first: "
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


def available_ram_bytes() -> int | None:
    """Bytes of RAM the kernel says are available now (Linux MemAvailable), else None."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def status_kib(field: str) -> int | None:
    """A field of /proc/self/status in KiB (Linux), else None."""
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
    """Cap this process's GPU memory for PyTorch at `gib` GiB inside the block, as on a smaller card (`gpu.cap`);
    None changes nothing."""
    if gib is None:
        yield
        return
    before = gpu.cap_gib()
    free_memory()
    gpu.cap(gib)
    try:
        yield
    finally:
        free_memory()
        gpu.cap(before)


def is_oom(error: BaseException) -> bool:
    """True for CUDA/CPU out-of-memory errors."""
    if isinstance(error, (torch.OutOfMemoryError, MemoryError)):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()


#: The `measure` blocks open now, innermost last (a fold asks whether an out-of-memory would be met on purpose).
_OPEN: list[dict] = []


def prepared_for_oom() -> bool:
    """True inside a `measure(..., may_run_out=True)` block: an out-of-memory here is an outcome the code shows."""
    return any(record.get("may run out") for record in _OPEN)


@contextmanager
def measure(label: str = "", device: str | None = None, may_run_out: bool = False, **extra):
    """Time a block and record its peak memory (GPU via torch and the driver, CPU RAM as peak RSS); OOM is caught.

    An out-of-memory error inside the block is swallowed: memory is freed, the record's status says 'OOM' and advice
    is printed. `may_run_out=True` says the block is expected to meet it (a fold at the edge of the GPU's memory,
    shown on purpose): the message says so. The record is a dict that is filled in when the block ends and drops
    straight into a pandas DataFrame.
    """
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    on_cuda = device.startswith("cuda")
    record = {"label": label, "device": device, **extra}
    free_memory()
    if on_cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    record["cpu peak is"] = "since this block" if reset_cpu_peak() else "since process start"
    _OPEN.append({"may run out": may_run_out})
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
        said = "Out of memory — an outcome this cell was written for." if may_run_out else "Out of memory."
        print(f"[{label}] {said} {OOM_ADVICE}", file=sys.stderr)
    finally:
        _OPEN.pop()
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


# --- bytes a model stores ------------------------------------------------------------------------------------

def _inner(tensor: torch.Tensor) -> list | None:
    """The inner tensors of a quantized tensor subclass (Quanto, torchao), or None for a plain tensor."""
    flatten = getattr(tensor, "__tensor_flatten__", None)
    if flatten is None or type(tensor) in (torch.Tensor, torch.nn.Parameter) or isinstance(tensor, FakeTensor):
        return None
    names, _ = flatten()
    return [getattr(tensor, name) for name in names]


def tensor_bytes(tensor: torch.Tensor, device: str | None = None) -> int:
    """Bytes a tensor really stores (on `device`'s type only, if given): for quantized subclasses (Quanto, torchao),
    the sum of their inner tensors — not `numel() * element_size()`, which counts a Quanto int8 weight in its
    scale's dtype (fp32: 4× its bytes)."""
    inner = _inner(tensor)
    if inner is not None:
        return sum(tensor_bytes(t, device) for t in inner)
    if device is not None and tensor.device.type != torch.device(device).type:
        return 0
    return tensor.numel() * tensor.element_size()


def stored_bytes(module: torch.nn.Module, device: str | None = None, bytes_of=None, exclude=()) -> int:
    """Bytes of a module's parameters and buffers, each counted once as stored (`tensor_bytes`; on `device`'s type
    only, if given), leaving out those of the modules in `exclude`. The one count of a model's weights: the lean
    model's parking decision (`helpers.lean`) and the predictor (`models.expected_weights_bytes`, `helpers.fit`) both
    use it; `bytes_of(tensor)` replaces the count of each tensor (the predictor counts tensors not yet quantized as
    their library will store them)."""
    skip = {id(t) for m in exclude for t in [*m.parameters(), *m.buffers()]}
    count = bytes_of or (lambda t: tensor_bytes(t, device))
    return sum(count(t) for t in [*module.parameters(), *module.buffers()] if id(t) not in skip)


# --- counting live tensor bytes (any device, fake tensors too) ---------------------------------------------

def _is_fake(tensor) -> bool:
    """True for tensors without data: fake tensors and meta-device tensors."""
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

    def forget_module(self, module: torch.nn.Module) -> int:
        """Stop counting a module's parameters and buffers (their memory is elsewhere now); return their bytes."""
        forgotten = 0
        for tensor in list(module.parameters()) + list(module.buffers()):
            key = id(tensor.untyped_storage())
            size = self._seen.pop(key, 0)
            self._refs.pop(key, None)
            self.live -= size
            forgotten += size
        return forgotten

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
