"""Accuracy of a recipe: the benchmark targets, scoring a prediction against its experimental structure, and
evaluating every recipe on them (agreement with fp32, and against experiment)."""

from __future__ import annotations

import urllib.request

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from helpers import data, fit, folding, gpu, memory, metrics, models, notebook

#: The 20 experimental structures of the series' local benchmark: (file, chain). Their SEQRES sequences come from the
#: shared data folder, or from RCSB for users without it.
LOCAL_TARGETS = [
    ("1CA2.pdb", "A"), ("1UBQ.pdb", "A"), ("1CRN.pdb", "A"), ("1BNI.pdb", "A"), ("1EJG.cif", "A"), ("1A8O.cif", "A"),
    ("1AKI.pdb", "A"), ("2NWD.bcif", "X"), ("3LZM.bcif", "A"), ("1HML.bcif", "A"), ("1QGI.bcif", "A"),
    ("3O5R.pdb", "A"), ("1DIX.pdb", "A"), ("5H73.pdb", "A"), ("1GYA.pdb", "A"), ("2AXD.pdb", "S"), ("1YRF.pdb", "A"),
    ("2RBG.pdb", "A"), ("1PGA.pdb", "A"), ("5PTI.cif", "A"),
]
#: atom14 slot of Cβ in ESMFold's outputs (glycine has none: its Cα is used, as for the experiment).
CB_INDEX = 4


def rcsb_chain_sequence(fasta_text: str, chain: str) -> str:
    """The sequence of `chain` in an RCSB entry FASTA (headers like '>1BNI_1|Chains A, B, C|BARNASE|…')."""
    for header, sequence in _fasta_records(fasta_text):
        fields = header.split("|")
        if len(fields) > 1:
            names = fields[1].replace("Chains", "").replace("Chain", "")
            chains = [c.strip().split("[")[0].strip() for c in names.split(",")]
            if chain in chains:
                return sequence
    raise KeyError(f"chain {chain} not in the RCSB FASTA")


def _fasta_records(text: str) -> list[tuple[str, str]]:
    records, header, chunks = [], None, []
    for line in text.splitlines():
        if line.startswith(">"):
            if header is not None:
                records.append((header, "".join(chunks)))
            header, chunks = line[1:].strip(), []
        elif header is not None:
            chunks.append(line.strip())
    if header is not None:
        records.append((header, "".join(chunks)))
    return records


def local_targets() -> list[dict]:
    """The 20 local targets with their SEQRES sequences (shared targets_seqres.fasta, else RCSB), shortest first."""
    seqres = {}
    shared = data.shared_dir()
    if shared is not None and (shared / "structures" / "targets_seqres.fasta").is_file():
        for header, sequence in data.read_fasta(shared / "structures" / "targets_seqres.fasta"):
            seqres[header.split()[0]] = sequence
    targets = []
    for file, chain in LOCAL_TARGETS:
        pdb = file.split(".")[0]
        key = f"{pdb}_{chain}"
        if key not in seqres:
            with urllib.request.urlopen(f"https://www.rcsb.org/fasta/entry/{pdb}", timeout=60) as response:
                seqres[key] = rcsb_chain_sequence(response.read().decode(), chain)
        targets.append({"target": key, "file": f"structures/{file}", "chain": chain, "sequence": seqres[key]})
    return sorted(targets, key=lambda t: len(t["sequence"]))


def cameo_targets() -> list[dict]:
    """The 183 CAMEO 2022 chains (EigenFold's list; structures downloaded from RCSB on first use), shortest first."""
    table = pd.read_csv(data.fetch("benchmarks/cameo2022.csv"))
    targets = []
    for _, row in table.iterrows():
        pdb, chain = row["name"].split(".")[:2]
        targets.append({"target": f"{pdb.upper()}_{chain}", "file": f"structures/{pdb.upper()}.cif", "chain": chain,
                        "sequence": row["seqres"]})
    return sorted(targets, key=lambda t: len(t["sequence"]))


def _cb(result: folding.FoldResult) -> np.ndarray:
    cb = result.positions[:, CB_INDEX].copy()
    glycine = np.array([aa == "G" for aa in result.sequence])
    cb[glycine] = result.positions[glycine, 1]
    return cb


