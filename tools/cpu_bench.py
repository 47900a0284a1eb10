"""Maintainer tool: the CPU measurements behind notebook 08 and the results page's no-GPU section.

    python -m tools.cpu_bench bench RECIPE[,RECIPE…] [LENGTH,LENGTH…] [stages]   figures/08_cpu_benchmark.csv
    python -m tools.cpu_bench classes RECIPE[,RECIPE…] LENGTH[,…] [CLASS …]      figures/08_cpu_classes.csv
    python -m tools.cpu_bench matmul                                             figures/08_cpu_matmul.csv
    python -m tools.cpu_bench chunks                                             figures/08_cpu_chunks.csv
    python -m tools.cpu_bench prequantize [SOURCE]                               the int8-reload checkpoint
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from helpers import data, notebook, recipes
from helpers.cpu import CPU_CLASSES, chunk_sweep, cpu_summary, prequantize, set_threads


def _measured(*details: str) -> str:
    """Provenance of a table measured on this machine (the random-full stand-in): CPU, versions, date, `details`."""
    return "measured: " + notebook.provenance_line("cpu", "random-full", *details, device_text=cpu_summary())



def chunk_table(lengths=(128, 259, 512), path=None):
    """Measure `chunk_sweep` on the full-size architecture at a few lengths; write figures/08_cpu_chunks.csv."""
    set_threads()
    table = pd.concat([chunk_sweep(n, source="random-full") for n in lengths], ignore_index=True)
    table["provenance"] = _measured("one esmfold_v1 trunk block with random parameters, bf16, lean forward, best of 3")
    path = Path(path or data.repo_root() / "figures" / "08_cpu_chunks.csv")
    table.to_csv(path, index=False)
    return table


_PROBE = """
import json, sys, time
from helpers import cpu, data, folding, memory, benchmark
recipe, lengths, stages = sys.argv[1], [int(n) for n in sys.argv[2].split(",")], sys.argv[3] == "1"
threads = cpu.set_threads()
with cpu.ram_sampler() as load:
    start = time.perf_counter()
    model, tokenizer = cpu.load_cpu(recipe, source="random-full")
    load["seconds"] = time.perf_counter() - start
base = {"recipe": recipe, "threads": threads, "load seconds": round(load["seconds"], 1),
        "load peak anonymous RAM (GB)": round(load["peak anonymous RAM (GB)"], 2),
        "load peak RSS (GB)": round(load["peak RSS (GB)"], 2),
        "steady anonymous RAM (GB)": round(cpu.status_gb("RssAnon"), 2),
        "chosen here": cpu.choose_recipe()[0] == recipe}
for length in lengths:
    sequence = data.seed_sequence() if length == 259 else data.sequence_of_length(length)[0]
    with cpu.ram_sampler() as ram:
        start = time.perf_counter()
        folding.fold(model, tokenizer, sequence)
        seconds = time.perf_counter() - start
    row = dict(base, length=length, sequence="1CA2 (the seed's protein)" if length == 259 else "UniProt P0DTC2 prefix",
               **{"fold seconds": round(seconds, 1),
                  "fold peak anonymous RAM (GB)": round(ram["peak anonymous RAM (GB)"], 2),
                  "peak RSS so far (GB)": round(ram["peak RSS (GB)"], 2)})
    if stages and length == lengths[-1]:
        row.update({k: round(v, 2) if isinstance(v, float) else v
                    for k, v in benchmark.stage_times(model, tokenizer, sequence).items() if k.endswith("(s)")})
    print("@@" + json.dumps(row), flush=True)
