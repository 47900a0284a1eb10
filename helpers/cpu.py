"""ESMFold without a GPU: CPU recipes that fit Colab's 12.7 GB of RAM, and what this CPU can do (its matrix
instructions, RAM, the speed of each chunk size). The benchmark behind notebook 08's tables: tools/cpu_bench.py."""

from __future__ import annotations

import functools
import os
import platform
import threading
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import torch
from transformers import AutoTokenizer
from transformers.models.esm.modeling_esmfold import EsmFoldTriangularSelfAttentionBlock

from helpers import data, lean, memory, models, quantization, recipes, rehearsal

#: RAM of a free Colab CPU runtime, GB (10⁹ bytes) as Colab reports it: its resource panel reads "System RAM … / 12.7
#: GB" (https://github.com/googlecolab/colabtools/issues/3909); Colab publishes no fixed figure (its FAQ: resources vary).
COLAB_RAM_GB = 12.7
#: The CPU class (`CPU_CLASSES`) a free Colab CPU runtime is planned as: the slowest measured, because Colab does not
#: say which CPU a runtime gets. The tiny stand-in's rehearsal answers every question about the CPU as this class.
COLAB_CPU_CLASS = "AVX2 only"
#: Set to another CPU class's name to rehearse a Colab CPU runtime as that class (the run plan rehearses notebook 08
#: as a bf16-capable CPU too, where it loads more recipes: `tools.plan`).
REHEARSAL_CLASS_ENV = "ESMFOLD_REHEARSAL_CPU_CLASS"


def rehearsed_class() -> str:
    """The CPU class a rehearsal answers as: COLAB_CPU_CLASS unless $ESMFOLD_REHEARSAL_CPU_CLASS names another."""
    return os.environ.get(REHEARSAL_CLASS_ENV) or COLAB_CPU_CLASS
#: CPU flags that decide how fast (and in which precision) the matrix products run.
FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_int8")


def cpu_name() -> str:
    """The CPU's model name with its x86 family/model numbers (Linux; virtual machines often hide the exact model),
    else the platform's processor string."""
    info = _cpuinfo()
    if "model name" in info:
        return f"{info['model name']} (family {info.get('cpu family', '?')}, model {info.get('model', '?')})"
    return platform.processor() or "unknown CPU"


def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo (Linux; empty elsewhere)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return {}
    info = {}
    for line in lines:
        key, _, value = line.partition(":")
        info.setdefault(key.strip(), value.strip())
    return info


def cpu_features() -> dict[str, bool]:
    """Which of FEATURES this CPU has (Linux /proc/cpuinfo flags)."""
    flags = set(_cpuinfo().get("flags", "").split())
    return {feature: feature in flags for feature in FEATURES}


#: The CPU classes of notebook 08's tables, from the slowest bf16 to the fastest: {name: (the flag that defines it,
#: the environment that makes a newer CPU behave like it)}. The environment caps the vector instructions oneDNN, MKL
#: and PyTorch's own kernels may use (set before torch is imported); the clock speed and the caches stay the machine's.
CPU_CLASSES = {
    "AVX2 only": ("avx2", {"ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2",
                           "ATEN_CPU_CAPABILITY": "avx2"}),
    "AVX-512, no BF16": ("avx512f", {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE", "MKL_ENABLE_INSTRUCTIONS": "AVX512",
                                     "ATEN_CPU_CAPABILITY": "avx512"}),
    "AVX-512 BF16": ("avx512_bf16", {}),
}


def cpu_class() -> str:
    """This CPU's class (a CPU_CLASSES name): the newest class whose flag it has (AMX CPUs have AVX-512 BF16 too); in a
    rehearsal, the class a Colab CPU runtime is planned as."""
    if rehearsal.active():
        return rehearsed_class()
    features = cpu_features()
    matching = [name for name, (flag, _) in CPU_CLASSES.items() if features[flag]]
    return matching[-1] if matching else "AVX2 only"  # older CPUs: no class of their own, AVX2 is the closest


