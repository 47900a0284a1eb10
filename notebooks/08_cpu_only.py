# ---
# jupyter:
#   colab:
#     provenance: []
#   jupytext:
#     cell_metadata_filter: tags,jupyter,cellView,-all
#     formats: ipynb,py:percent
#     notebook_metadata_filter: kernelspec,jupytext,colab,accelerator
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 08 · No GPU at all — ESMFold on a CPU within 12.7 GB of RAM
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/OWNER/gpu-poor-esmfold/blob/v0.1.0/notebooks/08_cpu_only.ipynb)
#
# **What you will learn**
# - why a CPU can run ESMFold at all (memory is RAM, not VRAM; the price is time) and what a free Colab CPU runtime
#   offers;
# - which CPU features decide the speed (vector and matrix instructions: AVX2, AVX-512, its bf16 instructions, AMX —
#   section 1 explains each), how to check yours, and how to choose the recipe from a measurement rather than a guess
#   (bf16 only where it is really faster);
# - how to load ESMFold in under 12.7 GB of RAM without ever holding the language model in fp32, and how to measure
#   RAM honestly (the memory a process allocates itself vs the checkpoint file's pages the system maps in; section 2);
# - why a CPU wants *small* chunks (they stay in its caches) and how to measure the best size on yours;
# - where a CPU fold's time goes, what fewer recycles would save, and how to estimate the time on another CPU.
#
# **Estimated run time on a free Colab CPU runtime:** about 16 minutes, download included ([how it is
# estimated](../docs/results.md#how-the-t4-run-times-are-estimated)).

# %% [markdown]
# ## Setup
# A CPU runtime is enough here. Set `DRIVE_CACHE = True` to read the checkpoint from
# Google Drive ([notebook 01](01_fp32_baseline.ipynb) and the [guide](INSTRUCTOR_GUIDE.md#keeping-the-84-gb-download-across-notebooks) explain it).

# %%
import importlib.metadata
import subprocess
import sys

IS_COLAB = "google.colab" in sys.modules
REPO = "https://github.com/OWNER/gpu-poor-esmfold"  # stamped by `python -m tools.stamp`
REF = "v0.1.0"
NEEDS = ["biotite", "optimum-quanto", "torchao"]  # what this notebook uses that Colab lacks (pinned in helpers/colab.py)
DRIVE_CACHE = False  # True (or a Drive folder): keep the 8.4 GB checkpoint on Google Drive, downloaded once
try:
    importlib.metadata.version("gpu-poor-esmfold")  # the series' helpers are installed (a stray helpers.py is not them)
except importlib.metadata.PackageNotFoundError:
    if IS_COLAB and "/OWNER/" in REPO:
        sys.exit("This copy does not name its repository yet: open the notebook from the Colab badge in the published "
                 "README, or clone the repository and run it on your own machine.")
    if IS_COLAB:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", f"git+{REPO}@{REF}"], check=True)
        importlib.invalidate_caches()
    else:
        sys.path.insert(0, "..")  # running from a clone without `pip install -e .`

from helpers import colab  # first: the Drive cache must be chosen before anything imports transformers

colab.setup(NEEDS, drive_cache=DRIVE_CACHE)  # in Colab: installs what is missing (nothing the second time)

import pandas as pd
import torch

from helpers import benchmark, cpu, data, folding, lean, memory, models, notebook, recipes

# %% [markdown]
# ## Parameters
# The proteins folded and the lengths of the chunk measurements. This notebook folds on the CPU even when a GPU is
# present.

# %%
notebook.start(needs_gpu=False)
MODEL_ID = models.checkpoint_path()  # "facebook/esmfold_v1" (or a stand-in's folder)
SEED = data.seed_sequence()  # section 4's protein: 1CA2, 259 aa
SHORT = data.seed_sequence()[:64]  # section 6's agreement protein
CHUNK_LENGTH, SWEEP_LENGTH = len(SEED), 128  # section 3's chunk-size measurement; exercise 4's second length
ROOM_FOR_FP32 = cpu.loads_here("fp32")  # the RAM to load the fp32 reference (section 2's table)

