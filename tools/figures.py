"""Regenerate the committed figures in figures/ (each from a CSV written next to it, each with its provenance).

`python -m tools.figures` (or `make figures`). Only figures that need no GPU are made here; none uses a stand-in.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import matplotlib.pyplot as plt
import matplotlib.ticker
import pandas as pd
import torch
import transformers

from helpers import benchmark, cpu, data, fit, gpu, lean, memory, models, notebook, plots, recipes, structure
from tools import plan


GIB = 2**30


def _save(fig, path: Path) -> Path:
    """Write a figure as PNG and close it."""
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def figures_dir() -> Path:
    """The repository's figures/ folder."""
    return data.repo_root() / "figures"


def _estimate_rule() -> str:
    return (f"fits: peak allocated + the allocator's cache ({fit.CACHE_SHARE} × activations, measured on an H100) + "
            f"{fit.QUANTO_ALLOWANCE_GIB} GiB for Quanto recipes (from the seed's readings) ≤ the card's memory less an "
            f"assumed {gpu.ASSUMED_CONTEXT_GIB} GiB CUDA context (pytorch/pytorch#109888); a free T4: "
            f"{gpu.T4.total_gib:.2f} GiB offered by CUDA; 'borderline': within {gpu.BORDERLINE_GIB} GiB of that limit")


def _lean_estimate(part: pd.DataFrame) -> pd.Series:
    """What nvidia-smi would show on a T4 for rows of 07_lean_steps.csv (int8 weights: allocated − activations)."""
    allocated = part["predicted peak allocated (GiB)"]
    return fit.nvidia_smi_estimate(part["recipe"].iloc[0], allocated, allocated - part["activations peak (GiB)"],
                                   context_gib=gpu.T4.context_gib)


def weights_per_stage(out_dir: Path) -> Path:
    """Bar chart: fp32 weights per stage of the esmfold_v1 architecture against a T4's budget (exact arithmetic)."""
    counts = models.component_parameters(models.meta_model("random-full"))
    stages = [k for k in counts if k != "total"]
    table = pd.DataFrame({"stage": stages, "parameters": [counts[s] for s in stages]})
    table["fp32 GiB"] = table["parameters"] * 4 / memory.GIB
    table["provenance"] = (f"computed, not measured: parameter counts of the esmfold_v1 architecture (transformers "
                           f"{transformers.__version__}) × 4 bytes; device-independent")
    table.to_csv(out_dir / "01_weights_per_stage.csv", index=False)

    fig, ax = plt.subplots(figsize=(8, 3.6))
    left = 0.0
    colours = ["#4C72B0", "#DD8452", "#55A868", "#8172B3"]
    for (_, row), colour in zip(table.iterrows(), colours):
        ax.barh(["fp32 weights"], [row["fp32 GiB"]], left=left, color=colour,
                label=f"{row['stage']}: {row['parameters'] / 1e9:.3f} B params, {row['fp32 GiB']:.2f} GiB")
        left += row["fp32 GiB"]
    ax.axvline(gpu.T4.usable_gib, color="red", ls="--", lw=1.5)
    ax.text(gpu.T4.usable_gib + 0.1, 0, f"free Colab T4\n{gpu.T4.usable_gib:.2f} GiB\nfor PyTorch", color="red",
            va="center", fontsize=9)
    ax.set_xlim(0, 16.5)
    ax.set_yticks([])
    ax.set_xlabel("GiB")
    ax.set_title(f"ESMFold (esmfold_v1) weights in fp32: {left:.2f} GiB before any activation")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.25), fontsize=8, ncol=1, frameon=False)
    fig.text(0.01, 0.01, f"Computed, not measured: parameter counts of the esmfold_v1 architecture × 4 bytes "
             f"(transformers {transformers.__version__}, {_dt.date.today().isoformat()}); device-independent.",
             fontsize=7, color="0.35")
    fig.subplots_adjust(bottom=0.45, top=0.88)
    return _save(fig, out_dir / "01_weights_per_stage.png")


def reference_plddt(out_dir: Path) -> Path:
    """pLDDT per residue of the published ESMFold prediction of the ESM README's 65-residue example."""
    pdb = data.fetch("reference_predictions/esmfold_v1_fairesm_65aa.pdb").read_text()
    per_residue = structure.ca_bfactors(pdb)
    table = pd.DataFrame({"residue": list(per_residue), "pLDDT (CA B-factor)": list(per_residue.values())})
    source = ("Published prediction (fair-esm esmfold_v1, real weights), not run here: "
              "github.com/silviacambiago/esmfold-project result.pdb @ 0f9b49f; B-factors = pLDDT 0–100.")
    table.assign(provenance=source).to_csv(out_dir / "01_reference_plddt.csv", index=False)
    ax = plots.plot_plddt(
        table["pLDDT (CA B-factor)"].to_numpy(),
        title="A real ESMFold prediction: the ESM README's 65-residue example "
        f"(mean pLDDT over Cα {table['pLDDT (CA B-factor)'].mean():.1f})",
        provenance=source,
    )
    return _save(ax.figure, out_dir / "01_reference_plddt.png")


_RECIPE_PROBE = """
import json, sys, time, torch
from helpers import memory, models
recipe = sys.argv[1]
with memory.measure(recipe, device="cpu") as record:
    model, _ = models.load_model(recipe, device="cpu", source="random-full")
sizes = models.weights_bytes(model)
print("@@" + json.dumps({"recipe": recipe, **sizes, "load seconds (CPU)": record["seconds"],
                         "load peak RSS (GiB)": record["peak RSS, CPU (GiB)"]}))
"""


def recipe_weights(out_dir: Path, names: list[str] | None = None) -> Path:
    """Load each recipe of the weights table on the full-size architecture on CPU (one process each); write its weight
    bytes per stage, load time and load peak RSS: the measured check of `models.expected_weights_bytes`.

    Slow (minutes; the Quanto recipes' loads peak at ≈ 23 GiB of RAM) and needs the `random-full` stand-in; bytes
    equal the real model's.
    """
    rows = []
    for recipe in names or recipes.shown_in(recipes.WEIGHTS_TABLE):
        run = subprocess.run([sys.executable, "-c", _RECIPE_PROBE, recipe], capture_output=True, text=True)
        line = next((ln for ln in run.stdout.splitlines() if ln.startswith("@@")), None)
        if line is None:
            print(f"{recipe}: failed\n{run.stderr[-2000:]}")
            continue
        rows.append(json.loads(line[2:]))
        print(rows[-1])
    table = pd.DataFrame(rows)
    table["provenance"] = (
        f"loaded on CPU: {notebook.provenance_line('cpu', models.FULL_SIZE_STAND_IN)} (the same tensors and bytes as "
        "the real weights)"
    )
    path = out_dir / "03_recipe_weights.csv"
    table.to_csv(path, index=False)
    return path


_STAGES = ["language model (ESM-2)", "folding trunk", "structure module", "heads and adapters"]


