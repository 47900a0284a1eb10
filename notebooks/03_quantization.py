# ---
# jupyter:
#   accelerator: GPU
#   colab:
#     gpuType: T4
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
# # 03 · Quanto int8 and beyond: 8-bit, 4-bit and float8 weights
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/OWNER/gpu-poor-esmfold/blob/v0.1.0/notebooks/03_quantization.ipynb)
#
# **What you will learn**
# - the [seed article](https://github.com/davideaguglia/ESMFold)'s int8 recipe —
#   `QuantoConfig(weights="int8")` in `from_pretrained` — and what it really saves
#   ([Quanto](https://github.com/huggingface/optimum-quanto) is Hugging Face's quantization library);
# - more recipes measured the same way: int8 in the language model only, int4, and two int8 recipes of
#   [torchao](https://github.com/pytorch/ao), PyTorch's own quantization library (float8: what it is, and why a T4
#   gains nothing from it);
# - why int8 is *slower* than fp16 here, on any GPU, and where the time goes;
# - how to save a quantized model once and reload it without re-quantizing (and without filling Colab's RAM);
# - how to check that a layer is really quantized.
#
# **Estimated run time on a free Colab T4:** about 12 minutes, download included ([how it is
# estimated](../docs/results.md#how-the-t4-run-times-are-estimated)).

# %% [markdown]
# ## Setup
# First choose a GPU: *Runtime → Change runtime type → T4 GPU*. Set `DRIVE_CACHE = True` to read the checkpoint from
# Google Drive ([notebook 01](01_fp32_baseline.ipynb) and the [guide](INSTRUCTOR_GUIDE.md#keeping-the-84-gb-download-across-notebooks) explain it).

# %%
import importlib.metadata
import subprocess
import sys

IS_COLAB = "google.colab" in sys.modules
REPO = "https://github.com/OWNER/gpu-poor-esmfold"  # stamped by `python -m tools.stamp`
REF = "v0.1.0"
NEEDS = ["optimum-quanto", "biotite", "torchao"]  # what this notebook uses that Colab lacks (pinned in helpers/colab.py)
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

from helpers import benchmark, data, fit, folding, gpu, memory, models, notebook, plots, quantization, recipes

# %% [markdown]
# ## Parameters
# As in notebook 02: the model (real, or the tests' tiny stand-in), the protein every recipe folds for the agreement
# check (short enough for the fp32 reference to fit a T4), and the trunk chunk size.

# %%
MODEL_ID = models.checkpoint_path()  # "facebook/esmfold_v1" (or a stand-in's folder)
DEVICE = notebook.start()  # "cuda"
COMPARE = data.REFERENCE_65AA  # 65 aa, the ESM README's example
CHUNK = 64

# %% [markdown]
# ## 1 · How weight quantization works
#
# An int8 weight stores each number as an 8-bit integer plus one floating-point *scale* per output row:
# `w ≈ scale × q`, with q in −127…127 (the scale is the row's largest |w| divided by 127). That is 1 byte per weight
# instead of 4 (fp32) or 2 (fp16), at the cost of rounding every weight to one of the 255 levels of its row.
#
# - **int4** keeps 16 levels, in groups of 128 weights that each have their own scale and shift (an offset), and
#   *packs* two 4-bit numbers into each byte.
# - **float8** keeps 8-bit *floating-point* numbers in the e4m3 format: a sign, 4 exponent bits and 3 mantissa
#   (digit) bits, so its levels are dense near zero and sparse far from it
#   ([FP8 formats for deep learning](https://arxiv.org/abs/2209.05433)).
#
# Quanto quantizes only the `Linear` layers' weights and leaves embeddings, layer norms and *activations* (the values
# passed from layer to layer) in their original precision
# ([Quanto's README](https://github.com/huggingface/optimum-quanto#readme)). Here is how much of ESMFold that covers,
# and the three formats on one toy layer of the language model's width, with no checkpoint needed:

# %% tags=["show-output"]
import pandas as pd
import torch
from optimum.quanto import freeze, qfloat8, qint4, qint8, quantize