# %% [markdown]
# ## 1 · Why a CPU can fold, and what this one can do
#
# Nothing in ESMFold needs a GPU: the same PyTorch code runs on a CPU, with the model in RAM instead of GPU memory.
# A free Colab CPU runtime has **2 vCPUs** (virtual CPUs: hardware threads of a shared server) and less RAM than
# ESMFold's fp32 weights — which is why a GPU is usually taken for granted. The sizes:

# %% tags=["show-output"]
weights = pd.read_csv(data.repo_file("figures/03_recipe_weights.csv")).set_index("recipe")  # exact bytes
print(f"RAM of a free Colab CPU runtime: {cpu.COLAB_RAM_GB} GB\n"
      f"ESMFold in fp32: {weights.loc['fp32', 'total'] / 1e9:.1f} GB, of which the language model "
      f"{weights.loc['fp32', 'language model (ESM-2)'] / 1e9:.1f} GB "
      f"({weights.loc['fp32', 'language model (ESM-2)'] / 4 / 1e9:.1f} billion parameters)\n"
      f"the checkpoint as stored (language model fp16, the rest fp32): {weights.loc['fp16', 'total'] / 1e9:.1f} GB, "
      f"of which the language model {weights.loc['fp16', 'language model (ESM-2)'] / 1e9:.1f} GB")

# %% [markdown]
# Two things decide whether it works: the **RAM peak while loading** (the recipes below never build the language
# model in fp32) and the **time** (minutes for a protein of 1CA2's size: section 7).
#
# How fast depends on the CPU's instructions for arithmetic on many numbers at once:
# - **AVX2**: 256-bit vector instructions (8 fp32 numbers per instruction); most x86 CPUs since 2013–2015
#   ([list](https://en.wikipedia.org/wiki/Advanced_Vector_Extensions#CPUs_with_AVX2)).
# - **AVX-512**: 512-bit vectors (16 fp32 numbers); on many server CPUs
#   ([list](https://en.wikipedia.org/wiki/AVX-512#CPUs_with_AVX-512)).
# - **AVX-512 BF16**: AVX-512 instructions for **bf16** (bfloat16: 16 bits with fp32's range and fewer digits,
#   [format](https://en.wikipedia.org/wiki/Bfloat16_floating-point_format)); Intel Cooper Lake and Sapphire Rapids,
#   AMD Zen 4 and later (same list).
# - **AMX** (Advanced Matrix Extensions): tiles that multiply small bf16 or int8 matrices in one instruction; Intel
#   Sapphire Rapids and later ([Intel AMX](https://en.wikipedia.org/wiki/Advanced_Matrix_Extensions)). AMX CPUs
#   have AVX-512 BF16 too (the AVX-512 list above).
#
# Speed is counted in **GFLOPS**: billions of floating-point operations per second (an m × k by k × n matrix product
# is 2·m·k·n of them). Yours:

# %%
print(cpu.cpu_summary())
pd.DataFrame([cpu.cpu_features()], index=["present"])

# %%
threads = cpu.set_threads()  # one thread per CPU this process may use (Colab: 2); more threads than cores only slows down
gflops = {dtype: round(value, 1) for dtype, value in cpu.probe_gflops().items()}  # measured once per notebook
speedup = cpu.bf16_speedup()  # their ratio; `cpu.fast_here` and `cpu.choose_recipe` read the same two numbers
print(f"{threads} threads · a 256 × 1024 by 1024 × 1024 matrix product: {gflops} GFLOPS — bf16 is {speedup:.2f}× fp32 "
      f"· CPU class: {cpu.cpu_class()}")

# %% [markdown]
# The ratio between the two numbers decides the recipe. A CPU with bf16 instructions multiplies bf16 faster than fp32,
# and a bf16 model folds faster. A CPU without them *emulates* bf16, converting every number to fp32 and back, and
# bf16 is then slower than fp32. The same product, measured on the three classes of CPU of section 7:

# %% tags=["show-output"]
import math

matmul = pd.read_csv(data.repo_file("figures/08_cpu_matmul.csv"))
probe_product = " × ".join(map(str, cpu.PROBE_SHAPE))  # m × k × n: an m × k by k × n product, 2·m·k·n operations
ratios = matmul[matmul["product"] == probe_product].pivot_table(index="CPU class", columns="dtype", values="GFLOPS",
                                                                  sort=False)[["float32", "bfloat16"]]
