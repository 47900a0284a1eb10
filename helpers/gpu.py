"""What the series asks of a GPU, answered in one place: how much memory a fold may use, and the decisions that follow
from the GPU's generation (bf16, TF32, the attention kernel, quantized matrix kernels).

A free Colab T4 is described here with its sources (`T4`). `emulate(T4)` makes every answer a T4's — the tiny
stand-in's rehearsal of the series (`helpers.rehearsal`) and the tests use it — and `cap(gib)` is the one way the
series limits a process's GPU memory (to emulate a smaller card on a larger one).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from helpers import recipes

GIB = 1024**3
#: Set to a number of GiB to cap this process's GPU memory for PyTorch (`cap`), or to "T4": what a free T4 leaves
#: PyTorch (`T4.usable_gib`), to rehearse on a larger GPU.
MEMORY_CAP_ENV = "ESMFOLD_MEMORY_CAP_GIB"
#: A fold predicted to need less than this below the budget is called "borderline (estimate)": the estimate's terms
#: (the allocator's cache, the CUDA context) are measured on another GPU or assumed.
BORDERLINE_GIB = 0.5


#: PyTorch's CUDA allocator settings for long folds (≥ 2,000 residues): with expandable segments the allocator grows
#: one mapped segment instead of reserving new fixed-size blocks, so memory freed by one phase of a fold (the language
#: model, a trunk block's temporaries) can serve the larger blocks of the next instead of staying cached in pieces too
#: small to reuse. Without them, a 2,560-residue fold capped to a T4 emptied the cache and retried 12 times before it
#: ran out of memory (figures/09_gpu_limits.csv; seven lean changes). Read once, when CUDA starts.
ALLOCATOR_ENV = "PYTORCH_CUDA_ALLOC_CONF"
ALLOCATOR_SETTINGS = "expandable_segments:True"
#: Where PyTorch reads its allocator settings (the newer name first); a setting there is the user's and is kept.
_ALLOCATOR_ENVS = ("PYTORCH_ALLOC_CONF", ALLOCATOR_ENV)
_allocator_note = ""


def configure_allocator() -> str:
    """Set ALLOCATOR_SETTINGS for PyTorch's CUDA allocator before CUDA starts (the series' helpers call this when
    they are imported); keep a setting the environment already has. If CUDA has started already, the setting cannot
    apply: say so once, in one sentence. Returns what is in effect (`allocator_settings`)."""
    global _allocator_note
    if any(os.environ.get(name) for name in _ALLOCATOR_ENVS):
        _allocator_note = "set by the environment"
    elif torch.cuda.is_initialized():
        if not _allocator_note:
            print(f"CUDA started before the helpers were imported, so PyTorch's allocator runs without "
                  f"{ALLOCATOR_SETTINGS} (folds of 2,000 residues or more may run out of memory early): restart the "
                  "runtime and import helpers before anything that uses the GPU.", flush=True)
        _allocator_note = "not set: CUDA had started"
    else:
        os.environ[ALLOCATOR_ENV] = ALLOCATOR_SETTINGS
        _allocator_note = "set by helpers.gpu before CUDA started"
    return allocator_settings()


def allocator_settings() -> str:
    """The CUDA allocator settings this process asked for ('' for PyTorch's defaults), and who set them."""
    setting = next((os.environ[name] for name in _ALLOCATOR_ENVS if os.environ.get(name)), "")
    return f"{setting} ({_allocator_note})" if setting else f"PyTorch's defaults ({_allocator_note or 'not set'})"


configure_allocator()


@dataclass(frozen=True)
class GPU:
    """A GPU as the series plans for it: its compute capability and the memory CUDA offers one process."""

    name: str
    capability: tuple[int, int] | None  # (major, minor); None for a memory-size class ("a 6 GB card")
    total_gib: float  # memory CUDA offers a process (`torch.cuda.get_device_properties(0).total_memory`)
    context_gib: float  # what the CUDA context and cuBLAS take of it before any tensor exists
    source: str = ""

    @property
    def usable_gib(self) -> float:
        """What PyTorch's tensors and its allocator's cache can hold: the total less the CUDA context."""
        return self.total_gib - self.context_gib


#: The CUDA context and cuBLAS: "around 400MB if CUDA >= 11.7 is used and lazy module loading enabled"
#: (https://github.com/pytorch/pytorch/issues/109888). Assumed for a T4 and for the memory-size classes; not measured
#: on a T4 (on an H100 it measured 1.17 GiB, figures/09_gpu_check.csv).
ASSUMED_CONTEXT_GIB = 0.4

#: A free Colab T4: nvidia-smi shows 15,360 MiB, of which CUDA offers a process 15,835,660,288 bytes (14.75 GiB;
#: deviceQuery on Colab: https://github.com/enriicola/high-performance-clowns/blob/main/mandelbrot/report/report.md,
#: and PyTorch's own out-of-memory message there, "total capacity of 14.74 GiB":
#: https://github.com/zai-org/CogVideo/issues/741); compute capability 7.5 (https://developer.nvidia.com/cuda-gpus).
T4 = GPU("Tesla T4 (free Colab)", (7, 5), total_gib=15_835_660_288 / GIB, context_gib=ASSUMED_CONTEXT_GIB,
         source="15,835,660,288 bytes offered by CUDA (deviceQuery on Colab; nvidia-smi shows 15,360 MiB), compute "
                "capability 7.5; CUDA context ≈ 0.4 GiB assumed (pytorch/pytorch#109888)")

#: The GPU memory sizes of the hardware table, then the free T4: what each column plans against.
CARDS = {f"{n} GB": GPU(f"a {n} GB card", None, float(n), ASSUMED_CONTEXT_GIB) for n in (4, 6, 8, 12)}
CARDS[f"free T4 ({T4.total_gib:.2f} GiB)"] = T4

_emulated: GPU | None = None
_cap_gib: float | None = None


def emulated() -> GPU | None:
    """The GPU every answer is a rehearsal of (`emulate`), or None."""
    return _emulated


@contextmanager
def emulate(gpu: GPU | None):
    """Inside the block, answer every question as `gpu` would (None: the real device)."""
    global _emulated
    before, _emulated = _emulated, gpu
    try:
        yield gpu
    finally:
        _emulated = before


def start_emulating(gpu: GPU) -> None:
    """Answer as `gpu` from now on (a notebook's whole run: `helpers.rehearsal.install`)."""
    global _emulated
    _emulated = gpu


def current() -> GPU | None:
    """This process's GPU (the emulated one if any), or None without a CUDA GPU. The context is measured: the memory in
    use on the device that PyTorch's allocator does not hold."""
    if _emulated is not None:
        return _emulated
    if not torch.cuda.is_available():
        return None
    properties = torch.cuda.get_device_properties(0)
    free, total = torch.cuda.mem_get_info(0)
    context = max(0.0, (total - free - torch.cuda.memory_reserved(0)) / GIB)
    return GPU(properties.name, (properties.major, properties.minor), properties.total_memory / GIB, context)


def _capability(gpu: GPU | None) -> tuple[int, int]:
    gpu = current() if gpu is None else gpu
    return (gpu.capability or (0, 0)) if gpu is not None else (0, 0)


def bf16_arithmetic(gpu: GPU | None = None) -> bool:
    """Whether the GPU computes in bf16 (compute capability ≥ 8.0: Ampere and newer). Not
    `torch.cuda.is_bf16_supported()`: by default it only checks that a bf16 tensor can be made, and a T4 says True
    (https://github.com/pytorch/pytorch/pull/148322)."""
    return _capability(gpu) >= (8, 0)


def tf32(gpu: GPU | None = None) -> bool:
    """Whether the GPU has TF32 tensor cores (compute capability ≥ 8.0), which fp32 products may use when allowed."""
    return _capability(gpu) >= (8, 0)


def attention_kernel(gpu: GPU | None = None) -> str:
    """Which kernel `scaled_dot_product_attention` runs for the lean trunk's triangle attention: on a GPU only the
    memory-efficient kernel (compute capability 5.0–12.1, PyTorch's sdp_utils.cpp; `lean.attention` allows no other),
    which never stores the L × L logits — FlashAttention takes no additive bias, so it never applies; on an older GPU
    none ('none': the lean trunk raises `lean.AttentionKernelError`). Without a GPU: PyTorch's CPU kernels."""
    if gpu is None and current() is None:
        return "cpu"
    return "memory-efficient" if _capability(gpu) >= (5, 0) else "none"


def quantized_matmul(recipe: str) -> str:
    """How a recipe's quantized weights are multiplied. Quanto multiplies int8 weights by float activations by
    dequantizing them first, on every GPU (optimum/quanto/library/qbytes_mm.py); its fast float8 (Marlin) and int4
    (AWQ) kernels need compute capability ≥ 8.0 *and* fp16/bf16 activations, which no recipe here has (the trunk's and
    Quanto's language model's activations are fp32), so on any GPU the path is the same. torchao's dynamic recipe
    quantizes the activations too and multiplies int8 × int8 (`torch._int_mm`)."""
    spec = recipes.get(recipe)
    if not spec.quantized:
        return "floating point (no quantized weights)"
    if spec.torchao == "int8-dynamic":
        return "int8 × int8 (torch._int_mm), activations quantized on the fly"
    if spec.torchao:
        return "int8 weights dequantized in the product (torchao weight-only)"
    return "dequantize, then a floating-point product (every layer, every call)"


def session_cap() -> float | None:
    """The cap asked for in `$ESMFOLD_MEMORY_CAP_GIB` (a number of GiB, or "T4" for `T4.usable_gib`), or None."""
    setting = os.environ.get(MEMORY_CAP_ENV, "").strip()
    if not setting:
        return None
    return T4.usable_gib if setting.upper() == "T4" else float(setting)


def cap(gib: float | None) -> float | None:
    """Cap this process's GPU memory for PyTorch at `gib` GiB (None: no cap); return it. Without a GPU the cap is only
    remembered, and planned against (`budget_gib`)."""
    global _cap_gib
    _cap_gib = gib
    if torch.cuda.is_available():
        total = torch.cuda.get_device_properties(0).total_memory / GIB
        torch.cuda.set_per_process_memory_fraction(1.0 if gib is None else min(1.0, gib / total))
    return gib


def cap_gib() -> float | None:
    """The cap set by `cap`, or None."""
    return _cap_gib


def budget_gib(gpu: GPU | None = None) -> float | None:
    """What a fold's tensors and PyTorch's cache may use on this GPU now: its usable memory, or the cap if lower;
    None without a GPU."""
    gpu = current() if gpu is None else gpu
    if gpu is None:
        return None
    return min(gpu.usable_gib, _cap_gib) if _cap_gib is not None else gpu.usable_gib


def verdict(need_gib: float, budget: float) -> str:
    """'fits', 'borderline' (within BORDERLINE_GIB below the budget) or 'over' — for a predicted need against a
    budget, both in GiB of PyTorch memory (context excluded)."""
    if need_gib > budget:
        return "over"
    return "borderline" if need_gib > budget - BORDERLINE_GIB else "fits"
