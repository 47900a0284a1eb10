"""Where the series' data comes from: a local `shared/` folder if present, else its public source (cached)."""

from __future__ import annotations

import csv
import os
import urllib.request
from pathlib import Path

#: The one place that names the published repository (badges, Colab setup cells and committed-result downloads;
#: `python -m tools.stamp OWNER/REPO REF` rewrites it everywhere).
REPO = "OWNER/gpu-poor-esmfold"
#: The git ref (tag or commit) that Colab setup cells install the helpers from.
REF = "v0.1.0"
#: Environment variable naming a folder laid out like the project's `shared/` data folder.
DATA_ENV = "ESMFOLD_DATA"
#: Environment variable naming the cache folder for downloads and stand-in checkpoints.
CACHE_ENV = "ESMFOLD_CACHE"

_RCSB = "https://files.rcsb.org/download/"
#: Public home of every file this series reads from `shared/` (users without it download from here).
PUBLIC_SOURCES = {
    "sequences/1CA2_seed.fasta": "https://www.rcsb.org/fasta/entry/1CA2",
    "sequences/P0DTC2_spike.fasta": "https://rest.uniprot.org/uniprotkb/P0DTC2.fasta",
    # notebook 07's ~2,000-residue protein: human β-myosin heavy chain (MYH7), 1,935 aa; fetched at run time
    "sequences/P12883_MYH7.fasta": "https://rest.uniprot.org/uniprotkb/P12883.fasta",
    # notebook 07's longest protein: human serine-protein kinase ATM, 3,056 aa; fetched at run time
    "sequences/Q13315_ATM.fasta": "https://rest.uniprot.org/uniprotkb/Q13315.fasta",
    "reference_predictions/esmfold_v1_fairesm_65aa.pdb": (
        "https://raw.githubusercontent.com/silviacambiago/esmfold-project/"
        "0f9b49fb8e1ab69f6ab9fd4a23ef69004737c850/result.pdb"
    ),
    "esmfold_v1/config.json": "https://huggingface.co/facebook/esmfold_v1/raw/main/config.json",
    "benchmarks/cameo2022.csv": (
        "https://raw.githubusercontent.com/bjing2016/EigenFold/"
        "0628664fc481605e8c398527d009e815611cf5db/splits/cameo2022.csv"
    ),
}

#: The 65-residue ESM README example whose published fair-esm prediction lies in `reference_predictions/`.
REFERENCE_65AA = "MKTVRQERLKSIVRILERSKEPVSGAQLAEELSVSRQVIVQDIAYLRSLGYNIVATPRGYVLAGG"
#: Published all-atom mean pLDDT for that sequence (ESM README, github facebookresearch/esm).
REFERENCE_65AA_PLDDT = 88.3


def repo_root() -> Path:
    """The repository folder (parent of `helpers/`)."""
    return Path(__file__).resolve().parent.parent


def cache_dir() -> Path:
    """Folder for downloads and stand-in checkpoints (`$ESMFOLD_CACHE`, default ~/.cache/gpu-poor-esmfold)."""
    path = Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "gpu-poor-esmfold"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def shared_dir() -> Path | None:
    """The local shared data folder: `$ESMFOLD_DATA`, else `../shared` beside the repository, else None."""
    candidates = [os.environ.get(DATA_ENV), repo_root().parent / "shared"]
    for candidate in candidates:
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


def public_url(relpath: str) -> str:
    """Public download address of a shared file (structures come from RCSB)."""
    if relpath in PUBLIC_SOURCES:
        return PUBLIC_SOURCES[relpath]
    if relpath == "structures/targets_seqres.fasta":  # a compilation, not one public file
        raise KeyError("targets_seqres.fasta has no single public source: accuracy.local_targets() reads each "
                       "target's SEQRES from RCSB instead")
    if relpath.startswith("structures/"):
        name = Path(relpath).name
        if name.endswith(".bcif"):
            return f"https://models.rcsb.org/{name}"
        return _RCSB + name
    raise KeyError(f"No public source is known for {relpath!r}")