ratios["bf16 / fp32"] = (ratios["bfloat16"] / ratios["float32"]).round(2)
gflop = 2 * math.prod(cpu.PROBE_SHAPE) * 4 / 1e9  # cpu.matmul_gflops: one warm-up and three timed products
ratios["seconds the probe takes (fp32 + bf16)"] = (gflop / ratios["float32"] + gflop / ratios["bfloat16"]).round(3)
print(f"bf16 is chosen where bf16 / fp32 ≥ cpu.BF16_SPEEDUP_NEEDED = {cpu.BF16_SPEEDUP_NEEDED}")
ratios

# %% [markdown]
# So the rule is a measurement, not a guess: bf16 only where it is at least `cpu.BF16_SPEEDUP_NEEDED` times faster
# than fp32 here; otherwise keep fp32 arithmetic. The probe is small (the last column: a fraction of a second on each
# class) and ranks the classes as an ESM-2-sized product does (section 7's table has both).

# %%
RECIPE, why = cpu.choose_recipe(speedup)
print(f"recipe for this CPU: {RECIPE} — {why}")

# %% [markdown]
# ## 2 · The recipes, measured
#
# The low-RAM recipes load through `from_pretrained` with the checkpoint's language model in **fp16, as stored**,
# then convert it directly — never through fp32. The stored tensors are **memory-mapped**: the file is mapped into
# the process's memory and the system reads its pages from disk when they are used, without a copy
# ([`mmap`](https://man7.org/linux/man-pages/man2/mmap.2.html)). `fp32` (the reference) and `int8` (the route of the
# *seed*, the article this series starts from) are measured for comparison; they need more RAM to load than 12.7 GB
# (column *RAM to load*). The recipes `cpu.choose_recipe` picks from are timed per class of CPU in section 7. All of
# them:

# %% tags=["show-output"]
from IPython.display import display

cpu_recipes = pd.DataFrame({name: {
    "how it loads": r.description,
    "RAM to load (GB)": f"≈ {r.load_ram_gb:g}: refused below that" if r.load_ram_gb else f"fits {cpu.COLAB_RAM_GB}",
    "computes as a recipe notebook 05 judges?": "yes" if recipes.accuracy_judged(name) else "no"}
    for name, r in recipes.RECIPES.items() if recipes.CPU_TABLE in r.tables}).T
print(f"a saved Quanto int8 checkpoint (read by int8-reload): {cpu.mapped_weight_gb('int8-reload'):.1f} GB")
with pd.option_context("display.max_colwidth", None):
    display(cpu_recipes)

# %% [markdown]
# A test (`tests/test_cpu.py`) watches every tensor created while these recipes load and fails if the language
# model ever exists in fp32 (torchao's int8 quantization makes an fp32 temporary for one layer at a time).
#
# **Quanto int8.** Quantize-on-load (`int8`) holds the full-precision weights before quantizing them: it
# needs the RAM the table gives, once. `int8-reload` is the same model saved once and reloaded (notebook 03,
# section 4): the reload builds the model on the `meta` device and fills it with the saved int8 tensors —
# full-precision weights never exist.
#
# Making that checkpoint still needs the quantize-on-load peak *once*: run `cpu.prequantize()` on a machine with that
# much RAM, or notebook 03's section 4 on a Colab **GPU** runtime (where the quantization happens on the GPU). Then
# copy the folder (its size is printed above) to `cpu.prequantized_folder()`, through Google Drive on Colab.
#
# Quanto's two recipes are the slowest in the table below. This series does not offer a Quanto checkpoint made from
# the fp16 load, which would skip the big step: the saved checkpoint is quantized from full-precision weights.
#
# **torchao int8** (`int8dq-lm-lean`: int8 weights and int8 activations; `int8wo-lm-lean`: int8 weights, bf16
# activations) quantizes the fp16-loaded language model one layer at a time, so it needs no pre-quantized checkpoint
# to stay under 12.7 GB.
#
# **Threads:** `cpu.set_threads()` uses one torch thread per CPU this process may use (`os.sched_getaffinity`; 2 on
# Colab). More threads than CPUs only adds contention; exercise 1 compares one thread with two.
#
# **Memory, two ways.** *Anonymous* memory is what the process allocated itself (the heap: tensors made while
# loading or folding). *RSS* (resident set size) also counts the memory-mapped checkpoint pages in RAM at the time;
# the system can drop those and read them again from disk. Linux reports both in
# [`/proc/self/status`](https://man7.org/linux/man-pages/man5/proc_pid_status.5.html) (`RssAnon`; `VmHWM`, the peak
# RSS), which `cpu.ram_sampler` reads.
#
# Measured on the full-size architecture with random weights (time and memory equal the real model's; nothing
# else does), one process per recipe, `python -m tools.cpu_bench bench` — seconds per fold:

# %% tags=["show-output"]
bench = pd.read_csv(data.repo_file("figures/08_cpu_benchmark.csv"))
print(bench["provenance"].iloc[0])  # random-full: the full-size architecture with random parameters
bench.pivot_table(index="recipe", columns="length", values="fold seconds")

# %% [markdown]
# Memory per recipe (GB):

# %% tags=["show-output"]
ram = bench.groupby("recipe")[["load seconds", "load peak anonymous RAM (GB)", "load peak RSS (GB)",
                               "steady anonymous RAM (GB)", "fold peak anonymous RAM (GB)"]].max()
ram["weights left mapped (GB)"] = [round(cpu.mapped_weight_gb(r), 2) for r in ram.index]
ram["RAM needed (GB)"] = ram[["load peak anonymous RAM (GB)", "fold peak anonymous RAM (GB)"]].max(axis=1) + ram[
    "weights left mapped (GB)"]
ram

# %% tags=["show-output"]
from IPython.display import Image

Image(filename=str(data.repo_file("figures/08_cpu_benchmark.png")))  # the committed figure (the published copy in Colab)

# %% [markdown]
# How to read the memory columns: weights kept in the checkpoint's own dtype are never copied — they are read from
# the mapped pages at every fold. So the RAM a fold really needs is the anonymous peak **plus** those weights
# (`cpu.mapped_weight_gb`, column *weights left mapped*): the whole checkpoint for `fp16`, the fp32 trunk for `fp32`
# and every recipe with `-lm` in its name, the whole saved int8 file for `int8-reload`, nothing for `bf16-lean`.
#
# Mapped pages the model no longer uses (the fp16 LM after its conversion) the system can drop, so an RSS above
# 12.7 GB is not by itself an out-of-memory. `fp32` and `int8` do not fit Colab: their *RAM needed* is above
# 12.7 GB even after loading, and loading asks for more (the recipes table).

# %% [markdown]
# ## 3 · Chunks sized for the CPU's caches
#
# Notebook 07's lean trunk works on the pair tensor a chunk of rows at a time. On a GPU the chunk is sized for
# *memory*. On a CPU, time is the problem: small temporaries are more likely to stay in the CPU's caches (its small,
# fast memories next to the cores), and a chunk that stays there runs faster. The sizes, for the real architecture:

# %% tags=["show-output"]
trunk_config = models.load_config("random-full").esmfold_config.trunk  # the real architecture's sizes (no weights)
widest = 4 * trunk_config.pairwise_state_dim  # the pair MLP widens each pair position's 128 numbers to 512
for where, positions, nbytes in [("GPU: lean.AUTO_POSITIONS, fp32", lean.AUTO_POSITIONS, 4),
                                 ("CPU: lean.CPU_POSITIONS, bf16", lean.CPU_POSITIONS, 2)]:
    rows = min(CHUNK_LENGTH, lean.LeanOptions(positions=positions).chunk_rows(CHUNK_LENGTH))
    print(f"{where}: {positions:,} pair positions per chunk = {rows} rows at {CHUNK_LENGTH} residues; the pair MLP's "
          f"widest temporary {positions * widest * nbytes / 2**20:,.0f} MiB")
print(f"a fold runs {trunk_config.num_blocks} trunk blocks × {trunk_config.max_recycles} passes (default recycles)")

# %% [markdown]
# Measured on one full-size trunk block (random weights, bf16), seconds per trunk pass (one block × the number of
# blocks):