def cpu_summary() -> str:
    """One line: model name, logical CPUs torch uses, RAM, and the matrix-math features present."""
    present = [f for f, ok in cpu_features().items() if ok]
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9 if hasattr(os, "sysconf") else float("nan")
    return (f"{cpu_name()} · {os.cpu_count()} logical CPUs · torch threads {torch.get_num_threads()} · "
            f"{ram:.1f} GB RAM · {', '.join(present) or 'no AVX2/AVX-512'}")


def available_ram_gb() -> float:
    """RAM the kernel says is available now (Linux MemAvailable), GB; in a rehearsal, a free Colab runtime's."""
    if rehearsal.active():
        return COLAB_RAM_GB
    available = memory.available_ram_bytes()
    return float("inf") if available is None else available / 1e9


#: The product `matmul_gflops` times: 256 × 1024 by 1024 × 1024 — small, because emulated bf16 is several times
#: slower than fp32; it ranks CPUs as an ESM-2-sized product (258 × 2560 by 2560 × 10240) does
#: (figures/08_cpu_matmul.csv).
PROBE_SHAPE = (256, 1024, 1024)


def matmul_gflops(dtype: torch.dtype = torch.float32, repeats: int = 3, shape=PROBE_SHAPE) -> float:
    """Measured throughput of one matrix product (m × k by k × n) in `dtype` on this CPU; in a rehearsal, the probe's
    committed measurement for the class a Colab CPU runtime is planned as (figures/08_cpu_matmul.csv)."""
    if rehearsal.active() and tuple(shape) == PROBE_SHAPE:
        return _committed_gflops(rehearsed_class(), str(dtype).replace("torch.", ""))
    m, k, n = shape
    x, w = torch.randn(m, k).to(dtype), torch.randn(n, k).to(dtype)
    torch.nn.functional.linear(x, w)
    start = time.perf_counter()
    for _ in range(repeats):
        torch.nn.functional.linear(x, w)
    return 2 * m * k * n * repeats / (time.perf_counter() - start) / 1e9


@functools.lru_cache(maxsize=None)
def _committed_gflops(cpu_class_name: str, dtype: str) -> float:
    table = pd.read_csv(data.repo_file("figures/08_cpu_matmul.csv"))
    probe = " × ".join(map(str, PROBE_SHAPE))
    row = table[(table["CPU class"] == cpu_class_name) & (table["product"] == probe) & (table["dtype"] == dtype)]
    return float(row["GFLOPS"].median())


def set_threads(threads: int | None = None) -> int:
    """Use one torch thread per available CPU (Colab's 2 vCPUs: 2); return the number set."""
    if threads is None:
        threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    torch.set_num_threads(max(1, threads))
    return torch.get_num_threads()


def status_gb(field: str) -> float:
    """A memory field of /proc/self/status (e.g. 'RssAnon', 'VmHWM') in GB; 0 where it cannot be read."""
    return (memory.status_kib(field) or 0) * 1024 / 1e9


@contextmanager
def ram_sampler(interval: float = 0.05):
    """Sample this process's anonymous and total resident memory while the block runs; yields a dict filled with
    'peak anonymous RAM (GB)' (heap: what really has to fit) and 'peak RSS (GB)' (also counts the pages of
    memory-mapped checkpoint files, which the kernel can drop)."""
    memory.reset_cpu_peak()
    record = {"peak anonymous RAM (GB)": 0.0}
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            record["peak anonymous RAM (GB)"] = max(record["peak anonymous RAM (GB)"], status_gb("RssAnon"))
            stop.wait(interval)  # returns at once when the block ends

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield record
    finally:
        stop.set()
        thread.join()
        sample_once = status_gb("RssAnon")  # the block may end between two samples
        record["peak anonymous RAM (GB)"] = max(record["peak anonymous RAM (GB)"], sample_once)
        record["peak RSS (GB)"] = status_gb("VmHWM")


#: bf16 pays only where this CPU multiplies bf16 clearly faster than fp32 (AVX-512 BF16, AMX); elsewhere it is
#: emulated, slower than fp32 (figures/08_cpu_matmul.csv has the ratios per CPU class).
BF16_SPEEDUP_NEEDED = 1.5


@functools.lru_cache(maxsize=1)
def probe_gflops() -> dict[str, float]:
    """`matmul_gflops` of the probe product in fp32 and bf16, measured once per process: every bf16 decision and every
    printed ratio reads these two numbers."""
    return {"float32": matmul_gflops(torch.float32), "bfloat16": matmul_gflops(torch.bfloat16)}


