"""Reference TM-scores from TM-align (through tmtools, a test-only dependency) for every pair of the shared
experimental structures, both normalisations: tests/data/tm_align_reference.csv.

    python -m tools.tm_references
"""

from __future__ import annotations

import datetime as dt
import itertools
from importlib.metadata import version
from pathlib import Path

import pandas as pd

from helpers import metrics

#: file → chain of each shared experimental structure (../shared/structures/README.md).
CHAINS = {
    "1CA2.pdb": "A", "1UBQ.pdb": "A", "1CRN.pdb": "A", "1BNI.pdb": "A", "1EJG.cif": "A", "1A8O.cif": "A",
    "1AKI.pdb": "A", "2NWD.bcif": "X", "3LZM.bcif": "A", "1HML.bcif": "A", "1QGI.bcif": "A", "3O5R.pdb": "A",
    "1DIX.pdb": "A", "5H73.pdb": "A", "1GYA.pdb": "A", "2AXD.pdb": "S", "1YRF.pdb": "A", "2RBG.pdb": "A",
    "1PGA.pdb": "A", "5PTI.cif": "A",
}
OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "tm_align_reference.csv"


def chains() -> dict:
    return {name: metrics.experimental_chain(f"structures/{name}", chain) for name, chain in CHAINS.items()}


def main() -> None:
    import tmtools

    loaded = chains()
    rows = []
    for a, b in itertools.combinations(CHAINS, 2):
        x, y = loaded[a], loaded[b]
        result = tmtools.tm_align(x["ca"], y["ca"], x["sequence"], y["sequence"])
        rows.append({"structure 1": a, "chain 1": CHAINS[a], "length 1": len(x["ca"]),
                     "structure 2": b, "chain 2": CHAINS[b], "length 2": len(y["ca"]),
                     "TM-align, normalised by 1": round(result.tm_norm_chain1, 5),
                     "TM-align, normalised by 2": round(result.tm_norm_chain2, 5)})
    table = pd.DataFrame(rows)
    table["provenance"] = (f"TM-align through tmtools {version('tmtools')} (Cα coordinates of model 1, observed "
                           f"residues), {dt.date.today().isoformat()}")
    table.to_csv(OUT, index=False)
    print(f"wrote {OUT}: {len(table)} pairs")


if __name__ == "__main__":
    main()