# %% tags=["show-output"]
chunks = pd.read_csv(data.repo_file("figures/08_cpu_chunks.csv"))
print(chunks["provenance"].iloc[0])
at = chunks[chunks["length"] == CHUNK_LENGTH].set_index("pair positions per chunk")["seconds per block"]
print(f"{CHUNK_LENGTH} aa: {lean.CPU_POSITIONS:,} positions per chunk run a block "
      f"{at[lean.AUTO_POSITIONS] / at[lean.CPU_POSITIONS]:.1f}× as fast as {lean.AUTO_POSITIONS:,} (the whole protein)")
chunks.pivot_table(index="pair positions per chunk", columns="length", values="seconds per trunk pass (× blocks)")

# %% [markdown]
# The recipes with the lean trunk (`-lean`) use `lean.CPU_POSITIONS`. Your CPU's caches may prefer another size — measure three sizes
# on one full-size trunk block, in the precision of this CPU's recipe (seconds; the block has random weights, only its
# speed matters), and if another size wins, pass it with `lean.make_lean(model, lean.LeanOptions(positions=N))`:

# %%
CPU_DTYPE = torch.bfloat16 if recipes.RECIPES[RECIPE].computes_bf16 else torch.float32
mine_chunks = cpu.chunk_sweep(CHUNK_LENGTH, positions=(2**11, 2**13, 2**15), dtype=CPU_DTYPE, repeats=2)
print("the -lean recipes use", lean.CPU_POSITIONS, "positions per chunk; fastest here:",
      int(mine_chunks.loc[mine_chunks["seconds per block"].idxmin(), "pair positions per chunk"]))
mine_chunks

# %% [markdown]
# ## 4 · Fold the seed's protein with the recipe chosen for this CPU
#
# Both recipes that section 1 chooses from start the same way: `from_pretrained` with the configuration flag
# `fp16_esm=True` (notebook 02) builds the language model in fp16, as the checkpoint stores it, so its fp16 weights
# (size: section 1) are read from the memory-mapped file, never copied to fp32; the trunk loads in fp32. Then:
# - **`bf16-lean`** (a CPU with bf16 instructions): `model.to(torch.bfloat16)` converts every parameter, one at a time
#   (fp16 → bf16 for the language model, fp32 → bf16 for the rest) — everything computes in bf16;
# - **`fp16-lean`** (no bf16 instructions): nothing is converted — the language model computes in fp16 as stored,
#   the trunk in fp32; numerically notebook 02's `fp16` recipe, so its accuracy is that of the checkpoint.
#
# Both then get notebook 07's lean trunk with chunks sized for the CPU's caches (section 3), which also saves time on
# a CPU: no L³ attention logits to write and read. Section 7 has the measured times for three classes of CPU.

# %%
from transformers import AutoConfig, AutoTokenizer, EsmForProteinFolding

sequence = SEED
config = AutoConfig.from_pretrained(MODEL_ID)
config.esmfold_config.fp16_esm = True  # the language model in fp16, as stored: memory-mapped, never fp32
with cpu.ram_sampler() as ram:
    model = EsmForProteinFolding.from_pretrained(MODEL_ID, config=config, dtype=torch.float32, device_map="cpu")
    model.eval()
    if RECIPE == "bf16-lean":  # only where section 1 measured bf16 faster than fp32
        model.to(torch.bfloat16)  # parameter by parameter: fp16 → bf16 and fp32 → bf16, never an fp32 language model
    lean.make_lean(model, lean.LeanOptions(positions=lean.CPU_POSITIONS))  # notebook 07's trunk, cache-sized chunks
tokenizer = AutoTokenizer.from_pretrained(MODEL_ID)
print(f"loaded '{RECIPE}': language model {model.esm.dtype}, trunk {next(model.trunk.parameters()).dtype}; peak "
      f"anonymous RAM {ram['peak anonymous RAM (GB)']:.2f} GB, peak RSS {ram['peak RSS (GB)']:.2f} GB")

# %% [markdown]
# One fold of 1CA2 with default recycles, its RAM sampled, split with forward hooks into the language model (once),
# the 48-block trunk (four times) and the structure module after each pass (`benchmark.stage_times`):

