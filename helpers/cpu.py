"""ESMFold without a GPU: CPU recipes that fit Colab's 12.7 GB of RAM, and what this CPU can do (its matrix
instructions, RAM, the speed of each chunk size). The benchmark behind notebook 08's tables: tools/cpu_bench.py."""

from __future__ import annotations

import functools
import os
import threading
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from helpers import rehearsal

#: RAM of a free Colab CPU runtime, GB (10⁹ bytes) as Colab reports it.
COLAB_RAM_GB = 12.7
#: The CPU class (`CPU_CLASSES`) a free Colab CPU runtime is planned as: the slowest measured, because Colab does not
#: say which CPU a runtime gets. The tiny stand-in's rehearsal answers every question about the CPU as this class.
COLAB_CPU_CLASS = "AVX2 only"
#: CPU flags that decide how fast (and in which precision) the matrix products run.
FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_int8")


def cpu_name() -> str:
    """The CPU's model name with its x86 family/model numbers (Linux; virtual machines often hide the exact model),
    else the platform's processor string."""
    try:
        info = {}
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
        if "model name" in info:
            return f"{info['model name']} (family {info.get('cpu family', '?')}, model {info.get('model', '?')})"
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown CPU"


def cpu_features() -> dict[str, bool]:
    """Which of FEATURES this CPU has (Linux /proc/cpuinfo flags)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
        flags = set(next(line for line in text.splitlines() if line.startswith("flags")).split(":", 1)[1].split())
    except (OSError, StopIteration):
        flags = set()
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
        return COLAB_CPU_CLASS
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
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024 / 1e9
    except OSError:
        pass
    return float("inf")


#: The product `matmul_gflops` times: 256 × 1024 by 1024 × 1024 — small, because emulated bf16 is several times
#: slower than fp32; it ranks CPUs as an ESM-2-sized product (258 × 2560 by 2560 × 10240) does
#: (figures/08_cpu_matmul.csv).
PROBE_SHAPE = (256, 1024, 1024)


def matmul_gflops(dtype: torch.dtype = torch.float32, repeats: int = 3, shape=PROBE_SHAPE) -> float:
    """Measured throughput of one matrix product (m × k by k × n) in `dtype` on this CPU; in a rehearsal, the probe's
    committed measurement for the class a Colab CPU runtime is planned as (figures/08_cpu_matmul.csv)."""
    if rehearsal.active() and tuple(shape) == PROBE_SHAPE:
        return _committed_gflops(COLAB_CPU_CLASS, str(dtype).replace("torch.", ""))
    m, k, n = shape
    x, w = torch.randn(m, k).to(dtype), torch.randn(n, k).to(dtype)
    torch.nn.functional.linear(x, w)
    start = time.perf_counter()
    for _ in range(repeats):
        torch.nn.functional.linear(x, w)
    return 2 * m * k * n * repeats / (time.perf_counter() - start) / 1e9


@functools.lru_cache(maxsize=None)
def _committed_gflops(cpu_class_name: str, dtype: str) -> float:
    import pandas as pd

    from helpers import data

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
    from helpers import memory

    return (memory.status_kib(field) or 0) * 1024 / 1e9


@contextmanager
def ram_sampler(interval: float = 0.05):
    """Sample this process's anonymous and total resident memory while the block runs; yields a dict filled with
    'peak anonymous RAM (GB)' (heap: what really has to fit) and 'peak RSS (GB)' (also counts the pages of
    memory-mapped checkpoint files, which the kernel can drop)."""
    from helpers import memory

    memory.reset_cpu_peak()
    record = {"peak anonymous RAM (GB)": 0.0}
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            record["peak anonymous RAM (GB)"] = max(record["peak anonymous RAM (GB)"], status_gb("RssAnon"))
            time.sleep(interval)

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


@dataclass(frozen=True)
class CpuRecipe:
    """A CPU recipe: the loader recipe it starts from, what happens to the LM after loading, and the trunk."""

    description: str
    base: str  # a models.RECIPES name, loaded on the CPU
    lm: str | None = None  # None (as loaded), "bf16" (cast fp16 → bf16), torchao "int8-dynamic"/"int8-weight-only"
    trunk_bf16: bool = False  # cast the fp32 trunk, structure module and heads to bf16 after loading
    lean: bool = False  # the lean trunk of notebook 07
    judged: bool = True  # False: its accuracy cannot be judged without the real weights
    load_ram_gb: float = 0.0  # RAM the load needs with the real weights (0: fits 12.7 GB); more → refused, not killed
    prequantized: bool = False  # reload a saved Quanto checkpoint (notebook 03 § 4) instead of from_pretrained


#: CPU recipes, each loadable without ever holding the LM in fp32 except `fp32` (the reference) and `quanto-int8` (the
#: seed's route, for comparison).
CPU_RECIPES = {
    "fp32": CpuRecipe("everything fp32 (the reference; ≈ 14 GB of weights: does not fit 12.7 GB)", "fp32",
                      load_ram_gb=17),
    "quanto-int8": CpuRecipe("the seed's route: Quanto int8 weights everywhere, quantized while loading (holds fp32 "
                             "weights first: does not fit 12.7 GB)", "int8", judged=False, load_ram_gb=24),
    "fp16-lm": CpuRecipe("LM kept fp16 as stored in the checkpoint (memory-mapped), trunk fp32", "fp16"),
    "bf16-lm": CpuRecipe("LM cast fp16 → bf16 after loading (no fp32 copy), trunk fp32", "fp16", lm="bf16",
                         judged=False),
    "bf16-lm-lean": CpuRecipe("bf16 LM + the lean fp32 trunk of notebook 07", "fp16", lm="bf16", lean=True,
                              judged=False),
    "int8dq-lm-lean": CpuRecipe("torchao int8 dynamic LM (from the fp16 checkpoint via bf16) + lean fp32 trunk",
                                "fp16", lm="int8-dynamic", lean=True, judged=False),
    "quanto-int8-reload": CpuRecipe("the same Quanto int8 model reloaded from a saved pre-quantized checkpoint (made "
                                    "once where RAM allows: `prequantize`)", "int8", judged=False, prequantized=True),
    "int8wo-lm-lean": CpuRecipe("torchao int8 weight-only LM (from the fp16 checkpoint via bf16) + lean fp32 trunk",
                                "fp16", lm="int8-weight-only", lean=True, judged=False),
    "bf16-lean": CpuRecipe("everything bf16 (LM cast from fp16, trunk from fp32, after a memory-mapped load) + lean "
                           "trunk", "fp16", lm="bf16", trunk_bf16=True, lean=True, judged=False),
    "fp16-lm-lean": CpuRecipe("LM kept fp16 as stored (memory-mapped) + the lean fp32 trunk with cache-sized chunks: "
                              "fp32 arithmetic where the work is, for CPUs without fast bf16", "fp16", lean=True),
}

#: bf16 pays only where this CPU multiplies bf16 clearly faster than fp32 (AVX-512 BF16, AMX); elsewhere it is
#: emulated, slower than fp32 (figures/08_cpu_matmul.csv has the ratios per CPU class).
BF16_SPEEDUP_NEEDED = 1.5


def uses_bf16(recipe: str) -> bool:
    """Whether a CPU recipe computes in bf16 (its LM or trunk cast to bf16, or torchao's bf16 activations)."""
    spec = CPU_RECIPES[recipe]
    return spec.trunk_bf16 or spec.lm is not None


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
    return not uses_bf16(recipe) or bf16_speedup() >= BF16_SPEEDUP_NEEDED


def choose_recipe(speedup: float | None = None) -> tuple[str, str]:
    """(CPU recipe, why) for this CPU from its measured bf16 / fp32 speed ratio (None: measure it): `bf16-lean` where
    bf16 is at least BF16_SPEEDUP_NEEDED times faster, else `fp16-lm-lean` (fp32 arithmetic in the trunk)."""
    speedup = bf16_speedup() if speedup is None else speedup
    if speedup >= BF16_SPEEDUP_NEEDED:
        return "bf16-lean", (f"bf16 multiplies {speedup:.2f}× as fast as fp32 on this CPU (≥ {BF16_SPEEDUP_NEEDED}×: "
                             "it has bf16 instructions), so everything computes in bf16, with the lean trunk")
    return "fp16-lm-lean", (f"bf16 multiplies only {speedup:.2f}× as fast as fp32 on this CPU (< {BF16_SPEEDUP_NEEDED}×: "
                            "no bf16 instructions, it would be emulated), so the trunk keeps fp32 arithmetic, with the "
                            "lean trunk; the language model stays fp16 as stored")


#: torchao configurations of the int8 language-model recipes.
_TORCHAO = {"int8-dynamic": "Int8DynamicActivationInt8WeightConfig", "int8-weight-only": "Int8WeightOnlyConfig"}


def mapped_weight_gb(recipe: str, source: str | None = "random-full") -> float:
    """GB of a recipe's weights that stay memory-mapped from the checkpoint (used at every fold, so they count towards
    the RAM a fold needs although they are not anonymous memory): tensors kept in the checkpoint's own dtype — the
    fp16 LM unless converted, the fp32 rest unless cast; all of a reloaded pre-quantized checkpoint."""
    from helpers import models

    spec = CPU_RECIPES[recipe]
    if spec.prequantized:  # the whole saved checkpoint stays mapped (safetensors' load_file maps the file)
        import pandas as pd

        from helpers import data

        weights = pd.read_csv(data.repo_file("figures/03_recipe_weights.csv")).set_index("recipe")
        return float(weights.loc[spec.base, "total"]) / 1e9  # exact bytes, measured on the full architecture
    counts = models.component_parameters(models.meta_model(source))
    lm = counts["language model (ESM-2)"]
    rest = counts["total"] - lm
    lm_mapped = spec.base == "fp16" and spec.lm is None and not spec.trunk_bf16
    rest_mapped = not spec.trunk_bf16 and spec.base != "int8"  # Quanto's int8 weights are made while loading
    return (lm * 2 * lm_mapped + rest * 4 * rest_mapped) / 1e9


def prequantized_folder(source: str | None = None) -> Path:
    """Where `prequantize` saves (and the `quanto-int8-reload` recipe reads) the Quanto int8 checkpoint of `source`."""
    from helpers import data, models

    name = models.weights_source(source).replace("/", "_")
    return data.cache_dir() / f"esmfold-quanto-int8-{name}"


def prequantize(source: str | None = None) -> Path:
    """Quantize on load (Quanto int8, fp32 activations) once and save it for `quanto-int8-reload`. Needs
    `CPU_RECIPES["quanto-int8"].load_ram_gb` GB of RAM on a CPU — or run it on a GPU runtime (notebook 03, section 4) and copy the folder (3.5 GB) here."""
    from helpers import memory, quantization

    model, _ = load_cpu("quanto-int8", source=source)
    folder = quantization.save_quantized(model, prequantized_folder(source))
    del model
    memory.free_memory()
    return folder


def load_cpu(recipe: str, source: str | None = None):
    """(model, tokenizer) of a CPU recipe on the CPU; the LM is never materialised in fp32 (except for `fp32`)."""
    from helpers import lean, models

    spec = CPU_RECIPES[recipe]
    if not fast_here(recipe):  # warn before anything slow happens
        # measured with AVX2 only (figures/08_cpu_classes.csv): a bf16 trunk is ~6× slower; bf16 only in the LM is not
        cost = ("its trunk too, so its folds will be many times slower than the committed table" if spec.trunk_bf16
                else "only in its language model, so its folds were measured about as fast as the chosen recipe's")
        warnings.warn(f"'{recipe}' computes in bf16, which this CPU multiplies only {bf16_speedup():.2f}× as fast as "
                      f"fp32 (emulated) — {cost}. '{choose_recipe()[0]}' (`cpu.choose_recipe()`) is the recipe chosen "
                      "here.", stacklevel=2)
    if spec.load_ram_gb and not models.is_stand_in(source) and available_ram_gb() < spec.load_ram_gb:
        raise MemoryError(f"The {recipe} recipe needs ≈ {spec.load_ram_gb:.0f} GB of RAM to load and this machine has "
                          f"{available_ram_gb():.1f} GB available: it would kill the kernel. Use '{choose_recipe()[0]}' "
                          "(`cpu.choose_recipe()`: the fast recipe on this CPU) or 'fp16-lm' (the checkpoint's own "
                          "precision).")
    if spec.prequantized:
        from transformers import AutoTokenizer

        from helpers import quantization

        folder = prequantized_folder(source)
        if not (folder / "quantization_map.json").is_file():
            ram = CPU_RECIPES["quanto-int8"].load_ram_gb
            raise FileNotFoundError(f"No pre-quantized checkpoint in {folder}. Make it once with "
                                    f"`helpers.cpu.prequantize()` on a machine with ≈ {ram} GB of RAM, or on a GPU "
                                    "runtime with notebook 03 (section 4), and copy the folder here.")
        model = quantization.load_quantized(folder, device="cpu", chunk_size=64)
        return model, AutoTokenizer.from_pretrained(models.checkpoint_path(source))
    model, tokenizer = models.load_model(spec.base, device="cpu", source=source,
                                         chunk_size=None if spec.lean else 64, allow_cpu=True)
    if spec.trunk_bf16:
        model.to(torch.bfloat16)  # parameter by parameter: LM fp16 → bf16, the rest fp32 → bf16
    if spec.lm == "bf16":
        model.esm.to(torch.bfloat16)  # parameter by parameter: fp16 → bf16, never fp32
    elif spec.lm in _TORCHAO:  # fp16 → bf16 (activations in bf16), then int8 weights, layer by layer
        import torchao.quantization

        model.esm.to(torch.bfloat16)
        torchao.quantization.quantize_(model.esm, getattr(torchao.quantization, _TORCHAO[spec.lm])())
    if spec.lean:  # chunks sized for the CPU's caches (not for memory): measured fastest in notebook 08
        lean.make_lean(model, lean.LeanOptions(positions=lean.CPU_POSITIONS))
    return model, tokenizer


def chunk_sweep(length: int = 259, positions=(2**11, 2**12, 2**13, 2**14, 2**16, 2**18), source: str | None = None,
                dtype: torch.dtype = torch.bfloat16, repeats: int = 3):
    """Seconds per lean trunk block on this CPU for each chunk size (pair positions per chunk): one block of the
    architecture with random weights, in `dtype`, best of `repeats` (a fold runs 48 blocks × 4 passes)."""
    import pandas as pd
    from transformers.models.esm.modeling_esmfold import EsmFoldTriangularSelfAttentionBlock

    from helpers import lean, models

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