"""


def bench(names, lengths=(64, 128, 256), stages: bool = False, path=None, cpu_class: str | None = None):
    """Run each CPU recipe in its own process on the full-size random-weight stand-in: load once, fold each length
    (default recycles; 259 = the seed's 1CA2); append one row per (recipe, length) to `path` (default
    figures/08_cpu_benchmark.csv). `cpu_class` (a CPU_CLASSES name) caps the vector instructions first."""
    path = Path(path or data.repo_root() / "figures" / "08_cpu_benchmark.csv")
    caps = CPU_CLASSES[cpu_class][1] if cpu_class else {}
    env = dict(os.environ, **caps)
    cap = " ".join(f"{k}={v}" for k, v in caps.items()) or "none"
    provenance = _measured("default recycles (4 trunk passes)", "one process per recipe",
                           *([f"instruction cap: {cap}"] if cpu_class else []))
    for recipe in names:
        run = subprocess.Popen([sys.executable, "-c", _PROBE, recipe, ",".join(map(str, lengths)), "1" if stages else "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=data.repo_root(), env=env)
        for line in run.stdout:
            if line.startswith("@@"):
                row = ({"CPU class": cpu_class} if cpu_class else {}) | json.loads(line[2:]) | {"provenance": provenance}
                print(row, flush=True)
                table = pd.DataFrame([row])
                if path.exists():  # rows may carry different columns (stage times): rewrite the whole table
                    table = pd.concat([pd.read_csv(path), table], ignore_index=True)
                    table = table[[c for c in table.columns if c != "provenance"] + ["provenance"]]
                table.to_csv(path, index=False)
        if run.wait() != 0:
            print(f"{recipe} failed:\n{run.stderr.read()[-3000:]}", flush=True)
    return pd.read_csv(path)


_MATMUL = """
import json, torch
from helpers import cpu
cpu.set_threads()
for shape in (cpu.PROBE_SHAPE, (258, 2560, 10240)):
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        print("@@" + json.dumps({"product": " × ".join(map(str, shape)), "dtype": str(dtype).replace("torch.", ""),
                                 "GFLOPS": round(cpu.matmul_gflops(dtype, repeats=10, shape=shape), 1)}))
"""


def matmul_table(path=None):
    """Matrix throughput (fp32, bf16, fp16) of each CPU class (`cpu.CPU_CLASSES`: capped instructions, one process each) on
    the probe product that `cpu.choose_recipe` uses and on an ESM-2-sized one; writes figures/08_cpu_matmul.csv."""
    rows = []
    for name, (_, caps) in CPU_CLASSES.items():
        out = subprocess.run([sys.executable, "-c", _MATMUL], capture_output=True, text=True, check=True,
                             cwd=data.repo_root(), env=dict(os.environ, **caps)).stdout
        rows += [{"CPU class": name} | json.loads(line[2:]) for line in out.splitlines() if line.startswith("@@")]
    table = pd.DataFrame(rows)
    table["provenance"] = _measured("m × k × n products (the first is the probe of cpu.choose_recipe, the second an "
                                    "ESM-2 MLP layer for 1CA2), mean of 10; classes emulated by capping the vector "
                                    "instructions (cpu.CPU_CLASSES)")
    path = Path(path or data.repo_root() / "figures" / "08_cpu_matmul.csv")
    table.to_csv(path, index=False)
    return table


if __name__ == "__main__":
    if sys.argv[1:2] == ["matmul"]:
        print(matmul_table())
        sys.exit()
    if sys.argv[1:2] == ["prequantize"]:
        print(prequantize(sys.argv[2] if len(sys.argv) > 2 else None))
        sys.exit()
    if sys.argv[1:2] == ["classes"]:  # classes RECIPE[,…] LENGTH[,…] [CLASS …]
        out = data.repo_root() / "figures" / "08_cpu_classes.csv"
        for name in sys.argv[4:] or list(CPU_CLASSES):
            bench(sys.argv[2].split(","), [int(n) for n in sys.argv[3].split(",")], path=out, cpu_class=name)
        sys.exit()
    if sys.argv[1:2] == ["chunks"]:
        print(chunk_table())
        sys.exit()
    if sys.argv[1:2] != ["bench"]:
        sys.exit("usage: python -m tools.cpu_bench bench RECIPE[,RECIPE…] [LENGTH,LENGTH…] [stages] | classes RECIPE[,…] "
                 "LENGTH[,…] [CLASS …] | matmul | chunks | prequantize [SOURCE]")
    names = sys.argv[2].split(",") if len(sys.argv) > 2 else recipes.shown_in(recipes.CPU_TABLE)
    sizes = [int(n) for n in sys.argv[3].split(",")] if len(sys.argv) > 3 else [64, 128, 256]
    bench(names, sizes, stages="stages" in sys.argv[4:])