# %%
with cpu.ram_sampler() as ram, memory.measure("1CA2", device="cpu") as record:
    stages = benchmark.stage_times(model, tokenizer, sequence)
print(notebook.label(f"1CA2 ({len(sequence)} aa): {record['seconds']:.0f} s, peak anonymous RAM "
                     f"{ram['peak anonymous RAM (GB)']:.2f} GB"))

# %% [markdown]
# ## 5 · Where the time goes, and what fewer recycles would save

# %%
times = pd.Series({k: v for k, v in stages.items() if k.endswith("(s)")}).round(1)
times

# %%
lm, sm = stages["language model (s)"], stages["structure module, all passes (s)"] / 4
trunk = sum(v for k, v in stages.items() if k.startswith("trunk pass")) / 4
other = stages["other (s)"]
pd.DataFrame({"num_recycles": [None, 2, 1, 0],
              "trunk passes": [4, 3, 2, 1],
              "estimated seconds": [round(lm + other + n * (trunk + sm), 1) for n in (4, 3, 2, 1)]})

# %% [markdown]
# Each pass dropped saves one trunk pass and one structure-module pass: about a quarter of the trunk's time, since
# the default runs four. What fewer passes cost in accuracy is a question for the real weights: the
# [transformers documentation](https://huggingface.co/docs/transformers/model_doc/esm#transformers.EsmForProteinFolding.forward)
# advises the most recycles the model was trained with, which `num_recycles=None` uses, and notebook 05's metrics are
# the tool to check. With a stand-in, the time column is all this cell can tell.

# %% [markdown]
# `cpu.load_cpu(name)` (in `helpers/cpu.py`) wraps the steps of the loading cell above for every recipe of section 2's
# table — the torchao ones (`int8dq-lm-lean`, `int8wo-lm-lean`) quantize the fp16 language model after loading — and
# section 6 uses it. Asked for a bf16 recipe on a CPU that emulates bf16, it warns before loading.

# %% [markdown]
# ## 6 · Agreement between the CPU recipes
#
# The reference is the fp32 prediction when this machine has the RAM to load it (section 2's recipes table); on a
# 12.7 GB Colab runtime it does not fit, and the reference becomes `fp16`, notebook 02's recipe: the language model
# exactly as stored in the checkpoint, the trunk in fp32. Each recipe folds the same `SHORT` residues and is compared
# with the reference.
#
# Recipes that compute in bf16 are skipped where this CPU emulates bf16 (`cpu.fast_here`): `bf16-lean`'s folds would
# take many times longer than its table says. The lean recipes with bf16 only in the language model were measured
# about as fast as `fp16-lean` on such CPUs (section 7's table), but are skipped too.

# %%
short = SHORT
REFERENCE = "fp32" if ROOM_FOR_FP32 else "fp16"
print(f"reference: {REFERENCE}")
predictions = {RECIPE: folding.fold(model, tokenizer, short)}  # the model of section 4
if RECIPE == "fp16-lean":  # the same weights with the original trunk are `fp16`: no second load
    lean.undo_lean(model)
    model.trunk.set_chunk_size(cpu.CPU_CHUNK)
    predictions["fp16"] = folding.fold(model, tokenizer, short)
del model
memory.free_memory()
candidates = [name for name in recipes.shown_in(recipes.CPU_TABLE)  # section 2's recipes that load here
              if cpu.loads_here(name) and not recipes.RECIPES[name].prequantized]
print("skipped (bf16 emulated on this CPU):", [r for r in candidates if not cpu.fast_here(r)] or "none")
for name in [REFERENCE] + [r for r in candidates if r != REFERENCE and cpu.fast_here(r)]:
    if name in predictions:
        continue
    model, tokenizer = cpu.load_cpu(name)
    predictions[name] = folding.fold(model, tokenizer, short)
    del model
    memory.free_memory()
agreement = benchmark.agreement_table(predictions, reference=REFERENCE)
agreement["computes as a recipe notebook 05 judges?"] = ["yes" if recipes.accuracy_judged(name) else "no"
                                                          for name in agreement.index]
print(notebook.label(f"agreement with {REFERENCE}, {len(short)} aa"))
agreement