def fetch(relpath: str) -> Path:
    """Path to a shared data file: the local copy if there is one, else downloaded once into the cache."""
    local = shared_dir()
    if local is not None and (local / relpath).is_file():
        return local / relpath
    target = cache_dir() / "data" / relpath
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        url = public_url(relpath)
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                payload = response.read()
        except OSError as err:
            raise FileNotFoundError(
                f"{relpath} is not in a local shared folder (set ${DATA_ENV}) and downloading {url} failed: {err}"
            ) from err
        target.write_bytes(payload)
    return target


def append_csv(path, rows: list[dict], fields: list[str]) -> None:
    """Append rows to a CSV file, writing the header first if the file is new (resumable result files)."""
    path = Path(path)
    new = not path.is_file()
    with open(path, "a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        if new:
            writer.writeheader()
        writer.writerows(rows)


def read_fasta(path: str | os.PathLike) -> list[tuple[str, str]]:
    """Records of a FASTA file as (header, sequence) pairs; sequence lines are joined, whitespace dropped."""
    records: list[tuple[str, str]] = []
    header, chunks = None, []
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if line.startswith(">"):
            if header is not None:
                records.append((header, "".join(chunks)))
            header, chunks = line[1:].strip(), []
        elif line and header is not None:
            chunks.append(line)
    if header is not None:
        records.append((header, "".join(chunks)))
    return records


def seed_sequence() -> str:
    """The seed article's protein: human carbonic anhydrase II, PDB 1CA2 chain A SEQRES (259 aa)."""
    return read_fasta(fetch("sequences/1CA2_seed.fasta"))[0][1]


def sequence_of_length(length: int) -> tuple[str, str]:
    """A real protein sequence of exactly `length` residues and how it was made (memory and time depend on length only).

    The first `length` residues of the SARS-CoV-2 spike glycoprotein (UniProt P0DTC2, 1,273 aa); past 1,273 the spike
    sequence is repeated end to end — a real-protein composition, not a real protein.
    """
    spike = read_fasta(fetch("sequences/P0DTC2_spike.fasta"))[0][1]
    if length < 1:
        raise ValueError("length must be at least 1")
    if length <= len(spike):
        return spike[:length], f"UniProt P0DTC2 residues 1–{length}"
    repeats = -(-length // len(spike))
    return (spike * repeats)[:length], f"UniProt P0DTC2 repeated {repeats}× and cut to {length} (not a real protein)"


#: The seed article's GPU memory (nvidia-smi, "GB" as it reports them; no trunk chunking; GPU not stated), read from
#: its text and plots — cited from github.com/davideaguglia/ESMFold, not measured here. {recipe: {length: GB}}
SEED_MEMORY_GB = {
    "fp32": {30: 15.0, 256: 16.0, 480: 20.3},
    "fp16-seed": {30: 9.2, 256: 10.2, 480: 14.4},
    "int8": {30: 5.2, 256: 6.0, 480: 10.5},
}
#: The seed's fold times in seconds (short sequences ≈ 1 s, int8 ≈ 1.7 s; ≈ 35 s at L = 480 for all three).
SEED_SECONDS = {"fp32": {30: 1.0, 480: 35.0}, "fp16-seed": {30: 1.0, 480: 35.0}, "int8": {30: 1.7, 480: 35.0}}
SEED_URL = "https://github.com/davideaguglia/ESMFold"


def repo_file(relpath: str) -> Path:
    """A file of this repository (e.g. a committed results CSV): the local checkout's copy, else downloaded once
    from the published repository at the pinned ref (Colab installs the helpers without the rest of the repo)."""
    local = repo_root() / relpath
    if local.is_file():
        return local
    target = cache_dir() / "repo" / REF / relpath
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        # REPO is OWNER/NAME on GitHub, or the address of a local clone at REF (tools/colab_check.py stamps one)
        url = f"{REPO}/{relpath}" if "://" in REPO else f"https://raw.githubusercontent.com/{REPO}/{REF}/{relpath}"
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                target.write_bytes(response.read())
        except OSError as err:
            raise FileNotFoundError(f"{relpath} is not in a local checkout and downloading {url} failed: {err}") from err
    return target
#: The seed's mean pLDDT over its proteins (30–480 aa) per recipe, cited; its "accuracy" (0.885 / 0.885 / 0.884) is
#: an undefined contact-map agreement and is not comparable with any metric here.
SEED_MEAN_PLDDT = {"fp32": 81.11, "fp16-seed": 81.07, "int8": 80.35}
