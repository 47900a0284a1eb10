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
# # 02 · Half the language model: fp16
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/OWNER/gpu-poor-esmfold/blob/v0.1.0/notebooks/02_fp16.ipynb)
#
# **What you will learn**
# - what fp16 (16-bit floating point: 2 bytes a number, fp32's 4) saves when the language model uses it;
# - the [seed article](https://github.com/davideaguglia/ESMFold)'s step — load fp32, then
#   `model.esm = model.esm.half()` — and the hidden cost it pays at load time;
# - a better route that never holds the language model in fp32 (the `fp16_esm` configuration flag), and what each
#   route does to peak GPU memory *and* CPU RAM while loading;
# - why the folding trunk stays in fp32 on a T4, and a bf16 recipe for newer GPUs;
# - how to measure agreement between two predictions of the same protein: TM-score, Cα-RMSD, lDDT-Cα, ΔpLDDT, ΔpTM.
#
# **Estimated run time on a free Colab T4:** about 6 minutes, download included ([how it is
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
NEEDS = ["biotite"]  # what this notebook uses that Colab lacks (pinned in helpers/colab.py)
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

from helpers import benchmark, data, fit, folding, gpu, memory, models, notebook, plots

# %% [markdown]
# ## Parameters
# `MODEL_ID`: the real `facebook/esmfold_v1`, or the tests' tiny stand-in (`ESMFOLD_WEIGHTS=tiny`); everything
# below is the same either way. `COMPARE` is the protein every recipe folds for the agreement check — short enough
# for the fp32 reference to fit a T4 with room to spare (notebook 01) — and `SEED` is the seed article's 1CA2, which
# fp32 folds on a T4 only with chunking and little to spare (notebook 01), and fp16 folds easily.

# %%
MODEL_ID = models.checkpoint_path()  # "facebook/esmfold_v1" (or a stand-in's folder)
DEVICE = notebook.start()  # "cuda"
COMPARE = data.REFERENCE_65AA  # 65 aa, the ESM README's example
SEED = data.seed_sequence()  # 1CA2, 259 aa
CHUNK = 64  # trunk chunk size for every fold here (notebook 01)

# %% [markdown]
# ## 1 · The reference: fp32
#
# First, arithmetic that needs no weights: how many bytes each recipe's weights take. On PyTorch's `meta` device the
# esmfold_v1 architecture is built with every shape and no data; cast as each recipe casts it, its tensors'
# `numel() × element_size()` are the exact bytes of a real load.

# %% tags=["show-output"]
import gc

import pandas as pd
import torch
from transformers import AutoConfig, AutoTokenizer, EsmForProteinFolding

GIB = 2**30
architecture = models.meta_model("random-full")  # the real esmfold_v1 architecture, on the meta device: no weights
parameters = models.component_parameters(architecture)
weights = {"fp32": models.weights_bytes(architecture)}
architecture.esm.half()  # where both fp16 routes end: the language model in fp16, the rest in fp32
weights["fp16 (both routes)"] = models.weights_bytes(architecture)
weights["bf16"] = models.weights_bytes(architecture.to(torch.bfloat16))  # everything in bf16
del architecture

lm = parameters["language model (ESM-2)"]
print(f"language model: {lm / 1e9:.2f} B parameters; trunk, structure module and heads: "
      f"{(parameters['total'] - lm) / 1e9:.2f} B")
saved_gib = (weights["fp32"]["total"] - weights["fp16 (both routes)"]["total"]) / GIB
print(f"halving the language model saves {saved_gib:.2f} GiB")
fp32_gib = weights["fp32"]["total"] / GIB
print(f"fp32 on a free T4: {fp32_gib:.2f} GiB of the {gpu.T4.usable_gib:.2f} GiB PyTorch can use → "
      f"{gpu.T4.usable_gib - fp32_gib:.2f} GiB left for activations")