architecture = models.meta_model("random-full")  # the real esmfold_v1 architecture on the meta device: no weights
in_linears = sum(m.weight.numel() for m in architecture.modules() if isinstance(m, torch.nn.Linear))
counts = models.component_parameters(architecture)
print(f"Linear weights: {in_linears / counts['total']:.1%} of ESMFold's {counts['total'] / 1e9:.2f} B parameters "
      f"(language model: {counts['language model (ESM-2)'] / 1e9:.2f} B)")
del architecture

torch.manual_seed(0)
toy_rows = {}
for qtype in (qint8, qint4, qfloat8):
    toy = torch.nn.Sequential(torch.nn.Linear(2560, 2560, bias=False))  # 2560: the language model's hidden size
    torch.nn.init.normal_(toy[0].weight, std=0.02)
    original = toy[0].weight.detach().clone()
    quantize(toy, weights=qtype)
    freeze(toy)  # replace the float weight by its quantized form
    weight = toy[0].weight
    toy_rows[qtype.name] = {"stored as": type(weight).__name__,
                            "data dtype": str(weight._data.dtype).removeprefix("torch."),
                            "bytes per weight": round(models.tensor_bytes(weight) / weight.numel(), 4),
                            "relative error": round(float((weight.dequantize().detach() - original).norm()
                                                          / original.norm()), 4)}
print("one toy 2560 × 2560 layer, values drawn from N(0, 0.02²), quantized on the CPU:")
pd.DataFrame(toy_rows).T

# %% [markdown]
# int8 takes a little over 1 byte per weight (the row scales), int4 a little over half a byte (two weights per byte,
# plus its groups' scales and shifts), float8 the same bytes as int8. What rounding does to ESMFold's own weights, and
# to a prediction, needs the real weights (notebook 05).
#
# Every recipe below reads the 8.4 GB checkpoint again (about a minute at the 150 MB/s that the series' run plan
# assumes for Colab), so the notebook loads each one once and does everything that needs it while it is there.
#
# The reference, as in notebook 02, is the fp32 prediction of the same protein. While the fp32 model is loaded we also
# time its stages (`benchmark.stage_times`: the language model, each trunk pass and the structure module, timed with
# forward hooks) for section 3.

# %%
from transformers import AutoTokenizer, EsmForProteinFolding, QuantoConfig

tokenizer = AutoTokenizer.from_pretrained(MODEL_ID)
rows, results = {}, {}
with memory.measure("load fp32", device=DEVICE) as load:
    model = EsmForProteinFolding.from_pretrained(MODEL_ID, dtype=torch.float32, device_map=DEVICE)
model.eval().trunk.set_chunk_size(CHUNK)
with memory.measure("fold fp32", device=DEVICE) as fold:
    results["fp32"] = folding.fold(model, tokenizer, COMPARE)
rows["fp32"] = {"weights (GiB)": models.weights_bytes(model)["total"] / memory.GIB,
                **{f"load {k}": v for k, v in load.items()}, **{f"fold {k}": v for k, v in fold.items()}}
fp32_stages = benchmark.stage_times(model, tokenizer, COMPARE)
del model
memory.free_memory()


def load_fold_free(name, **from_pretrained_args):
    """Load with these `from_pretrained` arguments, fold COMPARE, record memory and time, free the GPU."""
    with memory.measure(f"load {name}", device=DEVICE) as load:
        model = EsmForProteinFolding.from_pretrained(MODEL_ID, dtype=torch.float32, device_map=DEVICE,
                                                     **from_pretrained_args)
    model.eval().trunk.set_chunk_size(CHUNK)
    with memory.measure(f"fold {name}", device=DEVICE) as fold:
        results[name] = folding.fold(model, tokenizer, COMPARE)
    rows[name] = {"weights (GiB)": models.weights_bytes(model)["total"] / memory.GIB,
                  **{f"load {k}": v for k, v in load.items()}, **{f"fold {k}": v for k, v in fold.items()}}
    del model
    memory.free_memory()
    return pd.Series(rows[name])


# %% [markdown]
# ## 2 · The seed's recipe: int8 weights everywhere
#
# One argument more to `from_pretrained`: a `QuantoConfig`. Each weight is read from the checkpoint, quantized, and
# placed on the GPU; the full-precision copy is dropped.