def recipe_weights_figure(out_dir: Path) -> Path:
    """Stacked bars of each recipe's weights per stage (from 03_recipe_weights.csv) against a T4's budget."""
    table = pd.read_csv(out_dir / "03_recipe_weights.csv").set_index("recipe")
    fig, ax = plt.subplots(figsize=(9, 4.2))
    bottom = pd.Series(0.0, index=table.index)
    for stage, colour in zip(_STAGES, ["#4C72B0", "#DD8452", "#55A868", "#8172B3"]):
        gib = table[stage] / memory.GIB
        ax.bar(table.index, gib, bottom=bottom, color=colour, label=stage)
        bottom += gib
    for x, total in enumerate(bottom):
        ax.text(x, total + 0.15, f"{total:.2f}", ha="center", fontsize=8)
    ax.axhline(gpu.T4.usable_gib, color="red", ls="--", lw=1.2)
    ax.text(len(table) - 0.5, gpu.T4.usable_gib + 0.2, f"free Colab T4: {gpu.T4.usable_gib:.2f} GiB for PyTorch",
            color="red", ha="right", fontsize=9)
    ax.set_ylabel("weights (GiB)")
    ax.set_ylim(0, 16.5)
    ax.set_title("ESMFold weights per loader recipe (before any activation)")
    ax.tick_params(axis="x", rotation=30)
    ax.legend(fontsize=8, loc="upper right", bbox_to_anchor=(1.0, 0.9))
    fig.text(0.01, 0.01, "Exact bytes of each recipe's tensors — " + table["provenance"].iloc[0], fontsize=6.5,
             color="0.35", wrap=True)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return _save(fig, out_dir / "03_recipe_weights.png")


def weights_table_markdown() -> str:
    """The README's per-recipe weights table, rendered from figures/03_recipe_weights.csv."""
    table = pd.read_csv(figures_dir() / "03_recipe_weights.csv")
    lines = ["| recipe | how it loads | weights (GB) | weights (GiB) | of which language model (GiB) | share of PyTorch's budget on a T4 ("
             f"{gpu.T4.usable_gib:.2f} GiB) |",
             "|---|---|---|---|---|---|"]
    for _, row in table.iterrows():
        lines.append(
            f"| `{row['recipe']}` | {recipes.get(row['recipe']).description} | {row['total'] / 1e9:.2f} | "
            f"{row['total'] / memory.GIB:.2f} | {row['language model (ESM-2)'] / memory.GIB:.2f} | "
            f"{row['total'] / memory.GIB / gpu.T4.usable_gib:.0%} |"
        )
    lines.append("")
    lines.append(f"*Provenance: {table['provenance'].iloc[0]}. Regenerate with `python -m tools.figures weights`.*")
    return "\n".join(lines)


def _traced(torch_version: str, transformers_version: str, date: str) -> str:
    """The start of every predicted table's provenance: what was traced, with which versions, when."""
    return (f"predicted, not measured: fake-tensor trace of the esmfold_v1 architecture (torch {torch_version}, "
            f"transformers {transformers_version}, {date})")


def _grid_traced(grid: pd.DataFrame) -> str:
    """`_traced` for tables read from the committed grid."""
    return _traced(grid["torch"].iloc[0], grid["transformers"].iloc[0], grid["date"].iloc[0])


def max_length_table(out_dir: Path) -> Path:
    """The "Which recipe fits my hardware?" table, predicted from the committed grid, as figures/04_max_length.csv."""
    grid = pd.read_csv(out_dir / "04_predicted_grid.csv")
    table = fit.hardware_table()
    table["provenance"] = (
        f"{_grid_traced(grid)}, default recycles, grid lengths "
        f"{', '.join(map(str, sorted(grid['length'].unique())))}; {_estimate_rule()}"
    )
    path = out_dir / "04_max_length.csv"
    table.to_csv(path, index=False)
    return path


ORIGINAL_SHADE, LEAN_SHADE = "#b8c4cc", "#2b6f9e"
#: The recipes of the README's first figure, least to most compressed (float8 and torchao fit as int8 does).
HERO_RECIPES = ("fp32", "fp16", "fp16-offload", "int8-lm", "int8", "int4")


def _t4_length(cell: str) -> tuple[int, bool]:
    """(length, the grid ends there) of a hardware-table cell such as "≥ 3072 aa" or "768 aa (chunk 128)"; (0, False)
    where nothing fits."""
    found = re.search(r"(≥\s*)?(\d+) aa", str(cell))
    return (int(found.group(2)), bool(found.group(1))) if found else (0, False)


def measured_t4_limits() -> dict[tuple[str, bool], int]:
    """{(recipe, lean): the longest fold measured under the T4 cap on the H100 (figures/09_*.csv) that fitted}, for the
    folds of the original trunk chunked or not and of the lean trunk."""
    out_dir = figures_dir()
    rows = pd.concat([pd.read_csv(out_dir / name) for name in (GPU_CHECK_CSV, GPU_LIMITS_CSV, GPU_RECHECK_CSV)
                      if (out_dir / name).exists()], ignore_index=True)
    capped = pd.to_numeric(rows["cap (GiB)"], errors="coerce") <= gpu.T4.total_gib  # "none": uncapped, not a T4
    rows = rows[(rows["step"] == "fold") & (rows["status"] == "ok") & capped]
    out: dict[tuple[str, bool], int] = {}
    for _, r in rows.iterrows():
        key = (r["recipe"], str(r["lean trunk"]) == "True")
        out[key] = max(out.get(key, 0), int(r["length"]))
    return out


def max_length_title(grid_lengths) -> str:
    """The first figure's title, from the grid it was predicted on."""
    lengths = sorted(int(n) for n in grid_lengths)
    return (f"On a free Colab T4: the longest protein each recipe folds (predicted on a {lengths[0]}–{lengths[-1]:,} "
            "aa grid)")


def max_length_figure(out_dir: Path) -> Path:
    """The README's first figure: on a free T4, the longest protein each recipe is predicted to fold, original trunk
    (best chunk size) against notebook 07's lean trunk, with the folds measured under a T4 cap marked."""
    table = pd.read_csv(out_dir / "04_max_length.csv").set_index("recipe")
    grid = pd.read_csv(out_dir / "04_predicted_grid.csv")
    t4 = next(c for c in table.columns if c.startswith("free T4"))
    measured = measured_t4_limits()
    fig, ax = plt.subplots(figsize=(9, 4.4))
    names = [r for r in HERO_RECIPES if r in table.index][::-1]
    top = max(int(n) for n in grid["length"].unique())
    for y, name in enumerate(names):
        for offset, lean, shade in ((0.2, False, ORIGINAL_SHADE), (-0.2, True, LEAN_SHADE)):
            length, open_ended = _t4_length(table.loc[f"{name} + lean trunk" if lean else name, t4])
            ax.barh(y + offset, length, height=0.36, color=shade, edgecolor="white")
            label = ("≥ " if open_ended else "") + (f"{length:,}" if length else "does not fit")
            ax.text(max(length, measured.get((name, lean), 0)) + 30, y + offset, label, va="center", fontsize=9.5,
                    fontweight="bold" if lean else "normal")
            if (name, lean) in measured:
                ax.plot(measured[name, lean], y + offset, marker="D", color="black", markersize=6, zorder=3)
    ax.set_yticks(range(len(names)), names, fontsize=10)
    ax.set_xlim(0, top * 1.12)
    ax.set_xlabel("residues (amino acids)")
    ax.set_title(max_length_title(grid["length"].unique()), fontsize=11)
    handles = [plt.Rectangle((0, 0), 1, 1, color=ORIGINAL_SHADE), plt.Rectangle((0, 0), 1, 1, color=LEAN_SHADE),
               plt.Line2D([], [], marker="D", color="black", linestyle="none")]
    ax.legend(handles, ["original trunk (best chunk size), predicted", "lean trunk (notebook 07), predicted",
                        "longest fold measured: fitted on an H100 capped to a T4"], fontsize=8.5, loc="upper right",
              framealpha=0.95)
    ax.spines[["top", "right"]].set_visible(False)
    fig.text(0.01, 0.015, f"Bars: predicted, not measured (a fold fits within the {gpu.T4.usable_gib:.2f} GiB a T4 "
             "leaves PyTorch). Measured lean folds ran the first seven of its nine changes. Sources: docs/results.md",
             fontsize=7.5, color="0.35")
    fig.subplots_adjust(left=0.14, right=0.98, bottom=0.17, top=0.9)
    fig.savefig(out_dir / "04_max_length.png", dpi=110, metadata={"Title": max_length_title(grid["length"].unique())})
    plt.close(fig)
    return out_dir / "04_max_length.png"


