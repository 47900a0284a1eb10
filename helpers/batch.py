"""Fold every record of a FASTA file: one PDB per record and one summary CSV; bad records and out-of-memory are
reported and skipped, and a second run resumes where the first stopped."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pandas as pd
import torch
from tqdm.auto import tqdm

from helpers import data, folding, memory

#: Columns of the summary CSV, in order.
COLUMNS = ["id", "header", "length", "status", "reason", "mean pLDDT (Cα)", "pTM", "seconds", "peak memory (GiB)",
           "memory measured", "batch size", "recipe", "pdb"]


def safe_name(header: str, taken: set | None = None) -> str:
    """A file-name-safe id from a FASTA header's first word (letters, digits, . _ -; at most 60 characters), made
    unique against `taken` with a numeric suffix."""
    word = header.split()[0] if header.split() else "record"
    if "|" in word:  # UniProt style sp|P69905|HBA_HUMAN → P69905_HBA_HUMAN
        parts = [p for p in word.split("|") if p]
        word = "_".join(parts[1:] if parts[0] in ("sp", "tr", "pdb", "gi") and len(parts) > 1 else parts)
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", word).strip("._-")[:60] or "record"
    taken = taken if taken is not None else set()
    unique, n = name, 2
    while unique in taken:
        unique, n = f"{name}_{n}", n + 1
    taken.add(unique)
    return unique


def plan_batches(lengths: dict[str, int], token_budget: int) -> list[list[str]]:
    """Ids sorted by length and grouped so that each padded batch (size × longest length) stays within
    `token_budget` residues; a record longer than the budget goes alone."""
    batches, current = [], []
    for key in sorted(lengths, key=lambda k: (lengths[k], k)):
        if current and (len(current) + 1) * lengths[key] > token_budget:
            batches.append(current)
            current = []
        current.append(key)
    if current:
        batches.append(current)
    return batches


def read_summary(path) -> list[dict]:
    """Rows of an existing summary CSV (empty if there is none)."""
    path = Path(path)
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _fold_batch(model, tokenizer, ids, sequences, device, num_recycles):
    """(results or None on OOM, measure record) for one padded batch."""
    results = None
    with memory.measure("batch", device=device) as record:
        results = folding.fold_many(model, tokenizer, [sequences[i] for i in ids], num_recycles)
    return (results if record["status"] == "ok" else None), record


def fold_fasta(model, tokenizer, fasta, out_dir, recipe: str = "", token_budget: int = 512,
               num_recycles: int | None = None, stop_after: int | None = None, progress: bool = True):
    """Fold every record of `fasta` into `out_dir` (`<id>.pdb` + `summary.csv`); returns the summary DataFrame.

    Records already in the summary are skipped (resume; delete a row to redo it). Invalid sequences and records
    that run out of memory even alone get a row with the reason; the run goes on. `stop_after` folds at most that
    many new records (e.g. a first look at a big file). `df.attrs["folded now"]` counts the records folded by this call.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = out_dir / "summary.csv"
    done = {row["id"] for row in read_summary(summary)}
    device = str(folding.input_device(model))
    taken: set = set()
    headers, sequences, invalid = {}, {}, []
    for header, raw in data.read_fasta(fasta):
        key = safe_name(header, taken)
        if key in done:
            continue
        headers[key] = header
        try:
            sequences[key] = folding.validate_sequence(raw)
        except folding.SequenceError as error:
            invalid.append({"id": key, "header": header, "length": len("".join(raw.split())), "status": "invalid",
                            "reason": str(error), "recipe": recipe})
    if invalid:
        data.append_csv(summary, invalid, COLUMNS)
    todo = dict(sorted(sequences.items(), key=lambda kv: (len(kv[1]), kv[0]))[:stop_after])
    folded = 0
    queue = plan_batches({k: len(s) for k, s in todo.items()}, token_budget)
    bar = tqdm(total=len(todo), desc="folding", unit="seq", disable=not progress)
    while queue:
        ids = queue.pop(0)
        results, record = _fold_batch(model, tokenizer, ids, sequences, device, num_recycles)
        if results is None and len(ids) > 1:
            queue = [[i] for i in ids] + queue  # retry one by one before giving up on any record
            continue
        rows = []
        peak = record.get("peak allocated (GiB)", record.get("peak RSS, CPU (GiB)"))
        measured = "GPU peak allocated" if "peak allocated (GiB)" in record else "CPU peak RSS (whole process)"
        for n, key in enumerate(ids):
            row = {"id": key, "header": headers[key], "length": len(sequences[key]), "recipe": recipe,
                   "batch size": len(ids), "peak memory (GiB)": round(peak, 3), "memory measured": measured,
                   "seconds": round(record["seconds"] / len(ids), 2)}
            if results is None:
                row.update(status="out of memory", reason=memory.OOM_ADVICE)
            else:
                pdb = out_dir / f"{key}.pdb"
                results[n].save_pdb(pdb)
                row.update(status="ok", reason="", pdb=pdb.name, **{"mean pLDDT (Cα)": round(results[n].mean_plddt_ca, 2),
                                                                   "pTM": round(results[n].ptm, 4)})
                folded += 1
            rows.append(row)
        data.append_csv(summary, rows, COLUMNS)
        bar.update(len(ids))
    bar.close()
    table = pd.DataFrame(read_summary(summary), columns=COLUMNS)
    table.attrs["folded now"] = folded
    return table


def ptm_batch_check(model, tokenizer, sequences: list[str], num_recycles: int | None = 0) -> "pd.DataFrame":
    """pTM of each sequence folded alone, inside a padded batch (per sequence, from its masked pTM logits) and the
    model's single batch `ptm` output — the numbers that show why the batch output cannot be used per sequence."""
    alone = [folding.fold(model, tokenizer, s, num_recycles).ptm for s in sequences]
    together = folding.fold_many(model, tokenizer, sequences, num_recycles)
    inputs = folding.batch_inputs(tokenizer, sequences, folding.input_device(model))
    with torch.no_grad():
        batch_ptm = model(**inputs, num_recycles=num_recycles)["ptm"]
    return pd.DataFrame({"length": [len(s) for s in sequences], "pTM alone": alone,
                         "pTM in batch (per sequence)": [r.ptm for r in together],
                         "model's batch ptm output": [float(batch_ptm.reshape(-1)[0])] * len(sequences)})