# %%
with memory.measure("load int8", device=DEVICE) as load:
    model = EsmForProteinFolding.from_pretrained(MODEL_ID, dtype=torch.float32, device_map=DEVICE,
                                                 quantization_config=QuantoConfig(weights="int8"))
model.eval().trunk.set_chunk_size(CHUNK)
with memory.measure("fold int8", device=DEVICE) as fold:
    results["int8"] = folding.fold(model, tokenizer, COMPARE)
rows["int8"] = {"weights (GiB)": models.weights_bytes(model)["total"] / memory.GIB,
                **{f"load {k}": v for k, v in load.items()}, **{f"fold {k}": v for k, v in fold.items()}}
pd.Series(rows["int8"])

# %% [markdown]
# Is it really quantized? Look at how one `Linear` layer stores its weight, then count them all:

# %%
query = model.esm.encoder.layer[0].attention.self.query
print(type(query.weight).__name__, "| data:", query.weight._data.dtype, tuple(query.weight._data.shape),
      "| scale:", query.weight._scale.dtype, tuple(query.weight._scale.shape))
print(dict(quantization.quantized_linears(model)))

# %% [markdown]
# Every `Linear` weight is a `WeightQBytesTensor` whose data is `torch.int8` — about a quarter of its fp32 bytes
# (plus one fp32 scale per row). Now **where the time goes** in one int8 fold, beside the fp32 reference's stages:

# %%
int8_stages = benchmark.stage_times(model, tokenizer, COMPARE)
stages = pd.DataFrame({"fp32": fp32_stages, "int8": int8_stages})
print(notebook.label(f"seconds per stage, {len(COMPARE)} aa"))
stages

# %% [markdown]
# ## 3 · Why int8 is slower, not faster
#
# Quantization here saves *memory*, not time. With fp32 activations, Quanto multiplies by an int8 weight by first
# turning it back into floating point (`scale × q`, a full-size temporary matrix) and then running an ordinary
# floating-point matrix multiply: on every call, for every layer, in every trunk pass (4 with the default recycles).
# The seed article saw this too, and so did an H100 (the series' committed GPU measurements):

# %% tags=["show-output"]
measured = pd.read_csv(data.repo_file("figures/09_gpu_check.csv"))
first = measured[measured.step == "load"].iloc[0]
seed_seconds = data.SEED_SECONDS
print(f"seed article (cited, {data.SEED_URL}): at 30 aa fp32 ≈ {seed_seconds['fp32'][30]} s, int8 ≈ "
      f"{seed_seconds['int8'][30]} s; at 480 aa ≈ {seed_seconds['fp32'][480]:.0f} s for both")
print(f"measured on an {first.device} (torch {first.torch}, transformers {first.transformers}, {first.date}): the "
      "full-size architecture with random values — real time, meaningless predictions; seconds per fold, default "
      "recycles, no chunking")
folds = measured[(measured.step == "fold") & (measured.recycles == "default")]
folds.pivot(index="length", columns="recipe", values="seconds")[["fp32", "fp16", "int8", "int4"]].rename(
    index=int).rename_axis("residues").round(2)

# %% [markdown]
# At short lengths the quantized recipes pay for dequantizing on every multiply. At long lengths the difference
# shrinks: the trunk's work on the L × L pair representation (triangle updates and attention, which are not
# `Linear` weight multiplies of a large matrix) dominates, and that work is the same in every recipe.
#
# Fast paths — *kernels*, GPU routines written for one kind of product — exist only on newer GPUs, and only with
# fp16/bf16 activations. Quanto's int4 weights can use the kernel of [AWQ](https://arxiv.org/abs/2306.00978)
# (activation-aware weight quantization, a 4-bit method), its float8 weights the
# [Marlin](https://github.com/IST-DASLab/marlin) kernel (fast products of 16-bit activations with low-bit weights).
# Both need compute capability ≥ 8.0 (NVIDIA's version number for a GPU generation; 8.0 is Ampere, a T4 is 7.5:
# notebook 02), as Quanto's
# [`qbits.py`](https://github.com/huggingface/optimum-quanto/blob/main/optimum/quanto/tensor/weights/qbits.py) and
# [`qbytes.py`](https://github.com/huggingface/optimum-quanto/blob/main/optimum/quanto/tensor/weights/qbytes.py)
# check.
# These recipes' activations are fp32, so on a T4, and on any GPU, each recipe multiplies like this
# (`gpu.quantized_matmul`):