def max_length_markdown() -> str:
    """The README's hardware table, rendered from figures/04_max_length.csv."""
    table = pd.read_csv(figures_dir() / "04_max_length.csv")
    budgets = list(gpu.CARDS)
    lines = ["| recipe | weights (GiB) | " + " | ".join(budgets) + " |", "|---|---|" + "---|" * len(budgets)]
    for _, row in table.iterrows():
        lines.append(f"| `{row['recipe']}` | {row['weights (GiB)']:.2f} | " + " | ".join(str(row[b]) for b in budgets) + " |")
    lines.append("")
    lines.append(f"*{table['provenance'].iloc[0]}.*")
    lines.append("")
    lines.append(f"*{fit.t4_margin_sentence(table)}*")
    lines.append("")
    lines.append("*A length is the longest grid length that fits (the true limit lies "
                 "between it and the next grid length); “≥” means the grid ends there. Regenerate with "
                 "`python -m tools.grid grid && python -m tools.figures`. No GPU: [No GPU at all]"
                 "(#no-gpu-at-all-notebook-08).*")
    return "\n".join(lines)


def _cpu_class_rows(table: pd.DataFrame, chosen_only: bool = False):
    """(CPU class, recipe, chosen there?, median fold seconds by length, RAM needed in GB) per class and recipe of
    figures/08_cpu_classes.csv; the recipe that `cpu.choose_recipe()` picked under a class comes first (alone when
    `chosen_only`)."""
    for cpu_class in table["CPU class"].unique():
        part = table[table["CPU class"] == cpu_class]
        chosen = part.loc[part["chosen here"], "recipe"].unique().tolist()
        others = [r for r in part["recipe"].unique() if r not in chosen]
        for recipe in chosen + ([] if chosen_only else others):
            rows = part[part["recipe"] == recipe]
            ram = rows[["load peak anonymous RAM (GB)", "fold peak anonymous RAM (GB)"]].max().max()
            yield (cpu_class, recipe, recipe in chosen, rows.groupby("length")["fold seconds"].median(),
                   ram + cpu.mapped_weight_gb(recipe))


def cpu_classes_markdown() -> str:
    """The README's CPU-class table, rendered from figures/08_cpu_classes.csv (✔: the recipe chosen there)."""
    table = pd.read_csv(figures_dir() / "08_cpu_classes.csv")
    lengths = sorted(table["length"].unique())
    # The uncapped class is the machine of the uncapped benchmark (same CPU and versions, a day earlier): lengths a
    # recipe lacks here are taken from there and marked †, instead of folding them a second time.
    bench = pd.read_csv(figures_dir() / "08_cpu_benchmark.csv")
    uncapped = bench.groupby(["recipe", "length"])["fold seconds"].median()
    bench_date = re.search(r"\d{4}-\d\d-\d\d", bench["provenance"].iloc[0]).group()
    lines = ["| CPU class | recipe | RAM needed (GB) | " + " | ".join(f"{n} aa (s)" for n in lengths) + " |",
             "|---|---|---|" + "---|" * len(lengths)]
    for cpu_class, recipe, chosen, seconds, ram in _cpu_class_rows(table):
        cells = []
        for n in lengths:
            if n in seconds.index:
                cells.append(f"{seconds[n]:.0f}")
            elif not cpu.CPU_CLASSES[cpu_class][1] and (recipe, n) in uncapped.index:
                cells.append(f"{uncapped[recipe, n]:.0f} †")
            else:
                cells.append("—")
        lines.append(f"| {cpu_class} | `{recipe}`{' ✔' if chosen else ''} | {ram:.1f} | " + " | ".join(cells) + " |")
    borrowed = any("†" in line for line in lines)
    caps = "; ".join(f"{name}: " + (" ".join(f"`{k}={v}`" for k, v in env.items()) or "no cap")
                     for name, (_, env) in cpu.CPU_CLASSES.items())
    common = table["provenance"].iloc[0].split(" · instruction cap")[0]
    lines += ["", f"*{common}; classes emulated on that one CPU by capping the vector instructions — {caps}.*", "",
              "*The caps do not emulate the clock, the caches or the memory bandwidth. ✔ = the recipe `cpu.choose_recipe()` picked "
              "under that cap; 259 aa = the seed's 1CA2; RAM needed = measured anonymous peak + weights left "
              "memory-mapped." + (f" † = from the uncapped benchmark below (same CPU, no cap, {bench_date})." if borrowed
                                  else "") + " Regenerate with `python -m tools.cpu_bench classes RECIPES LENGTHS` (then "
              "`python -m tools.figures`).*"]
    return "\n".join(lines)


def recipe_table(out_dir: Path) -> Path:
    """"I have X GB and L residues → use recipe Y", predicted from the committed grid, as figures/06_recipes.csv."""
    grid = pd.read_csv(out_dir / "04_predicted_grid.csv")
    table = fit.recipe_table()
    table["provenance"] = (
        f"{_grid_traced(grid)}, default recycles; first recipe of "
        f"{' → '.join(recipes.ladder())} × chunk none → 128 → 64 → 32 → lean trunk that fits: {_estimate_rule()}; "
        "cells show the need as nvidia-smi would (with the card's CUDA context)"
    )
    path = out_dir / "06_recipes.csv"
    table.to_csv(path, index=False)
    return path


def recipe_markdown() -> str:
    """The README's "I have X GB and L residues" table, rendered from figures/06_recipes.csv."""
    return _csv_markdown("06_recipes.csv", ". Regenerate with `python -m tools.figures`.")


def lean_steps_table(out_dir: Path) -> Path:
    """Predicted peak as each lean change is switched on, int8 weights, L = 1,000 and 2,000 (CPU). Resumable: the rows
    of the committed table whose step the code still has are kept; only the missing ones are traced (≈ 3 minutes per
    step at L = 2,000), with two trunk passes — the lean model's later passes allocate as its second does."""
    path = out_dir / "07_lean_steps.csv"
    labels = [label for label, _ in lean.cumulative_steps(32)]
    kept = pd.read_csv(path) if path.is_file() else pd.DataFrame(columns=["length", "step"])
    kept = kept[kept["step"].isin(labels)]
    new = fit.lean_steps("int8", (1000, 2000), skip=set(zip(kept["length"], kept["step"])))
    new["provenance"] = (f"{_traced(torch.__version__, transformers.__version__, _dt.date.today().isoformat())}, "
                         f"default recycles ({fit.TRACED_PASSES} passes traced: later passes allocate as the second), "
                         "int8 weights (exact "
                         "bytes) + fp32 activations; values: peak allocated (no CUDA context)")
    table = pd.concat([kept, new], ignore_index=True)
    table["order"] = table["step"].map(labels.index)
    table = table.sort_values(["length", "order"]).drop(columns="order")
    table.to_csv(path, index=False)
    return path