# %% [markdown]
# With random weights these numbers measure only how much rounding each recipe adds to a meaningless structure; with
# the real weights they say how far each CPU recipe moves the prediction. Whether that matters for accuracy against
# experiment is notebook 05's question.

# %% [markdown]
# ## 7 · Three classes of CPU, and how long on yours
#
# Which recipe wins, and how fast, depends on the CPU's class. All three classes were measured on one CPU, the AMD
# EPYC of the provenance line below (AVX-512 BF16, no AMX, 2 vCPUs). It was made to behave like older CPUs by capping
# the instructions its libraries may use, set before torch starts (`cpu.CPU_CLASSES`).
#
# PyTorch's x86 builds bring two math libraries (`torch.__config__.show()` lists them: MKL-DNN, oneDNN's former
# name, and `BLAS_INFO=mkl`):
# - `ONEDNN_MAX_CPU_ISA` caps oneDNN, which PyTorch uses for bf16 matrix products on a CPU
#   ([its cap](https://oneapi-src.github.io/oneDNN/dev_guide_cpu_dispatcher_control.html));
# - `MKL_ENABLE_INSTRUCTIONS` caps Intel MKL (Math Kernel Library), PyTorch's BLAS for fp32 matrix products
#   ([its cap](https://www.intel.com/content/www/us/en/docs/onemkl/developer-guide-linux/2024-2/instruction-set-specific-dispatch-on-intel-archs.html));
# - `ATEN_CPU_CAPABILITY` caps PyTorch's own vectorised kernels: softmax, layer norm, element-wise operations
#   ([PyTorch's CPU kernels](https://github.com/pytorch/pytorch/blob/main/aten/src/ATen/native/cpu/README.md)).
#
# What the caps do not emulate: the clock speed, the caches and the memory bandwidth stay this CPU's, so an older CPU
# of the same class is slower still. And MKL's documentation says its cap works on Intel processors only: on this AMD
# CPU the fp32 products may have run uncapped, as the nearly equal fp32 columns of the matrix-product table below
# suggest. The times of the fp32-arithmetic recipes (`fp16-lean`, `fp16`) in the older classes may therefore be
# optimistic.
#
# Each recipe that fits 12.7 GB, one process per recipe, the full-size architecture with random weights, default
# recycles (`python -m tools.cpu_bench classes`), seconds per fold. ✔ marks the recipe `cpu.choose_recipe()` picked
# under that cap. AVX-512 BF16 is the uncapped CPU of section 2's benchmark: its lengths missing here are there.

# %% tags=["show-output"]
classes = pd.read_csv(data.repo_file("figures/08_cpu_classes.csv"))
print(classes["provenance"].iloc[0].split(" · instruction cap")[0])  # the caps: the table's CPU class column
marked = classes.assign(recipe=classes["recipe"] + classes["chosen here"].map({True: " ✔", False: ""}))
marked.pivot_table(index=["CPU class", "recipe"], columns="length", values="fold seconds", sort=False).sort_index(axis=1)

# %% [markdown]
# Matrix products per class (GFLOPS; the first product is section 1's probe, the second an ESM-2 MLP layer for 1CA2):

# %% tags=["show-output"]
matmul.pivot_table(index="CPU class", columns=["product", "dtype"], values="GFLOPS", sort=False)

# %% [markdown]
# To estimate the chosen recipe on *this* CPU, scale the row of its class by the ratio of matrix throughput in the
# recipe's precision (same probe as section 1). A rough guide only: much of a fold's time is element-wise work
# (softmax, layer norms, gates) that scales with the clock and the memory rather than with GFLOPS.

# %%
mine = cpu.cpu_class()
precision = "bfloat16" if recipes.RECIPES[RECIPE].computes_bf16 else "float32"
probe = matmul[matmul["product"] == " × ".join(map(str, cpu.PROBE_SHAPE))].set_index(["CPU class", "dtype"])["GFLOPS"]
scale = probe[(mine, precision)] / max(gflops[precision], 1e-9)
row = classes[(classes["CPU class"] == mine) & (classes["recipe"] == RECIPE)].set_index("length").sort_index()
pd.DataFrame({f"measured, {mine} (s)": row["fold seconds"], "estimated here (s)": (row["fold seconds"] * scale).round(0)})