def bf16_speedup() -> float:
    """How many times faster this CPU multiplies in bf16 than in fp32 (`probe_gflops`)."""
    probe = probe_gflops()
    return probe["bfloat16"] / probe["float32"]


def fast_here(recipe: str) -> bool:
    """False for a bf16 recipe on a CPU that would emulate bf16 (a bf16 trunk: a fold many times slower than its
    table; bf16 only in the language model: measured about as fast as the chosen recipe, but emulated)."""
    return not recipes.get(recipe).computes_bf16 or bf16_speedup() >= BF16_SPEEDUP_NEEDED


#: The two recipes `choose_recipe` picks from: bf16 arithmetic throughout where this CPU has bf16 instructions, else
#: fp32 arithmetic where the work is (the language model stays fp16 as stored); both with the lean trunk.
BF16_RECIPE = "bf16-lean"
FP32_ARITHMETIC_RECIPE = "fp16-lean"


def choose_recipe(speedup: float | None = None) -> tuple[str, str]:
    """(recipe, why) for this CPU from its measured bf16 / fp32 speed ratio (None: measure it): BF16_RECIPE where bf16
    is at least BF16_SPEEDUP_NEEDED times faster, else FP32_ARITHMETIC_RECIPE."""
    speedup = bf16_speedup() if speedup is None else speedup
    if speedup >= BF16_SPEEDUP_NEEDED:
        return BF16_RECIPE, (f"bf16 multiplies {speedup:.2f}× as fast as fp32 on this CPU (≥ {BF16_SPEEDUP_NEEDED}×: "
                             "it has bf16 instructions), so everything computes in bf16, with the lean trunk")
    return FP32_ARITHMETIC_RECIPE, (f"bf16 multiplies only {speedup:.2f}× as fast as fp32 on this CPU "
                                    f"(< {BF16_SPEEDUP_NEEDED}×: no bf16 instructions, it would be emulated), so the "
                                    "trunk keeps fp32 arithmetic, with the lean trunk; the language model stays fp16 "
                                    "as stored")


def mapped_weight_gb(recipe: str, source: str | None = None) -> float:
    """GB of a recipe's weights that stay memory-mapped from the checkpoint (used at every fold, so they count towards
    the RAM a fold needs although they are not anonymous memory): tensors kept in the checkpoint's own dtype — the
    fp16 LM unless converted, the fp32 rest unless cast or quantized; all of a reloaded pre-quantized checkpoint."""
    spec = recipes.get(recipe)
    weights = models.expected_weights_bytes(recipe, source)
    if spec.prequantized:  # the whole saved checkpoint stays mapped (safetensors' load_file maps the file)
        return weights["total"] / 1e9
    lm = weights["language model (ESM-2)"]
    lm_mapped = spec.fp16_esm and spec.lm_cast is None and not spec.trunk_bf16
    rest_mapped = not (spec.trunk_bf16 or spec.quantized or spec.needs_bf16)
    return (lm * lm_mapped + (weights["total"] - lm) * rest_mapped) / 1e9


def prequantized_folder(source: str | None = None) -> Path:
    """Where `prequantize` saves (and the `int8-reload` recipe reads) the Quanto int8 checkpoint of `source`."""
    name = models.weights_source(source).replace("/", "_")
    return data.cache_dir() / f"esmfold-quanto-int8-{name}"


def prequantize(source: str | None = None) -> Path:
    """Quantize on load (Quanto int8, fp32 activations) once and save it for `int8-reload`. Needs
    `recipes.RECIPES["int8"].load_ram_gb` GB of RAM on a CPU — or run it on a GPU runtime (notebook 03, section 4)
    and copy the folder here."""
    model, _ = load_cpu("int8", source=source)
    folder = quantization.save_quantized(model, prequantized_folder(source))
    del model
    memory.free_memory()
    return folder


#: The trunk chunk size of the CPU recipes without the lean trunk.
CPU_CHUNK = 64


def loads_here(recipe: str) -> bool:
    """Whether this machine has the RAM `recipe` needs to load with the real weights (`Recipe.load_ram_gb`); in a
    rehearsal, whether a free Colab runtime has it."""
    return available_ram_gb() >= recipes.get(recipe).load_ram_gb