def _lean_provenance(table: pd.DataFrame) -> str:
    """The lean-steps table's provenance: one sentence per tracing run, naming the steps of the later runs."""
    runs = list(dict.fromkeys(table["provenance"]))
    parts = [runs[0]]
    for run in runs[1:]:
        steps = ", ".join(dict.fromkeys(table.loc[table["provenance"] == run, "step"].str.lstrip("+ ")))
        parts.append(f"rows {steps}: " + run.split(": ", 1)[1])
    return "; ".join(parts)


def lean_steps_figure(out_dir: Path) -> Path:
    """Bars: predicted peak per lean step at L = 1,000 and 2,000 against the T4 budget (from 07_lean_steps.csv)."""
    table = pd.read_csv(out_dir / "07_lean_steps.csv")
    steps = list(dict.fromkeys(table["step"]))
    fig, ax = plt.subplots(figsize=(10, 4.8))
    lengths = sorted(table["length"].unique())
    width = 0.8 / len(lengths)
    for i, length in enumerate(lengths):
        part = table[table["length"] == length].set_index("step").reindex(steps)
        xs = [j + (i - len(lengths) / 2 + 0.5) * width for j in range(len(steps))]
        bars = ax.bar(xs, _lean_estimate(part), width=width,
                      label=f"L = {length:,}", color=["#4C72B0", "#DD8452"][i % 2])
        ax.bar_label(bars, fmt="%.1f", fontsize=7)
    ax.axhline(gpu.T4.total_gib, color="red", ls="--", lw=1.2)
    ax.text(len(steps) - 0.6, gpu.T4.total_gib + 0.5, f"CUDA total of a free T4 ({gpu.T4.total_gib:.2f} GiB)", color="red",
            ha="right", fontsize=8)
    labels = [s.replace("original model, ", "original\n").replace("+ ", "+\n").replace("_module", "_\nmodule")
              for s in steps]
    ax.set_xticks(range(len(steps)), labels, fontsize=8)
    ax.set_ylabel("predicted GPU memory on a T4,\nas nvidia-smi would show it (GiB)")
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_yticks([4, 6, 10, 15, 20, 30, 40])
    ax.set_title("The lean trunk, one change at a time: int8 weights, default recycles (cumulative left to right)")
    ax.legend(fontsize=8)
    footer = ("PREDICTION, not measured: " + _lean_provenance(table).split(": ", 1)[1].replace(
        "; values: peak allocated (no CUDA context)", "")
              + f". Bars: what nvidia-smi would show on a T4 = the predicted peak allocated + the allocator's cache "
              f"({fit.CACHE_SHARE} × activations, measured on an H100) + Quanto's {fit.QUANTO_ALLOWANCE_GIB} GiB + a "
              f"T4's CUDA context ({gpu.T4.context_gib} GiB, assumed), against the T4's CUDA total.")
    fig.text(0.01, 0.01, "\n".join(textwrap.wrap(footer, 190)), fontsize=6.5, color="0.35")
    fig.subplots_adjust(bottom=0.24)
    return _save(fig, out_dir / "07_lean_steps.png")


def lean_markdown() -> str:
    """The README's lean-trunk table, rendered from figures/07_lean_steps.csv."""
    table = pd.read_csv(figures_dir() / "07_lean_steps.csv")
    lengths = sorted(table["length"].unique())
    steps = list(dict.fromkeys(table["step"]))
    lines = ["| step (cumulative) | " + " | ".join(f"L = {n:,} (GiB)" for n in lengths) + " |",
             "|---|" + "---|" * len(lengths)]
    for step in steps:
        part = _lean_estimate(table[table["step"] == step].set_index("length"))
        lines.append(f"| {step} | " + " | ".join(f"{part[n]:.1f}" for n in lengths) + " |")
    lines += ["", f"*{_lean_provenance(table).replace('; values: peak allocated (no CUDA context)', '')}; the CSV "
              "holds peak allocated; this table shows what nvidia-smi would show on a T4: peak "
              f"allocated + the allocator's cache ({fit.CACHE_SHARE} × activations, measured on an H100) + Quanto's "
              f"{fit.QUANTO_ALLOWANCE_GIB} GiB + a T4's CUDA context ({gpu.T4.context_gib} GiB, assumed), against "
              f"the {gpu.T4.total_gib:.2f} GiB CUDA offers on a free T4. Regenerate with `python -m tools.figures "
              "lean` (CPU, ≈ 20 min).*"]
    return "\n".join(lines)


def cpu_benchmark_figure(out_dir: Path) -> Path:
    """Two panels from figures/08_cpu_benchmark.csv: seconds per fold against length per CPU recipe, and peak RAM
    per recipe against Colab's 12.7 GB."""
    table = pd.read_csv(out_dir / "08_cpu_benchmark.csv")
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8), gridspec_kw={"width_ratios": [3, 2]})
    for recipe, part in table[table["sequence"] != "1CA2 (the seed's protein)"].groupby("recipe", sort=False):
        part = part.sort_values("length")
        left.plot(part["length"], part["fold seconds"], marker="o", label=recipe, color=recipes.colour(recipe))
    seed = table[table["sequence"] == "1CA2 (the seed's protein)"]
    if len(seed):
        left.scatter(seed["length"], seed["fold seconds"], marker="*", s=140, color="black", zorder=5,
                     label="1CA2 (259 aa)")
    left.set_yscale("log")
    left.set_xlabel("sequence length (residues)")
    left.set_ylabel("seconds per fold (default recycles)")
    left.set_title("Time per fold on the CPU")
    left.legend(fontsize=8)
    anon = table.groupby("recipe", sort=False)[["load peak anonymous RAM (GB)", "fold peak anonymous RAM (GB)"]].max()
    anon = anon.max(axis=1)
    mapped = pd.Series({r: cpu.mapped_weight_gb(r) for r in anon.index})
    need = anon + mapped
    right.barh(anon.index, anon.values, color=[recipes.colour(r) or "#4C72B0" for r in anon.index],
               label="anonymous (measured peak)")
    right.barh(mapped.index, mapped.values, left=anon.values, color="#8DA0CB",
               label="weights left memory-mapped (computed)")
    for i, value in enumerate(need.values):
        right.text(value + 0.2, i, "fits" if value <= cpu.COLAB_RAM_GB else "too big", va="center", fontsize=8,
                   color="#55A868" if value <= cpu.COLAB_RAM_GB else "#C44E52")
    right.axvline(cpu.COLAB_RAM_GB, color="red", ls="--", lw=1)
    right.text(cpu.COLAB_RAM_GB, len(anon) - 0.45, f"Colab {cpu.COLAB_RAM_GB} GB ", color="red", fontsize=8, ha="right")
    right.set_xlim(0, max(17, need.max() + 3))
    right.legend(fontsize=7, loc="lower right")
    right.set_xlabel("RAM a fold needs (GB): anonymous + mapped weights")
    right.set_title("Does it fit a Colab CPU runtime?")
    fig.text(0.01, 0.01, table["provenance"].iloc[0][:230] + " …", fontsize=6.5, color="0.35")
    fig.subplots_adjust(bottom=0.18, wspace=0.35, left=0.07, right=0.98)
    return _save(fig, out_dir / "08_cpu_benchmark.png")