# %% tags=["show-output"]
with pd.option_context("display.max_colwidth", None):
    display(pd.Series({name: gpu.quantized_matmul(name) for name in recipes.shown_in(recipes.GPU_SWEEP)
                       if recipes.RECIPES[name].quantized}, name="how the product runs").to_frame())

# %% [markdown]
# ## 4 · Save once, reload fast
#
# Quantize-on-load reads the whole checkpoint and quantizes every weight *each time* you load. Quanto models cannot go
# through `save_pretrained` (it raises “not serializable”), but their *state dict* (every tensor of the model, by
# name) can be saved, with Quanto's `quantization_map(model)`, which says which layer holds which type. Reloading
# builds the model on the `meta` device (no memory), and `requantize` turns the mapped layers into quantized ones
# filled straight from the saved int8 tensors — no full-precision weight is ever materialised. We save the int8 model
# we have; on Colab, save to Google Drive to keep the file.

# %%
import json
from pathlib import Path

from optimum.quanto import quantization_map, requantize
from safetensors.torch import load_file, save_file
from transformers import AutoConfig

saved = Path("outputs") / "esmfold-int8"
saved.mkdir(parents=True, exist_ok=True)
save_file({name: t.detach().contiguous().cpu() for name, t in model.state_dict().items()}, saved / "model.safetensors")
(saved / "quantization_map.json").write_text(json.dumps(quantization_map(model)))
model.config.save_pretrained(saved)
del model
memory.free_memory()

with memory.measure("reload pre-quantized", device=DEVICE) as reload:
    with torch.device("meta"):
        model = EsmForProteinFolding(AutoConfig.from_pretrained(saved))
    requantize(model, load_file(saved / "model.safetensors"), json.loads((saved / "quantization_map.json").read_text()),
               device=torch.device("cpu"))
    model = model.to(DEVICE).eval()
model.trunk.set_chunk_size(CHUNK)
after = folding.fold(model, tokenizer, COMPARE)
del model  # the next sections measure other recipes: give them the whole GPU
memory.free_memory()
print("identical prediction after reload:", (results["int8"].positions == after.positions).all())
size_gib = sum(f.stat().st_size for f in saved.iterdir()) / memory.GIB
pd.DataFrame([rows["int8"] | {"label": "quantize on load", "seconds": rows["int8"]["load seconds"]}, reload]).set_index(
    "label")[["seconds"]].assign(**{"file size (GiB)": size_gib})

# %% [markdown]
# `quantization.save_quantized(model, folder)` and `quantization.load_quantized(folder, device=...)` are these two
# cells as functions (notebook 08 uses them); the exercises reload the saved model with the second.

# %% [markdown]
# ## 5 · More recipes: the language model only, int4
#
# - **int8 in the language model only**: the language model runs once per fold; the trunk, which runs 4 times, stays
#   fp32. `modules_to_not_convert` lists the modules Quanto must leave alone — everything outside `esm`, the language
#   model.
# - **int4** is a one-word change: `QuantoConfig(weights="int4")`, 4 bits in groups of 128 (section 1).
# - **float8** would be one word too: `weights="float8"`, e4m3 numbers that take exactly int8's bytes (section 7's
#   weights table).
#
# This notebook does not spend a load on float8. Only GPUs of compute capability 8.9 and up (Ada and Hopper: L4,
# RTX 40, H100) multiply in float8
# ([NVIDIA's support matrix](https://nvidia.github.io/TransformerEngine/support_matrix.html)). Quanto's Marlin kernel
# multiplies float8 weights from 8.0 on, and only with fp16/bf16 activations (section 3). On a T4 float8 is storage
# only: int8's bytes, and int8's dequantize-then-multiply path.