def load_cpu(recipe: str, source: str | None = None):
    """(model, tokenizer) of a recipe on the CPU (notebook 08's low-RAM routes never hold the LM in fp32): a warning
    first where it computes in bf16 that this CPU emulates, a clear refusal where the RAM it needs to load is missing.
    Recipes without the lean trunk fold with trunk chunk CPU_CHUNK."""
    spec = recipes.get(recipe)
    if not fast_here(recipe):  # warn before anything slow happens
        # measured with AVX2 only (figures/08_cpu_classes.csv): a bf16 trunk is ~6× slower; bf16 only in the LM is not
        cost = ("its trunk too, so its folds will be many times slower than the committed table" if spec.trunk_bf16
                else "only in its language model, so its folds were measured about as fast as the chosen recipe's")
        warnings.warn(f"'{recipe}' computes in bf16, which this CPU multiplies only {bf16_speedup():.2f}× as fast as "
                      f"fp32 (emulated) — {cost}. '{choose_recipe()[0]}' (`cpu.choose_recipe()`) is the recipe chosen "
                      "here.", stacklevel=2)
    if not (models.is_stand_in(source) or loads_here(recipe)):
        raise MemoryError(f"The {recipe} recipe needs ≈ {spec.load_ram_gb:.0f} GB of RAM to load and this machine has "
                          f"{available_ram_gb():.1f} GB available: it would kill the kernel. Use '{choose_recipe()[0]}' "
                          "(`cpu.choose_recipe()`: the fast recipe on this CPU) or 'fp16' (the checkpoint's own "
                          "precision).")
    if not spec.prequantized:
        return models.load_model(recipe, device="cpu", source=source, chunk_size=None if spec.lean else CPU_CHUNK,
                                 allow_cpu=True)
    folder = prequantized_folder(source)
    if not (folder / "quantization_map.json").is_file():
        raise FileNotFoundError(f"No pre-quantized checkpoint in {folder}. Make it once with "
                                f"`helpers.cpu.prequantize()` on a machine with ≈ {recipes.RECIPES['int8'].load_ram_gb:g} "
                                "GB of RAM, or on a GPU runtime with notebook 03 (section 4), and copy the folder here.")
    model = quantization.load_quantized(folder, device="cpu", chunk_size=CPU_CHUNK)
    return model, AutoTokenizer.from_pretrained(models.checkpoint_path(source))


def chunk_sweep(length: int = 259, positions=(2**11, 2**12, 2**13, 2**14, 2**16, 2**18), source: str | None = None,
                dtype: torch.dtype = torch.bfloat16, repeats: int = 3):
    """Seconds per lean trunk block on this CPU for each chunk size (pair positions per chunk): one block of the
    architecture with random weights, in `dtype`, best of `repeats` (a fold runs 48 blocks × 4 passes)."""
    trunk = models.load_config(source).esmfold_config.trunk
    torch.manual_seed(0)
    block = EsmFoldTriangularSelfAttentionBlock(trunk).eval()
    for parameter in block.parameters():
        parameter.data.normal_(0, 0.02)
    block.to(dtype)
    s = torch.randn(1, length, trunk.sequence_state_dim, dtype=dtype)
    z = torch.randn(1, length, length, trunk.pairwise_state_dim, dtype=dtype)
    mask = torch.ones(1, length, dtype=dtype)
    rows = []
    with torch.inference_mode():
        for count in positions:
            lean.make_block_lean(block, lean.LeanOptions(positions=count))
            forward = block.forward
            forward(s, z.clone(), mask=mask)  # warm-up
            best = float("inf")
            for _ in range(repeats):
                pair = z.clone()
                start = time.perf_counter()
                forward(s, pair, mask=mask)
                best = min(best, time.perf_counter() - start)
            rows.append({"length": length, "pair positions per chunk": count,
                         "rows per chunk": min(length, block._lean_options.chunk_rows(length)),
                         "seconds per block": round(best, 4),
                         "seconds per trunk pass (× blocks)": round(best * trunk.num_blocks, 1)})
    return pd.DataFrame(rows)