def cpu_markdown() -> str:
    """The README's no-GPU rows, rendered from figures/08_cpu_benchmark.csv."""
    table = pd.read_csv(figures_dir() / "08_cpu_benchmark.csv")
    lengths = sorted(table["length"].unique())
    lines = ["| recipe (on the CPU) | peak anonymous RAM (GB) | + weights left mapped (GB) | RAM needed (GB) | "
             + " | ".join(f"{n} aa (s)" for n in lengths) + " |", "|---|---|---|---|" + "---|" * len(lengths)]
    for recipe, part in table.groupby("recipe", sort=False):
        anon = part[["load peak anonymous RAM (GB)", "fold peak anonymous RAM (GB)"]].max().max()
        mapped = cpu.mapped_weight_gb(recipe)
        ram = f"{anon:.1f} | {mapped:.1f} | {anon + mapped:.1f}"
        low, high = part.groupby("length")["fold seconds"].min(), part.groupby("length")["fold seconds"].max()
        cells = [("—" if n not in low.index else f"{low[n]:.0f}" if round(low[n]) == round(high[n])
                  else f"{low[n]:.0f}–{high[n]:.0f} ({(part['length'] == n).sum()} runs)") for n in lengths]
        lines.append(f"| `{recipe}` | {ram} | " + " | ".join(cells) + " |")
    lines += ["", f"*{table['provenance'].iloc[0]}. 259 aa = the seed's 1CA2. Anonymous RAM is measured (sampled "
              "every 50 ms); weights left memory-mapped are computed from the recipe (checkpoint tensors kept in their "
              "stored dtype are read from the file's pages at every fold). Regenerate with `python -m tools.cpu_bench bench` "
              "(then `python -m tools.figures`).*"]
    return "\n".join(lines)


def predicted_memory_figure(out_dir: Path) -> Path:
    """Predicted peak memory against length per recipe (unchunked and chunk 32), with the seed's cited numbers."""
    grid = fit.predicted_grid()
    grid = grid[grid["recipe"].isin(recipes.judged()) & grid["chunk size"].astype(str).isin(["none", "32"])]
    seed = dict(data.SEED_MEMORY_GB)
    fig, ax = plt.subplots(figsize=(9.5, 5.5))
    plots.plot_memory_vs_length(grid, value="predicted nvidia-smi (GiB)", budget_gib=gpu.T4.total_gib,
                                budget_label=f"free T4: {gpu.T4.total_gib:.2f} GiB offered by CUDA (nvidia-smi's scale)",
                                seed=seed, ax=ax,
                                title="Predicted GPU memory (nvidia-smi estimate) against length — solid: unchunked, "
                                      "dotted: chunk 32")
    ax.set_ylim(0, 40)
    raw = pd.read_csv(out_dir / "04_predicted_grid.csv")
    fig.text(0.01, 0.005, f"{_grid_traced(raw)} + allocator cache, CUDA context "
             "and Quanto terms measured on an H100 (figures/09_gpu_check.csv).\nSquares: the seed article's nvidia-smi readings, "
             "cited from github.com/davideaguglia/ESMFold (GPU not stated).", fontsize=7, color="0.35")
    fig.subplots_adjust(bottom=0.16)
    grid.to_csv(out_dir / "04_predicted_memory.csv", index=False)
    return _save(fig, out_dir / "04_predicted_memory.png")


def measured_sweep(out_dir: Path) -> list[Path]:
    """On a CUDA GPU only: measure the full sweep (every recipe × chunk size × length) and write its CSV and figures.

    Refuses to run without a GPU or with the tiny stand-in, so that no smoke-mode number is ever committed.
    """
    source = models.weights_source()
    if not torch.cuda.is_available() or source == "tiny":
        raise SystemExit("measured figures need a CUDA GPU and the real weights or the random-full stand-in")
    cap = gpu.cap(gpu.session_cap())
    lengths = [30, 64, 128, 256, 384, 480, 640, 768, 896, 1024, 1280, 1536]
    table = benchmark.sweep(recipes.shown_in(recipes.GPU_SWEEP), lengths, [None, 128, 64, 32], "cuda", source=source)
    line = notebook.provenance_line("cuda", source)
    table["provenance"] = line + (f" · memory cap {cap} GiB" if cap else "")
    csv = out_dir / "04_measured_sweep.csv"
    table.to_csv(csv, index=False)
    paths = [csv]
    for name, draw in [("04_measured_memory", lambda: plots.plot_memory_vs_length(
            table, seed=data.SEED_MEMORY_GB, budget_gib=gpu.budget_gib(), provenance=line)),
            ("04_measured_time", lambda: plots.plot_time_vs_length(table, seed=data.SEED_SECONDS, provenance=line)),
            ("04_prediction_vs_measurement", lambda: plots.plot_prediction_vs_measurement(table, provenance=line))]:
        table.to_csv(out_dir / f"{name}.csv", index=False)
        paths.append(_save(draw().figure, out_dir / f"{name}.png"))
    return paths


#: The GPU check's committed measurements (`make gpu-check`; tools/gpu_check.py).
GPU_CHECK_CSV = "09_gpu_check.csv"
GPU_LIMITS_CSV = "09_gpu_limits.csv"
#: The same check (int8, fp16) rerun once the hardware table used the nvidia-smi estimate: its new T4 limits.
GPU_RECHECK_CSV = "09_gpu_recheck.csv"


def gpu_measurements(out_dir: Path | None = None) -> pd.DataFrame:
    """Every measured fold of the GPU check (both plans), with the prediction for the same point beside it: peak
    allocated (fake-tensor trace) and the nvidia-smi estimate, and measured / predicted ratios."""
    out_dir = out_dir or figures_dir()
    frames = [pd.read_csv(out_dir / name).assign(check=name) for name in (GPU_CHECK_CSV, GPU_LIMITS_CSV, GPU_RECHECK_CSV)
              if (out_dir / name).exists()]
    table = pd.concat(frames, ignore_index=True)
    table = table[(table["step"] == "fold") & (table["recipe"].isin(list(recipes.RECIPES)))].copy()
    rows = []
    for _, row in table.iterrows():
        chunk = fit.LEAN if str(row["lean trunk"]) == "True" else (None if row["chunk size"] == "none" else int(row["chunk size"]))
        recipe = recipes.folds_as(row["recipe"])  # the seed's fp16 route folds as fp16: only the load differs
        changes = [c.strip() for c in str(row.get("lean changes") or "").split(",") if c.strip() and c != "nan"]
        if chunk == fit.LEAN and changes and set(changes) != set(lean.CHANGES):
            # measured with the lean trunk of its day (some of today's changes): predicted for those changes (a trace)
            result = fit.predict_peak(recipe, int(row["length"]), lean=lean.LeanOptions.only(*changes))
            rows.append({k: result[k] for k in ("predicted peak allocated (GiB)", "predicted nvidia-smi (GiB)")})
            continue
        rows.append({"predicted peak allocated (GiB)": fit.lookup_or_predict(recipe, int(row["length"]), chunk),
                     "predicted nvidia-smi (GiB)": fit.predicted_nvidia_smi(recipe, int(row["length"]), chunk)})
    table = pd.concat([table.reset_index(drop=True), pd.DataFrame(rows)], axis=1)
    table["measured / predicted, allocated"] = table["peak allocated (GiB)"] / table["predicted peak allocated (GiB)"]
    table["measured / predicted, nvidia-smi"] = table["nvidia-smi peak (GiB)"] / table["predicted nvidia-smi (GiB)"]
    return table