pd.DataFrame({name: {"language model (GiB)": round(w["language model (ESM-2)"] / GIB, 2),
                     "trunk, structure module, heads (GiB)": round((w["total"] - w["language model (ESM-2)"]) / GIB, 2),
                     "total (GiB)": round(w["total"] / GIB, 2), "total (GB)": round(w["total"] / 1e9, 2),
                     "share of a T4": f"{w['total'] / GIB / gpu.T4.usable_gib:.0%}"}
              for name, w in weights.items()}).T

# %% [markdown]
# fp32 fills most of a T4, but it fits: notebook 01 loads it onto a T4 and folds short proteins in what is left.
# Every saving below is judged against the fp32 prediction of the same protein, folded as in notebook 01.
#
# Each recipe here is loaded, folded and then **deleted**, and PyTorch's cache emptied, so that the next one starts
# from an empty GPU: `del model` drops our name for the model, `gc.collect()` frees whatever still held on to it (a
# reference cycle, a stored error), and `torch.cuda.empty_cache()` hands the freed blocks back to the driver.

# %%
tokenizer = AutoTokenizer.from_pretrained(MODEL_ID)
records, results = {}, {}

with memory.measure("load fp32", device=DEVICE) as load:
    model = EsmForProteinFolding.from_pretrained(MODEL_ID, dtype=torch.float32, device_map=DEVICE)
model.eval().trunk.set_chunk_size(CHUNK)
with memory.measure("fold fp32", device=DEVICE) as fold:
    results["fp32"] = folding.fold(model, tokenizer, COMPARE)
records["fp32"] = {"weights (GiB)": models.weights_bytes(model)["total"] / memory.GIB,
                   **{f"load {k}": v for k, v in load.items()}, **{f"fold {k}": v for k, v in fold.items()}}
del model
gc.collect()
torch.cuda.empty_cache()
pd.Series(records["fp32"])

# %% [markdown]
# ## 2 · The seed's route: load fp32, then halve the language model
#
# The seed article's one line: `model.esm = model.esm.half()`. After it, each language-model parameter takes 2 bytes
# instead of 4: the saving printed in section 1. But during loading the whole fp32 model is on the GPU, so the
# load-time peak is the fp32 one. On a T4 that works, just (section 1 printed what fp32 leaves); on a 12 GB card the
# load fails before `.half()` is ever reached.
#
# The freed fp32 blocks also stay in PyTorch's cache until `torch.cuda.empty_cache()`, and `nvidia-smi` (NVIDIA's
# command-line monitor) counts them as used. Measured on an H100 right after each route's load, without
# `empty_cache()`:

# %% tags=["show-output"]
measured = pd.read_csv(data.repo_file("figures/09_gpu_check.csv"))  # the series' GPU measurements, committed
first = measured[measured.step == "load"].iloc[0]
print(f"measured on an {first.device} (torch {first.torch}, transformers {first.transformers}, {first.date}): the "
      "full-size architecture with random values — real memory and time, meaningless predictions")
loads = measured[(measured.step == "load") & measured.recipe.isin(["fp32", "fp16-seed", "fp16"])].set_index("recipe")
loads[["weights (GiB)", "peak allocated (GiB)", "reserved after (GiB)", "nvidia-smi after (GiB)"]].round(1)

# %% [markdown]
# The seed's route, with the `empty_cache()` it needs:

# %%
with memory.measure("load fp16-seed", device=DEVICE) as load:
    model = EsmForProteinFolding.from_pretrained(MODEL_ID, dtype=torch.float32, device_map=DEVICE)
    model.esm = model.esm.half()
    torch.cuda.empty_cache()
model.eval().trunk.set_chunk_size(CHUNK)
with memory.measure("fold fp16-seed", device=DEVICE) as fold:
    results["fp16-seed"] = folding.fold(model, tokenizer, COMPARE)
records["fp16-seed"] = {"weights (GiB)": models.weights_bytes(model)["total"] / memory.GIB,
                        **{f"load {k}": v for k, v in load.items()}, **{f"fold {k}": v for k, v in fold.items()}}
print("language model:", model.esm.dtype, "| trunk:", model.trunk.structure_module.ipa.linear_q.weight.dtype)
del model
gc.collect()
torch.cuda.empty_cache()