# %%
not_the_language_model = ["trunk", "esm_s_mlp", "embedding", "distogram_head", "ptm_head", "lm_head", "lddt_head"]
load_fold_free("int8-lm", quantization_config=QuantoConfig(weights="int8", modules_to_not_convert=not_the_language_model))
load_fold_free("int4", quantization_config=QuantoConfig(weights="int4"))

# %% [markdown]
# ## 6 · torchao: the actively maintained alternative
#
# [Quanto's README](https://github.com/huggingface/optimum-quanto#readme) says it is in maintenance mode and
# recommends other libraries, torchao among them. The same `from_pretrained` call takes a `TorchAoConfig`.
# `Int8WeightOnlyConfig` is the counterpart of Quanto's int8. `Int8DynamicActivationInt8WeightConfig` also quantizes
# each layer's *input* on the fly (a "dynamic" activation quantization), so that the multiply itself runs in int8
# where the GPU and torch have an int8 kernel for it. The series keeps Quanto as its main path (it is the seed's), but
# this is where to go next.

# %%
from torchao.quantization import Int8DynamicActivationInt8WeightConfig, Int8WeightOnlyConfig
from transformers import TorchAoConfig

load_fold_free("torchao-int8wo", quantization_config=TorchAoConfig(Int8WeightOnlyConfig()))
load_fold_free("torchao-int8dq", quantization_config=TorchAoConfig(Int8DynamicActivationInt8WeightConfig()))

# %% [markdown]
# ## 7 · All recipes side by side

# %%
table = pd.DataFrame(rows).T
agreement = benchmark.agreement_table(results, reference="fp32")
columns = [c for c in ["weights (GiB)", "load peak allocated (GiB)", "load peak RSS, CPU (GiB)", "load seconds",
                       "fold peak allocated (GiB)", "fold device used, nvidia-smi (GiB)", "fold seconds"]
           if c in table.columns]
summary = table[columns].astype(float).join(
    agreement[["TM-score vs reference", "Cα-RMSD vs reference (Å)", "ΔpLDDT mean (Cα)", "ΔpTM"]])
print(notebook.label(f"{len(COMPARE)} aa, chunk {CHUNK}"))
summary

# %%
bar_columns = [c for c in ["weights (GiB)", "fold peak allocated (GiB)", "fold seconds", "load seconds"] if c in table.columns]
plots.plot_recipe_bars(table, bar_columns, title=notebook.label(f"Quantization recipes ({len(COMPARE)} aa, chunk {CHUNK})"),
                        provenance=notebook.provenance_line(DEVICE),
                        budget_gib=gpu.budget_gib());

# %% [markdown]
# The weights column is exact and does not depend on the device. For the full-size architecture it was computed once
# for every recipe, each loaded on a CPU (committed as `figures/03_recipe_weights.csv`):

# %% tags=["show-output"]
weights = pd.read_csv(data.repo_file("figures/03_recipe_weights.csv")).set_index("recipe")
print(weights["provenance"].iloc[0])  # random-full: the full-size architecture, its exact tensors and bytes
pd.DataFrame({"weights (GB)": weights["total"] / 1e9, "weights (GiB)": weights["total"] / memory.GIB,
              "of which language model (GiB)": weights["language model (ESM-2)"] / memory.GIB}).round(2)

# %% [markdown]
# Peak memory and time of the full-size model measured on an H100 are in `figures/09_gpu_check.csv` (section 3
# printed its times); agreement needs the real weights.

# %% [markdown]
# ## 8 · Every recipe is a loader option
#
# All recipes of notebooks 01–03 have a name in the registry `recipes.RECIPES`, and `models.load_model(name, ...)`
# runs the `from_pretrained` call you typed above for it — so notebooks 04–06 can sweep them:

# %% tags=["show-output"]
with pd.option_context("display.max_colwidth", None):
    display(pd.DataFrame({name: {"how it loads": r.description} for name, r in recipes.RECIPES.items()
                          if recipes.GPU_SWEEP in r.tables or recipes.WEIGHTS_TABLE in r.tables}).T)

# %% [markdown]
# The exercises use the int8 model of section 4 again: reloaded from the saved file (about int8's size in section 7's
# weights table; no quantizing, no second read of the checkpoint) with the function version of section 4's reload.

