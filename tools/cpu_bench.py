"""Maintainer tool: the CPU measurements behind notebook 08 and the README's no-GPU section.

    python -m tools.cpu_bench bench RECIPE[,RECIPE…] [LENGTH,LENGTH…] [stages]   figures/08_cpu_benchmark.csv
    python -m tools.cpu_bench matmul                                             figures/08_cpu_matmul.csv
    python -m tools.cpu_bench chunks                                             figures/08_cpu_chunks.csv
    python -m tools.cpu_bench prequantize [SOURCE]                               the quanto-int8-reload checkpoint
"""

from __future__ import annotations

from pathlib import Path

import torch

from helpers.cpu import CPU_RECIPES, chunk_sweep, cpu_summary, matmul_gflops, prequantize, set_threads


def _measured(*details: str) -> str:
    """Provenance of a table measured on this machine: CPU, versions, date, then `details`."""
    import datetime as dt

    import transformers

    return " · ".join([f"measured: {cpu_summary()}", f"torch {torch.__version__}",
                       f"transformers {transformers.__version__}", dt.date.today().isoformat(), *details])



def chunk_table(lengths=(128, 259, 512), path=None):
    """Measure `chunk_sweep` on the full-size architecture at a few lengths; write figures/08_cpu_chunks.csv."""
    import pandas as pd

    from helpers import data

    set_threads()
    table = pd.concat([chunk_sweep(n, source="random-full") for n in lengths], ignore_index=True)
    table["provenance"] = _measured("one esmfold_v1 trunk block with random weights, bf16, lean forward, best of 3")
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
        "steady anonymous RAM (GB)": round(cpu.status_gb("RssAnon"), 2)}
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


def bench(recipes, lengths=(64, 128, 256), stages: bool = False, path=None):
    """Run each CPU recipe in its own process on the full-size random-weight stand-in: load once, fold each length
    (default recycles); append one row per (recipe, length) to `path` (default figures/08_cpu_benchmark.csv)."""
    import json
    import subprocess
    import sys

    import pandas as pd

    from helpers import data

    path = Path(path or data.repo_root() / "figures" / "08_cpu_benchmark.csv")
    provenance = _measured("random-full stand-in (random weights: time and memory only)",
                           "default recycles (4 trunk passes)", "one process per recipe")
    for recipe in recipes:
        run = subprocess.Popen([sys.executable, "-c", _PROBE, recipe, ",".join(map(str, lengths)), "1" if stages else "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=data.repo_root())
        for line in run.stdout:
            if line.startswith("@@"):
                row = json.loads(line[2:]) | {"provenance": provenance}
                print(row, flush=True)
                table = pd.DataFrame([row])
                if path.exists():  # rows may carry different columns (stage times): rewrite the whole table
                    table = pd.concat([pd.read_csv(path), table], ignore_index=True)
                    table = table[[c for c in table.columns if c != "provenance"] + ["provenance"]]
                table.to_csv(path, index=False)
        if run.wait() != 0:
            print(f"{recipe} failed:\n{run.stderr.read()[-3000:]}", flush=True)
    return pd.read_csv(path)


def matmul_table(path=None):
    """Measure this CPU's matrix throughput (fp32, bf16) and write figures/08_cpu_matmul.csv with provenance."""
    import pandas as pd

    from helpers import data

    set_threads()
    rows = [{"dtype": str(d).replace("torch.", ""), "GFLOPS": round(matmul_gflops(d, repeats=10), 1)}
            for d in (torch.float32, torch.bfloat16)]
    table = pd.DataFrame(rows)
    table["provenance"] = _measured("one 258 × 2560 by 2560 × 10240 product (an ESM-2 MLP layer for 1CA2), mean of 10")
    path = Path(path or data.repo_root() / "figures" / "08_cpu_matmul.csv")
    table.to_csv(path, index=False)
    return table


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["matmul"]:
        print(matmul_table())
        sys.exit()
    if sys.argv[1:2] == ["prequantize"]:
        print(prequantize(sys.argv[2] if len(sys.argv) > 2 else None))
        sys.exit()
    if sys.argv[1:2] == ["chunks"]:
        print(chunk_table())
        sys.exit()
    if sys.argv[1:2] != ["bench"]:
        sys.exit("usage: python -m tools.cpu_bench bench RECIPE[,RECIPE…] [LENGTH,LENGTH…] [stages] | matmul | chunks | "
                 "prequantize [SOURCE]")
    names = sys.argv[2].split(",") if len(sys.argv) > 2 else list(CPU_RECIPES)
    sizes = [int(n) for n in sys.argv[3].split(",")] if len(sys.argv) > 3 else [64, 128, 256]
    bench(names, sizes, stages="stages" in sys.argv[4:])