def seed_comparison(out_dir: Path) -> Path:
    """The nvidia-smi estimate against the seed article's readings and the H100 measurements, at the seed's lengths
    and between them (figures/04_seed_comparison.csv)."""
    measured = gpu_measurements(out_dir)
    measured = measured[(measured["check"] == GPU_CHECK_CSV) & (measured["recycles"] == "default")]
    rows = []
    for seed_recipe, points in data.SEED_MEMORY_GB.items():
        recipe = recipes.folds_as(seed_recipe)  # the same fold; the seed's route only loads differently
        for length in sorted(set(points) | {128, 384}):
            estimate = fit.predicted_nvidia_smi(recipe, length, None)
            seed_gib = points[length] * 1e9 / memory.GIB if length in points else None
            gpu = measured[(measured["recipe"] == recipe) & (measured["length"] == length)]
            rows.append({
                "seed recipe": seed_recipe, "length": length,
                "seed nvidia-smi (GiB)": round(seed_gib, 2) if seed_gib else "—",
                "predicted peak allocated (GiB)": round(fit.lookup_or_predict(recipe, length, None), 2),
                "nvidia-smi estimate (GiB)": round(estimate, 2),
                "estimate / seed": f"{estimate / seed_gib:.3f}" if seed_gib else "—",
                "H100 allocated (GiB)": round(float(gpu["peak allocated (GiB)"].iloc[0]), 2) if len(gpu) else "—",
                "H100 nvidia-smi (GiB)": round(float(gpu["nvidia-smi peak (GiB)"].iloc[0]), 2) if len(gpu) else "—",
            })
    table = pd.DataFrame(rows)
    gpu_line = measured[["device", "torch", "transformers", "date"]].iloc[0]
    table["provenance"] = (
        f"estimate: fake-tensor trace (unchunked, default recycles) + the allocator, context and Quanto terms of "
        f"helpers.fit; seed readings cited from {data.SEED_URL} (its GB converted to GiB; GPU not stated); H100: "
        f"measured by make gpu-check ({gpu_line['device']}, torch {gpu_line['torch']}, transformers "
        f"{gpu_line['transformers']}, {gpu_line['date']}, random-full stand-in: random weights; the fp16 rows: the "
        "fp16 recipe, the same fold as the seed's route without its fp32 load)")
    path = out_dir / "04_seed_comparison.csv"
    table.to_csv(path, index=False)
    return path


def gpu_check_figure(out_dir: Path) -> Path:
    """Measured on an H100 against predicted, per fold of the GPU check: peak allocated (the trace) and nvidia-smi
    (the estimate), with the seed's readings (figures/09_gpu_vs_predicted.csv and .png)."""
    table = gpu_measurements(out_dir)
    table.to_csv(out_dir / "09_gpu_vs_predicted.csv", index=False)
    ok = table[table["status"] == "ok"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8))
    for ax, what in zip(axes, ("peak allocated (GiB)", "nvidia-smi peak (GiB)")):
        predicted = "predicted peak allocated (GiB)" if what.startswith("peak") else "predicted nvidia-smi (GiB)"
        for recipe, part in ok.groupby("recipe"):
            ax.scatter(part[predicted], part[what], s=22, label=recipe, color=recipes.colour(recipe))
        oom = table[table["status"] == "OOM"]
        cap = float(pd.to_numeric(table["cap (GiB)"], errors="coerce").max())  # the T4 cap the GPU check ran under
        ax.scatter(oom[predicted], [cap] * len(oom), marker="x", color="red", s=40,
                   label="out of memory under the T4 cap (drawn at the cap)")
        top = max(ok[what].max(), ok[predicted].max(), cap) * 1.05
        ax.plot([0, top], [0, top], color="0.5", lw=0.8, ls="--")
        ax.axhline(cap, color="red", lw=0.8, ls=":")
        ax.set_xlabel(predicted.replace(" (GiB)", " (GiB), predicted on a CPU"))
        ax.set_ylabel(what.replace(" (GiB)", " (GiB), measured"))
        ax.set_title("allocated by PyTorch" if what.startswith("peak") else "device memory in use (nvidia-smi)")
    axes[0].legend(fontsize=7)
    line = ok.iloc[0]
    fig.suptitle("Will it fit? The predictor against an H100 (random-full stand-in: random weights)", fontsize=11)
    fig.text(0.01, 0.01, f"Measured: {line['device']}, driver {line['driver']}, torch {line['torch']}, transformers "
             f"{line['transformers']}, optimum-quanto {line['optimum-quanto']}, {line['date']}, random weights (memory "
             "only). Dashed: measured = predicted.\nAbove it on the right: cache left by an earlier step (the seed's fp16 "
             "route keeps its fp32 load's blocks; folds after an out-of-memory probe), which the allocator frees when it "
             "needs room. nvidia-smi includes the " f"{fit.CUDA_CONTEXT_GIB} GiB CUDA context, outside the cap.", fontsize=7, color="0.35")
    fig.subplots_adjust(bottom=0.22, top=0.86)
    return _save(fig, out_dir / "09_gpu_vs_predicted.png")


def _csv_markdown(name: str, footer: str = ".") -> str:
    """A committed figures/ CSV as a markdown table (every column but provenance), its provenance in italics below."""
    table = pd.read_csv(figures_dir() / name)
    cols = [c for c in table.columns if c != "provenance"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(row[c]) for c in cols) + " |" for _, row in table.iterrows()]
    lines += ["", f"*{table['provenance'].iloc[0]}{footer}*"]
    return "\n".join(lines)


def seed_comparison_markdown() -> str:
    """The README's predictor-vs-seed table, rendered from figures/04_seed_comparison.csv."""
    return _csv_markdown("04_seed_comparison.csv")


def lean_check_markdown() -> str:
    """The lean trunk against the original on the same full-size weights, from figures/07_lean_check.csv: one row per
    recipe, changes and chunk rows, with the ways it was folded."""
    path = figures_dir() / "07_lean_check.csv"
    if not path.exists():
        return "*Not measured yet: run `python -m tools.lean_check check` (CPU, ≈ 15 GB of RAM, ≈ 15 min).*"
    table = pd.read_csv(path)
    if "rows per chunk" not in table:  # written before chunk rows were a column
        table["rows per chunk"] = "default (one chunk at these lengths)"
    measured = ["max |Δ position| (Å)", "max |Δ pLDDT|", "|Δ pTM|"]
    lines = ["| recipe | changes on | pair rows per chunk | folded (residues) | max \\|Δ position\\| (Å) | "
             "max \\|Δ pLDDT\\| | max \\|Δ pTM\\| |", "|---|---|---|---|---|---|---|"]
    for (recipe, changes, rows), part in table.groupby(["recipe", "changes", "rows per chunk"], sort=False):
        folded = "; ".join(f"{mode} ({', '.join(str(n) for n in sorted(group['length'].unique()))})"
                           for mode, group in part.groupby("mode", sort=False))
        worst = part[measured].max()
        label = ("every change" if changes == "all" else changes if changes.startswith("none")
                 else f"`{changes}` alone")
        lines.append(f"| `{recipe}` | {label} | {rows} | "
                     f"{folded} | " + " | ".join(f"{v:.1e}" if v else "0 (bit for bit)" for v in worst) + " |")
    for provenance in table["provenance"].unique():
        lines += ["", f"*{provenance}.*"]
    lines += ["", "*Regenerate with `python -m tools.lean_check check` and `python -m tools.lean_check wide` (then "
              "`python -m tools.figures`).*"]
    return "\n".join(lines)