# %% [markdown]
# ## 3 · The better route: load the language model in fp16 directly
#
# The checkpoint on the hub *already* stores the language model in fp16: that is why the file has about the size of
# section 1's fp16 row, not of its fp32 row. We only need `from_pretrained` to keep it that way. Three candidate
# routes, checked on transformers 5.23:
#
# | route | result |
# |---|---|
# | `dtype="auto"` | everything fp32: the config's `torch_dtype` is float32, so the fp16 tensors are upcast |
# | `dtype={"esm": torch.float16, "": torch.float32}` (a per-module dict) | everything fp32: transformers warns that per-module dtypes are deprecated and forces float32 |
# | config flag `esmfold_config.fp16_esm=True` with `dtype=torch.float32` | **language model fp16, trunk fp32** ✔ |
#
# `fp16_esm` is ESMFold's own switch: when it is set, `EsmForProteinFolding.__init__` calls `self.esm.half()` on
# the freshly built (still empty) model, so the loader then fills fp16 parameters with the checkpoint's fp16 tensors
# — nothing is ever materialised in fp32.
#
# The original fair-esm ESMFold always runs its language model in fp16 (its
# [`esmfold.py`](https://github.com/facebookresearch/esm/blob/main/esm/esmfold/v1/esmfold.py) calls
# `self.esm.half()`). The hub's `config.json` had `fp16_esm: true` when it was uploaded and was switched to `false`
# on 2022-11-02 ([the model's history](https://huggingface.co/facebook/esmfold_v1/commits/main)); the flag still
# works. Load the configuration, set the flag, and hand the configuration to `from_pretrained`:

# %%
config = AutoConfig.from_pretrained(MODEL_ID)
config.esmfold_config.fp16_esm = True
with memory.measure("load fp16", device=DEVICE) as load:
    model = EsmForProteinFolding.from_pretrained(MODEL_ID, config=config, dtype=torch.float32, device_map=DEVICE)
model.eval().trunk.set_chunk_size(CHUNK)
with memory.measure("fold fp16", device=DEVICE) as fold:
    results["fp16"] = folding.fold(model, tokenizer, COMPARE)
records["fp16"] = {"weights (GiB)": models.weights_bytes(model)["total"] / memory.GIB,
                   **{f"load {k}": v for k, v in load.items()}, **{f"fold {k}": v for k, v in fold.items()}}
print("language model:", model.esm.dtype, "| trunk:", model.trunk.structure_module.ipa.linear_q.weight.dtype)

# %% [markdown]
# Now the seed's protein fits with room to spare — the predictor of notebook 04, for a free T4:

# %% tags=["show-output"]
print(fit.verdict("fp16", len(SEED), CHUNK, gpu.T4)[1])

# %%
with memory.measure("fold 1CA2, fp16", device=DEVICE, length=len(SEED)) as seed_fold:
    seed_result = folding.fold(model, tokenizer, SEED)
pd.Series({**seed_fold, **seed_result.summary()}).to_frame(notebook.label("1CA2, fp16"))

# %% [markdown]
# We keep this fp16 model loaded to the end of the notebook (the exercises use it): each load reads the whole
# checkpoint again, about a minute at the 150 MB/s that the series' run plan assumes for Colab.

# %% [markdown]
# **What you typed in notebooks 01–02, in one function.** `models.load_model(recipe, device=...)` does exactly these
# loads — the dtype, the `fp16_esm` flag, `.half()`, later notebooks' quantization — for a recipe *name*
# (`recipes.RECIPES` lists them), and `benchmark.load_and_fold` adds the measuring, folding and freeing above. From
# here on the series uses them.

# %% [markdown]
# ## 4 · Why the folding trunk stays fp32 on a T4
#
# A floating-point format trades range (its largest number) against precision (the gap between neighbouring numbers
# near 1). The three formats of this notebook:

# %% tags=["show-output"]
for dtype in (torch.float32, torch.float16, torch.bfloat16):
    info = torch.finfo(dtype)
    largest = f"{info.max:,.0f}" if info.max < 1e6 else f"{info.max:.1e}"
    print(f"{str(dtype).removeprefix('torch.'):8} {info.bits} bits: largest {largest:>7}, gap near 1: {info.eps:.1e}")

# %% [markdown]
# - **fp16's range is small.** The trunk's pair representation and its layer norms see larger intermediate values,
#   and a whole-model fp16 cast produces NaNs
#   ([transformers issue #47470](https://github.com/huggingface/transformers/issues/47470)). The Hugging Face code
#   guards those operations only under fp16 *autocast*, PyTorch's mode that picks a precision per operation
#   ([autocast](https://docs.pytorch.org/docs/stable/amp.html); the check is `is_fp16_enabled`, see
#   [transformers#47472](https://github.com/huggingface/transformers/pull/47472)).
# - **bf16** (bfloat16) has fp32's range in 16 bits and would be the natural choice, but the T4 (Turing, 2018) has no
#   bf16 arithmetic (below).
# - **TF32** (tensor-float 32: fp32 numbers multiplied with fp16's 10-bit mantissa, the digits of a float, on the
#   GPU's matrix units) is the other cheap trick of newer GPUs; a T4 lacks it too
#   ([PyTorch's notes](https://docs.pytorch.org/docs/stable/notes/cuda.html#tensorfloat-32-tf32-on-ampere-and-later-devices)).
#
# So on a T4 the trunk keeps its parameters in fp32 (section 1's table). Exercise 2 tries the trunk in fp16 anyway:
# whether its accuracy survives can only be judged with the real weights.
#
# ### bf16 for readers with newer GPUs
# On Ampere and newer GPUs (A100, RTX 30 and 40 series, L4) the whole model can run in bf16: section 1's bf16 row.
# Whether a GPU computes in bf16 depends on its **compute capability**, NVIDIA's version number for a GPU generation
# ([list](https://developer.nvidia.com/cuda-gpus)): 7.5 for a T4, 8.0 and up from Ampere on. bf16 needs 8.0
# ([NVIDIA's support matrix](https://nvidia.github.io/TransformerEngine/support_matrix.html)).
#
# PyTorch asks `torch.cuda.is_bf16_supported()`, but by default a T4 answers True: the call only checks that a bf16
# tensor can be made, and a T4 emulates bf16 in fp32, slowly
# ([pytorch#148322](https://github.com/pytorch/pytorch/pull/148322)). With `including_emulation=False` it asks for
# the hardware. On a T4 the cell below says so and loads nothing. On a GPU with bf16 it parks section 3's fp16 model
# in CPU RAM while bf16 has the GPU. Its accuracy, too, can only be judged with the real weights.

# %%
bf16_hardware = torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
if torch.cuda.is_available():
    print(f"{torch.cuda.get_device_name()}: compute capability {torch.cuda.get_device_capability()}; "
          f"is_bf16_supported(): {torch.cuda.is_bf16_supported()}; without emulation: {bf16_hardware}")
if bf16_hardware:
    model.to("cpu")  # the fp16 model waits in CPU RAM, so that bf16 is measured alone on the GPU
    gc.collect()
    torch.cuda.empty_cache()
    with memory.measure("load bf16", device=DEVICE) as load:
        bf16_model = EsmForProteinFolding.from_pretrained(MODEL_ID, dtype=torch.bfloat16, device_map=DEVICE)
    bf16_model.eval().trunk.set_chunk_size(CHUNK)
    with memory.measure("fold bf16", device=DEVICE) as fold:
        results["bf16"] = folding.fold(bf16_model, tokenizer, COMPARE)
    records["bf16"] = {"weights (GiB)": models.weights_bytes(bf16_model)["total"] / memory.GIB,
                       **{f"load {k}": v for k, v in load.items()}, **{f"fold {k}": v for k, v in fold.items()}}
    del bf16_model
    gc.collect()
    torch.cuda.empty_cache()
    model.to(DEVICE)