def score_against_experiment(result: folding.FoldResult, target: dict) -> dict:
    """TM-score (normalised by the observed length), lDDT-Cα, Cα-RMSD, GDT-TS, top-L/5 long-range contact precision
    and mean pLDDT, on the residues the experiment observed (prediction paired to them by sequence alignment)."""
    experiment = metrics.experimental_chain(target["file"], target["chain"])
    query, observed = metrics.pair_by_sequence(result.sequence, experiment["sequence"])
    ref_ca, pred_ca = experiment["ca"][observed], result.positions[query, 1]
    scores = {
        "observed residues": len(experiment["sequence"]),
        "scored residues": len(query),
        "TM-score": metrics.tm_score(ref_ca, pred_ca, reference_length=len(experiment["sequence"])),
        "lDDT-Cα": metrics.lddt_ca(ref_ca, pred_ca),
        "Cα-RMSD (Å)": metrics.ca_rmsd(ref_ca, pred_ca),
        "GDT-TS": metrics.gdt_ts(ref_ca, pred_ca),
        "mean pLDDT (Cα, scored residues)": float(np.mean(result.plddt[query])),
    }
    try:
        scores["contact precision (L/5, |i−j|≥24)"] = metrics.contact_precision(experiment["cb"][observed],
                                                                                 _cb(result)[query])
    except ValueError:  # chains too short to have residues 24 apart
        scores["contact precision (L/5, |i−j|≥24)"] = float("nan")
    return scores


def evaluate(recipes: list[str], targets: list[dict], device: str, source: str | None = None,
             reference: str = "fp32", chunk_size: int | None = 64, keep: dict | None = None) -> pd.DataFrame:
    """Fold every target with every recipe (each recipe loaded once) and score it against the reference recipe's
    prediction (tier 1) and against experiment (tier 2); one tidy row per target × recipe, with provenance.

    On a GPU, each fold is first predicted (`fit.verdict`): one that does not fit is skipped, with the reason in its
    row and printed; a borderline one is tried, and an out-of-memory is caught and recorded. Where the reference
    recipe has no prediction for a target, tier 1 uses the next recipe in `recipes` that has one, and the row's
    'reference' column says which. Pass a dict as `keep` to receive the predictions, keyed by (recipe, target)."""
    order = [reference] + [name for name in recipes if name != reference]
    predictions: dict = {} if keep is None else keep
    rows = []
    bar = tqdm(total=len(order) * len(targets), desc="evaluate")
    for recipe in order:
        model, tokenizer = models.load_model(recipe, device=device, source=source, chunk_size=chunk_size)
        for target in targets:
            row = {"target": target["target"], "recipe": recipe, "length": len(target["sequence"])}
            verdict, why = fit.verdict(recipe, row["length"], chunk_size) if gpu.current() else ("fits", "")
            if verdict == "over":
                row.update(status="skipped", reason=why)
                print(f"skipped {recipe} for {target['target']}: {why}")
            else:
                with memory.measure(f"{recipe} {target['target']}", device=device,
                                    may_run_out=verdict == "borderline") as record:
                    result = folding.fold(model, tokenizer, target["sequence"])
                row["status"], row["seconds"] = record["status"], record["seconds"]
            if row["status"] == "ok":
                predictions[(recipe, target["target"])] = result
                row.update({"pTM": result.ptm, "mean pLDDT (Cα)": result.mean_plddt_ca})
                # the reference's prediction, or the first recipe's in `order` that folded this target
                row["reference"] = next(name for name in order if (name, target["target"]) in predictions)
                row.update(metrics.compare_predictions(predictions[(row["reference"], target["target"])], result))
                row.update(score_against_experiment(result, target))
            rows.append(row)
            bar.update()
        del model
        memory.free_memory()
    bar.close()
    table = pd.DataFrame(rows)
    for key, value in notebook.provenance(device, source).items():
        table[key] = value
    return table


def paired_bootstrap(table: pd.DataFrame, metric: str, recipe: str, reference: str = "fp32", n: int = 2000,
                     seed: int = 0) -> dict:
    """Mean paired difference (recipe − reference) of a metric over targets, with a 95 % bootstrap interval."""
    wide = table.pivot(index="target", columns="recipe", values=metric)[[reference, recipe]].dropna()
    differences = (wide[recipe] - wide[reference]).to_numpy()
    if len(differences) == 0:
        return {"recipe": recipe, "metric": metric, "targets": 0, "mean difference": float("nan"),
                "95% CI low": float("nan"), "95% CI high": float("nan")}
    rng = np.random.default_rng(seed)
    means = rng.choice(differences, size=(n, len(differences)), replace=True).mean(axis=1)
    return {"recipe": recipe, "metric": metric, "targets": len(differences),
            "mean difference": float(differences.mean()),
            "95% CI low": float(np.percentile(means, 2.5)), "95% CI high": float(np.percentile(means, 97.5))}