def terms_markdown() -> str:
    """The nvidia-smi estimate's terms as `helpers.fit` holds them."""
    return "\n".join([
        "| term | value in `helpers.fit` | from |", "|---|---|---|",
        f"| CUDA context (H100) | {fit.CUDA_CONTEXT_GIB} GiB | measured by `make gpu-check` (row `context`) |",
        f"| CUDA context (other cards, assumed) | {gpu.ASSUMED_CONTEXT_GIB} GiB | "
        "[pytorch/pytorch#109888](https://github.com/pytorch/pytorch/issues/109888) |",
        f"| allocator's cache | {fit.CACHE_SHARE} × activations | H100: peak reserved − peak allocated |",
        f"| Quanto allowance | {fit.QUANTO_ALLOWANCE_GIB} GiB | the seed's int8 readings |"])


def seed_cache_markdown() -> str:
    """The seed's fp16 route against the fp16 recipe at 30 aa on the H100 (figures/09_gpu_check.csv)."""
    table = pd.read_csv(figures_dir() / GPU_CHECK_CSV)
    folds = table[(table["step"] == "fold") & (table["length"] == 30) & table["recipe"].isin(["fp16-seed", "fp16"])]
    lines = ["| recipe | 30 aa: peak allocated (GiB) | peak reserved (GiB) | nvidia-smi (GiB) |", "|---|---|---|---|"]
    lines += [f"| `{r['recipe']}` | {r['peak allocated (GiB)']:.1f} | {r['peak reserved (GiB)']:.1f} | "
              f"{r['nvidia-smi peak (GiB)']:.1f} |" for _, r in folds.iterrows()]
    row = folds.iloc[0]
    lines += ["", f"*measured: {row['device']}, torch {row['torch']}, transformers {row['transformers']}, {row['date']}, "
              f"{row['weights']}; figures/{GPU_CHECK_CSV}.*"]
    return "\n".join(lines)


def _one_pass_lower(folds: pd.DataFrame) -> float:
    """The largest share by which a measured fold with one trunk pass peaked below the same fold (recipe, length,
    chunk, trunk, measurement) with more passes."""
    shares = []
    for _, part in folds.groupby(["check", "recipe", "length", "chunk size", "lean trunk"]):
        by = part.groupby("trunk passes")["peak allocated (GiB)"].median()
        if len(by) > 1 and by.index.min() == 1:
            shares.append(1 - by.iloc[0] / by.iloc[1:].max())
    return max(shares)


def gpu_findings_markdown() -> str:
    """What the GPU check found, rendered from figures/09_gpu_vs_predicted.csv: the trace's agreement over every
    fold, then the folds at and around the T4 limits."""
    table = pd.read_csv(figures_dir() / "09_gpu_vs_predicted.csv")
    ok = table[table["status"] == "ok"]
    ratio = ok["measured / predicted, allocated"]
    lengths = f"{int(ok['length'].min()):,} to {int(ok['length'].max()):,}"
    limits = table[(table["check"] == GPU_LIMITS_CSV) | ((table["check"] == GPU_RECHECK_CSV) & (table["length"] >= 480))]
    lines = [f"- Over all {len(ok)} folds that fitted ({lengths} residues; fp32, fp16, Quanto int8 and int4, "
             f"chunked and lean), measured peak allocated / predicted lay between {ratio.min():.3f} and "
             f"{ratio.max():.3f}.",
             "- Around the T4 limits, each fold either right after a fresh load or after a session of shorter folds, "
             "as in a notebook (column `loaded`). Out of memory (OOM) under the cap is the expected outcome one grid "
             f"step beyond a limit. One trunk pass peaks slightly lower than several: at most {_one_pass_lower(ok):.1%} "
             "lower (compare the rows that differ only in passes).", "",
             "| recipe | length | chunk | lean | trunk passes | loaded | status | peak allocated (GiB) | predicted (GiB) "
             "| seconds |", "|---|---|---|---|---|---|---|---|---|---|"]
    for _, r in limits.iterrows():
        lean_cell = "yes" if str(r["lean trunk"]) == "True" else "no"
        why = "fresh" if r["check"] == GPU_LIMITS_CSV else "after shorter folds"
        lines.append(f"| `{r['recipe']}` | {int(r['length']):,} | {r['chunk size']} | {lean_cell} | "
                     f"{int(r['trunk passes'])} | {why} | {r['status']} | {r['peak allocated (GiB)']:.2f} | "
                     f"{r['predicted peak allocated (GiB)']:.2f} | {r['seconds']:.1f} |")
    row = ok.iloc[0]
    cap = float(pd.to_numeric(table["cap (GiB)"], errors="coerce").max())  # the T4 cap the GPU check ran under
    lines += ["", f"*measured: {row['device']}, driver {row['driver']}, torch {row['torch']}, transformers "
              f"{row['transformers']}, optimum-quanto {row['optimum-quanto']}, {row['date']}, {row['weights']}; cap "
              f"{cap} GiB, {cap - gpu.T4.usable_gib:.2f} GiB more than the "
              f"{gpu.T4.usable_gib:.2f} GiB of PyTorch's budget on a T4 (the H100's T4 cap, "
              "[above](#a-t4s-memory-budget)); lean rows: the first seven changes (column `lean changes`); "
              "predicted: the fake-tensor trace for the same point. An OOM row's peak is what was allocated when it "
              "ran out.*"]
    return "\n".join(lines)


def cpu_findings_markdown() -> str:
    """Per CPU class, the chosen recipe, the fastest recipe and bf16 against fp32, rendered from
    figures/08_cpu_classes.csv and figures/08_cpu_matmul.csv."""
    table = pd.read_csv(figures_dir() / "08_cpu_classes.csv")
    matmul = pd.read_csv(figures_dir() / "08_cpu_matmul.csv").set_index(["CPU class", "product", "dtype"])["GFLOPS"]
    probe = matmul.index.get_level_values("product")[0]
    seed = table[table["length"] == 259]
    lines = []
    for cpu_class in table["CPU class"].unique():
        part = seed[seed["CPU class"] == cpu_class].groupby("recipe")["fold seconds"].median()
        chosen = table.loc[(table["CPU class"] == cpu_class) & table["chosen here"], "recipe"].iloc[0]
        fastest = part.idxmin()
        ratio = matmul[cpu_class, probe, "bfloat16"] / matmul[cpu_class, probe, "float32"]
        bf16, fp32 = cpu.BF16_RECIPE, cpu.FP32_ARITHMETIC_RECIPE
        line = (f"- **{cpu_class}**: the chosen `{chosen}` folds 1CA2 (259 aa) in {part[chosen]:,.0f} s. bf16 matrix "
                f"products run at {ratio:.2f}× the speed of fp32 here"
                + (f", and `{bf16}` takes {part[bf16]:,.0f} s." if chosen != bf16 else "."))
        if fastest != chosen:
            twin = recipes.folds_as(fastest)
            line += (f" The fastest, `{fastest}` ({part[fastest]:,.0f} s), is not chosen: "
                     + (f"bf16 is not {cpu.BF16_SPEEDUP_NEEDED}× as fast as fp32." if fastest in (bf16, fp32) else
                        f"`cpu.choose_recipe` picks between `{bf16}` and `{fp32}`, which compute as the GPU recipes "
                        f"`{recipes.folds_as(bf16)}` and `{recipes.folds_as(fp32)}` do; `{fastest}` "
                        + (f"computes as `{twin}`." if twin != fastest else "computes as no GPU recipe, and only the "
                           "real weights can measure what that costs in accuracy.")))
        lines.append(line)
    lines += ["", f"*From figures/08_cpu_classes.csv (medians by recipe) and figures/08_cpu_matmul.csv (the "
              f"{probe} product, the probe of `cpu.choose_recipe`).*"]
    return "\n".join(lines)