else:
    print("no bf16 arithmetic here (it needs compute capability 8.0 or newer): the bf16 recipe is skipped, "
          "nothing is loaded")

# %% [markdown]
# ## 5 · Did the prediction change? Measuring agreement
#
# Two predictions of the same sequence can be compared residue by residue:
# - **TM-score** (0–1; 1 = identical fold): the fraction of residues that superpose closely, weighted so that
#   small distances count most, on a scale that does not depend on length
#   ([Zhang & Skolnick 2004](https://doi.org/10.1002/prot.20264)). Here the *sequence-dependent* version: residue i
#   is paired with residue i, and the superposition is searched to maximise the score, as the
#   [TM-score program](https://zhanggroup.org/TM-score/) does.
# - **Cα-RMSD** (Å), the root-mean-square distance between matching Cα atoms after the best least-squares
#   superposition: sensitive to a few far-off residues (e.g. a floppy tail).
# - **lDDT-Cα** (0–1), the local distance difference test: compares all local inter-atomic distances and needs no
#   superposition ([Mariani et al. 2013](https://doi.org/10.1093/bioinformatics/btt473)).
# - **ΔpLDDT** and **ΔpTM**: how the model's own *confidence* scores (notebook 01) moved.
#
# The helpers build these on [biotite](https://www.biotite-python.org/) (superposition, TM-score formula, lDDT).

# %%
agreement = benchmark.agreement_table(results, reference="fp32")
agreement

# %%
plots.plot_plddt_differences(results, reference="fp32", provenance=notebook.provenance_line(DEVICE));

# %% [markdown]
# ## 6 · The whole picture: memory, time, agreement
#
# Weights are computed from the loaded tensors (exact). *Load peak* is the highest GPU memory during
# `from_pretrained`, where the seed's route pays for its fp32 detour; *fold peak* is the highest during one fold;
# *device used* is what `nvidia-smi` would show after the fold (CUDA context included); *CPU RAM* is the process's
# peak resident memory (RSS) during loading.

# %%
table = pd.DataFrame(records).T
columns = [c for c in ["weights (GiB)", "load peak allocated (GiB)", "load peak RSS, CPU (GiB)",
                       "fold peak allocated (GiB)", "fold peak reserved (GiB)", "fold device used, nvidia-smi (GiB)",
                       "fold seconds"] if c in table.columns]
summary = table[columns].astype(float).join(agreement[["TM-score vs reference", "Cα-RMSD vs reference (Å)"]])
print(notebook.label(f"{len(COMPARE)} aa, chunk {CHUNK}"))
summary

# %%
bar_columns = [c for c in ["weights (GiB)", "load peak allocated (GiB)", "fold peak allocated (GiB)",
                           "load peak RSS, CPU (GiB)", "fold seconds"] if c in table.columns]
plots.plot_recipe_bars(table, bar_columns, title=notebook.label(f"fp32 vs fp16 language model ({len(COMPARE)} aa, "
                                                                 f"chunk {CHUNK})"),
                        provenance=notebook.provenance_line(DEVICE),
                        budget_gib=gpu.budget_gib());

# %% [markdown]
# **What to look for** (with the real weights on a GPU): the fp16 routes' weights shrink by section 1's saving; the
# seed's route still peaks at the fp32 size while loading, the `fp16_esm` route does not; the fold peak drops by about
# the weights saving; and the two fp16 routes give *identical* predictions, because they compute the same thing.
# Agreement with fp32 should be very close to perfect (TM-score ≈ 1), since fair-esm runs its language model in fp16.
#
# The time barely changes: the trunk, which does most of the work, is still fp32. Seconds per fold measured on the
# H100 of section 2, by length (default recycles, no chunking):

# %% tags=["show-output"]
folds = measured[(measured.step == "fold") & measured.recipe.isin(["fp32", "fp16-seed", "fp16"])
                 & (measured.recycles == "default")]
folds.pivot(index="length", columns="recipe", values="seconds")[["fp32", "fp16-seed", "fp16"]].rename(
    index=int).rename_axis("residues").round(2)