# %% [markdown]
# ## Recap
# - A CPU runs ESMFold; the limits are RAM while loading and time.
# - Load the language model from the checkpoint's fp16 and convert it directly (bf16, int8) — never through fp32 — and
#   measure anonymous memory, not only RSS.
# - Choose the precision by measuring: on a CPU with bf16 instructions (AVX-512 BF16; AMX CPUs have it too) bf16
#   multiplies several times faster than fp32 and `bf16-lean` computes as the GPU recipe `bf16` does; elsewhere bf16
#   is emulated and `fp16-lean` keeps notebook 02's `fp16` arithmetic. That is the safe choice, not always the
#   fastest: section 7's table shows the unjudged int8 language models ahead on some classes. The lean trunk helps
#   either way, with chunks small enough to stay in the CPU's caches (measure the size on yours).
# - Time ≈ LM + passes × (trunk + structure module): recycles are the main lever left, at an accuracy cost only the
#   real weights can measure.
#
# ## Exercises
# 1. How many threads are best? Time `cpu.matmul_gflops()` with `cpu.set_threads(1)` and with the default.
# 2. Estimate `fp16` (the original fp32 trunk) on your CPU from the committed benchmark of section 2 (measured on
#    the AVX-512 BF16 machine; fp32 scaling), and compare it with the lean trunk's `fp16-lean` of section 7.
# 3. From section 5's split, how long would 1CA2 take with `num_recycles=1` (two trunk passes) on this CPU?
# 4. Does the best chunk depend on the length? Run `cpu.chunk_sweep` at `SWEEP_LENGTH` residues and compare the
#    fastest number of pair positions per chunk with section 3's.
#
# Solutions follow (hidden in Colab and Jupyter; click to expand).

# %% cellView="form" jupyter={"source_hidden": true} tags=["solution"]
# @title Solution 1 — threads
for n in (1, threads):
    cpu.set_threads(n)
    print(f"{n} thread(s): {cpu.matmul_gflops():.0f} GFLOPS (fp32)")
cpu.set_threads()

# %% cellView="form" jupyter={"source_hidden": true} tags=["solution"]
# @title Solution 2 — fp16 on this CPU
fp16_times = bench[bench["recipe"] == "fp16"].set_index("length")["fold seconds"]
print((fp16_times * probe[("AVX-512 BF16", "float32")] / gflops["float32"]).round(0))

# %% cellView="form" jupyter={"source_hidden": true} tags=["solution"]
# @title Solution 3 — two trunk passes
print(f"num_recycles=1: ≈ {benchmark.seconds_with_passes(stages, 2):.0f} s (default, 4 passes: {record['seconds']:.0f} s)")

# %% cellView="form" jupyter={"source_hidden": true} tags=["solution"]
# @title Solution 4 — the best chunk per length
sweep = cpu.chunk_sweep(SWEEP_LENGTH, positions=(2**11, 2**13, 2**15), dtype=CPU_DTYPE, repeats=2)
for n, table in [(SWEEP_LENGTH, sweep), (CHUNK_LENGTH, mine_chunks)]:
    print(f"{n} aa: fastest with {int(table.loc[table['seconds per block'].idxmin(), 'pair positions per chunk'])} "
          "pair positions per chunk")

# %% [markdown]
# ## Next
# This is the last notebook of the series: on to the [results page](../docs/results.md#which-recipe-fits-my-hardware)
# for the hardware table, back to the [README](../README.md), or to
# [01 · The fp32 baseline: ESMFold at full precision on a GPU](01_fp32_baseline.ipynb) ([Colab](https://colab.research.google.com/github/OWNER/gpu-poor-esmfold/blob/v0.1.0/notebooks/01_fp32_baseline.ipynb)) on a GPU runtime.
#
# ← Previous: [07 · A leaner folding trunk — a predicted 3,000 residues on a free T4 (advanced)](07_lean_trunk.ipynb) ([Colab](https://colab.research.google.com/github/OWNER/gpu-poor-esmfold/blob/v0.1.0/notebooks/07_lean_trunk.ipynb))