# %%
model = quantization.load_quantized(saved, device=DEVICE, chunk_size=CHUNK)

# %% [markdown]
# ## Recap
# - `QuantoConfig(weights="int8")` in `from_pretrained` stores `Linear` weights in 1 byte + a per-row scale: the
#   model's weights drop to about a quarter of fp32. `weights="int4"` roughly halves that again; `"float8"` is int8's
#   size.
# - `modules_to_not_convert` keeps modules out of quantization: int8 in the language model only keeps the trunk fp32.
# - Quantization saves memory, not time: without fast kernels (T4: none) each layer dequantizes its weight before
#   every multiply, so int8 is slower than fp16.
# - Quanto is in maintenance mode; `TorchAoConfig(Int8WeightOnlyConfig())` goes through the same call.
# - Save a Quanto model as state dict + `quantization_map`; reload with `requantize` on a meta-device model:
#   bit-identical predictions, no re-quantization — and no second read of the checkpoint.
#
# ## Exercises
# 1. How many bytes does the int8 model spend on *scales*? (Hint: `quantization.weight_storage` of every `Linear`.)
# 2. From the stage times of section 2: how much of int8's extra time is spent in the language model, and how much in
#    the trunk? Which recipe of section 5 should be faster, and is it?
# 3. Which recipe would you use on a T4 for the seed's 1CA2 (259 aa), and why? Fold it with the int8 model you have,
#    and ask the predictor about fp16.
#
# Solutions follow (hidden in Colab and Jupyter; click to expand).

# %% cellView="form" jupyter={"source_hidden": true} tags=["solution"]
# @title Solution 1 — bytes spent on scales
linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
storage = [quantization.weight_storage(m) for m in linears]
data_bytes = sum(m.weight.numel() for m in linears)  # one byte per int8 weight
total = sum(s["bytes"] for s in storage)
print(f"{len(linears)} Linear layers: {data_bytes / memory.GIB:.3f} GiB of int8 data, "
      f"{(total - data_bytes) / memory.GIB:.4f} GiB of scales")

# %% cellView="form" jupyter={"source_hidden": true} tags=["solution"]
# @title Solution 2 — where int8's extra time goes
extra = stages["int8"] - stages["fp32"]
lm_extra = extra["language model (s)"]
trunk_extra = extra[[k for k in extra.index if k.startswith("trunk pass")]].sum()
print(f"int8 − fp32: language model {lm_extra:+.2f} s, the 4 trunk passes {trunk_extra:+.2f} s")
print(f"int8-lm keeps the trunk fp32, so it pays only the first: fold {rows['int8-lm']['fold seconds']:.2f} s against "
      f"int8's {rows['int8']['fold seconds']:.2f} s")

# %% cellView="form" jupyter={"source_hidden": true} tags=["solution"]
# @title Solution 3 — int8 or fp16 for 1CA2 on a T4?
seed = data.seed_sequence()
with memory.measure("1CA2, int8", device=DEVICE) as seed_int8:
    folding.fold(model, tokenizer, seed)
for name in ["fp16", "int8"]:
    print(fit.verdict(name, len(seed), CHUNK, gpu.T4)[1])
print(f"int8 folded 1CA2 in {seed_int8['seconds']:.1f} s here. fp16 fits a T4 with room to spare and runs at about "
      "fp32 speed: use it. int8 saves memory you do not need at this length and costs time — notebook 04 shows where "
      "the length needs it.")
del model
memory.free_memory()

# %% [markdown]
# ## Next
# [04 · Memory and time against sequence length — and “will it fit?”](04_memory_vs_length.ipynb) ([Colab](https://colab.research.google.com/github/OWNER/gpu-poor-esmfold/blob/v0.1.0/notebooks/04_memory_vs_length.ipynb)) — how memory and time grow with the
# protein's length, where a T4 runs out for each recipe, and how to predict it before downloading anything.
#
# ← Previous: [02 · Half the language model: fp16](02_fp16.ipynb) ([Colab](https://colab.research.google.com/github/OWNER/gpu-poor-esmfold/blob/v0.1.0/notebooks/02_fp16.ipynb))