# %% [markdown]
# ## Recap
# - Halving the language model's bytes (section 1's table) is the cheapest saving of the series, and gives the
#   seed's 1CA2 room to spare on a T4.
# - Load it in fp16 *directly*: `config.esmfold_config.fp16_esm = True`, then
#   `from_pretrained(..., config=config, dtype=torch.float32)`. `model.esm = model.esm.half()` after an fp32 load pays
#   the fp32 peak first and leaves the fp32 blocks cached until `torch.cuda.empty_cache()`.
#   `dtype="auto"` and per-module dtype dicts both end up fp32 in transformers 5.x.
# - The trunk stays fp32 on a T4 (fp16 overflows; no bf16, no TF32). bf16 needs compute capability 8.0: ask
#   `torch.cuda.is_bf16_supported(including_emulation=False)`.
# - Compare predictions with TM-score, Cα-RMSD, lDDT-Cα, ΔpLDDT and ΔpTM — `benchmark.agreement_table` does all five.
#
# ## Exercises
# 1. Check that the two fp16 routes compute exactly the same prediction. Why must they?
# 2. Put the trunk in fp16 too (`model.half()` after loading with `fp16_esm`) and fold 1CA2. What happens to the
#    coordinates and pLDDT? (With the real weights, expect NaNs or nonsense; with a stand-in you learn nothing about
#    accuracy.)
# 3. How many bytes per parameter does the fp16 model use on average, and why is it not 2?
#
# Solutions follow (hidden in Colab and Jupyter; click to expand).

# %% cellView="form" jupyter={"source_hidden": true} tags=["solution"]
# @title Solution 1 — the two fp16 routes agree exactly
import numpy as np

same = np.array_equal(results["fp16"].positions, results["fp16-seed"].positions)
print("identical coordinates:", same, "| identical pLDDT:", np.array_equal(results["fp16"].plddt, results["fp16-seed"].plddt))
print("Both hold the same fp16 language-model weights (the checkpoint's) and the same fp32 trunk, so every operation matches.")

# %% cellView="form" jupyter={"source_hidden": true} tags=["solution"]
# @title Solution 2 — the trunk in fp16 (accuracy needs the real weights)
model.half()  # the fp16 model of section 3, now fp16 throughout
with memory.measure("fold, whole model fp16", device=DEVICE) as half_record:
    half = folding.fold(model, tokenizer, SEED)
print(half_record["status"], "| finite coordinates:", bool(np.isfinite(half.positions).all()),
      "| mean pLDDT:", round(half.mean_plddt_ca, 1))

# %% cellView="form" jupyter={"source_hidden": true} tags=["solution"]
# @title Solution 3 — average bytes per parameter
counts = models.component_parameters(models.meta_model("random-full"))  # the real architecture
lm_share = counts["language model (ESM-2)"] / counts["total"]
fp16_bytes = counts["language model (ESM-2)"] * 2 + (counts["total"] - counts["language model (ESM-2)"]) * 4
print(f"{fp16_bytes / counts['total']:.2f} bytes per parameter: the LM ({lm_share:.0%} of the parameters) uses 2, the "
      f"trunk and heads ({1 - lm_share:.0%}) still use 4.")
del model  # the end of the notebook: give the GPU back
memory.free_memory()

# %% [markdown]
# ## Next
# [03 · Quanto int8 and beyond: 8-bit, 4-bit and float8 weights](03_quantization.ipynb) ([Colab](https://colab.research.google.com/github/OWNER/gpu-poor-esmfold/blob/v0.1.0/notebooks/03_quantization.ipynb)) — store weights in 8 (or 4) bits, and learn what that costs in
# time.
#
# ← Previous: [01 · The fp32 baseline: ESMFold at full precision on a GPU](01_fp32_baseline.ipynb) ([Colab](https://colab.research.google.com/github/OWNER/gpu-poor-esmfold/blob/v0.1.0/notebooks/01_fp32_baseline.ipynb))