def cpu_chunks_markdown() -> str:
    """One trunk block at 259 aa on the CPU by pair positions per chunk, from figures/08_cpu_chunks.csv."""
    table = pd.read_csv(figures_dir() / "08_cpu_chunks.csv")
    part = table[table["length"] == 259]
    lines = ["| pair positions per chunk | rows per chunk (259 aa) | seconds per block |", "|---|---|---|"]
    for _, r in part.iterrows():
        n = int(r["pair positions per chunk"])
        cell = f"2^{n.bit_length() - 1} = {n:,}"
        mark = " (the lean trunk's `CPU_POSITIONS`)" if n == lean.CPU_POSITIONS else ""
        lines.append(f"| {cell}{mark} | {int(r['rows per chunk'])} | {r['seconds per block']:.2f} |")
    lines += ["", f"*{part['provenance'].iloc[0]}.*"]
    return "\n".join(lines)


#: A free Colab T4 as nvidia-smi shows it, MiB: Colab's resource panel reads "GPU RAM … / 15.0 GB" (COLAB_PANEL).
T4_NVIDIA_SMI_MIB = 15_360
COLAB_PANEL = "https://github.com/googlecolab/colabtools/issues/3909"
T4_DEVICE_QUERY = "https://github.com/enriicola/high-performance-clowns/blob/main/mandelbrot/report/report.md"
T4_TORCH_MESSAGE = "https://github.com/zai-org/CogVideo/issues/741"
CONTEXT_SOURCE = "https://github.com/pytorch/pytorch/issues/109888"


def budget_rows() -> list[tuple[str, str, str]]:
    """(step, value, source) of a free T4's memory, from the card to what a fold may ask of PyTorch: one name per
    step, used everywhere in the series."""
    caps = pd.concat([pd.read_csv(figures_dir() / name) for name in (GPU_CHECK_CSV, GPU_LIMITS_CSV, GPU_RECHECK_CSV)
                      if (figures_dir() / name).exists()])["cap (GiB)"]
    cap = pd.to_numeric(caps, errors="coerce").dropna().max()
    t4 = gpu.T4
    margin_from = t4.usable_gib - gpu.BORDERLINE_GIB
    return [
        ("**nvidia-smi total**: the card as Colab shows it", f"{T4_NVIDIA_SMI_MIB:,} MiB = "
         f"{T4_NVIDIA_SMI_MIB / 1024:.2f} GiB", f"Colab's resource panel, \"GPU RAM … 15.0 GB\" ([colabtools#3909]"
         f"({COLAB_PANEL}))"),
        ("**CUDA total**: what CUDA offers one process", f"{round(t4.total_gib * GIB):,} bytes = "
         f"{t4.total_gib:.2f} GiB", f"deviceQuery on Colab ([report]({T4_DEVICE_QUERY})); PyTorch's out-of-memory "
         f"message truncates the same bytes to \"{math.floor(t4.total_gib * 100) / 100:.2f} GiB\" ([example]"
         f"({T4_TORCH_MESSAGE}))"),
        ("− **CUDA context**: CUDA's and cuBLAS's own memory", f"{t4.context_gib} GiB, assumed",
         f"\"around 400MB\" ([pytorch#109888]({CONTEXT_SOURCE})); not measured on a T4 (on the H100: "
         f"{fit.CUDA_CONTEXT_GIB} GiB, [below](#how-good-is-the-predictor))"),
        ("= **PyTorch's budget**: what a fold's need is held against", f"{t4.usable_gib:.2f} GiB",
         "CUDA total − CUDA context (`gpu.T4.usable_gib`); a fold's *need* is its peak allocated + the allocator's "
         "cache (+ Quanto's allowance)"),
        ("**borderline**: a need this close to the budget", f"{margin_from:.2f}–{t4.usable_gib:.2f} GiB "
         f"(within {gpu.BORDERLINE_GIB} GiB)", "`gpu.BORDERLINE_GIB`: the context is assumed and the cache "
         "measured on another GPU"),
        ("**the H100's T4 cap** of the measurements so far", f"{cap:.2f} GiB = PyTorch's budget + "
         f"{cap - t4.usable_gib:.2f} GiB", "figures/09_*.csv, column `cap (GiB)` (`make gpu-check` now caps at "
         "PyTorch's budget)"),
    ]


def budget_markdown() -> str:
    """The results page's T4 budget table."""
    lines = ["| step | value | from |", "|---|---|---|"]
    lines += [f"| {step} | {value} | {source} |" for step, value, source in budget_rows()]
    return "\n".join(lines)


def time_model_markdown() -> str:
    """The T4 run-time model's terms and their sources, as `tools.plan` holds them."""
    lines = ["| term | value | from |", "|---|---|---|"]
    lines += [f"| {term} | {value} | {source} |" for term, value, source in plan.time_model_rows()]
    return "\n".join(lines)


_MARKS = {"weights": weights_table_markdown, "hardware": max_length_markdown, "seed": seed_comparison_markdown,
          "recipes": recipe_markdown, "nogpu": cpu_markdown, "cpuclasses": cpu_classes_markdown,
          "lean": lean_markdown, "leancheck": lean_check_markdown, "terms": terms_markdown,
          "seedcache": seed_cache_markdown, "gpufindings": gpu_findings_markdown, "cpufindings": cpu_findings_markdown,
          "cpuchunks": cpu_chunks_markdown, "timemodel": time_model_markdown, "budget": budget_markdown}
#: The pages whose <!-- NAME:start --> … <!-- NAME:end --> blocks are rendered from committed CSVs.
PAGES = ("README.md", "docs/results.md")


def rendered(text: str) -> str:
    """`text` with every generated block rewritten from its CSV."""
    for name, render in _MARKS.items():
        start_mark, end_mark = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
        if start_mark not in text:
            continue
        start, end = text.index(start_mark) + len(start_mark), text.index(end_mark)
        text = text[:start] + "\n" + render() + "\n" + text[end:]
    return text


def update_pages() -> bool:
    """Rewrite the README's and the results page's generated blocks from their CSVs; True if anything changed."""
    changed = False
    for name in PAGES:
        page = data.repo_root() / name
        text = page.read_text()
        if rendered(text) != text:
            page.write_text(rendered(text))
            changed = True
    return changed


def main(argv: list[str]) -> None:
    """Write every figure that needs no GPU; `weights` re-measures the per-recipe weights CSV (CPU, minutes);
    `measured` first runs the full GPU sweep (a CUDA GPU, hours)."""
    out_dir = figures_dir()
    out_dir.mkdir(exist_ok=True)
    if "measured" in argv:
        for path in measured_sweep(out_dir):
            print("wrote", path)
    if "weights" in argv:
        print("wrote", recipe_weights(out_dir))
    if "lean" in argv:
        print("wrote", lean_steps_table(out_dir))
    makers = [weights_per_stage, reference_plddt, recipe_weights_figure]
    if (out_dir / "04_predicted_grid.csv").exists():
        makers += [max_length_table, max_length_figure, predicted_memory_figure, recipe_table]
    if (out_dir / "07_lean_steps.csv").exists():
        makers.append(lean_steps_figure)
    if (out_dir / "08_cpu_benchmark.csv").exists():
        makers.append(cpu_benchmark_figure)
    if (out_dir / GPU_CHECK_CSV).exists():
        makers += [seed_comparison, gpu_check_figure]
    for make in makers:
        print("wrote", make(out_dir))
    if update_pages():
        print("updated the generated blocks of " + " and ".join(PAGES))


if __name__ == "__main__":
    main(sys.argv[1:])
