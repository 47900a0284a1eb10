"""The Markdown pages a reader opens on GitHub: they render, their links resolve, their generated blocks match the
committed CSVs, the README stays a landing page, and each number stated in prose agrees with its source."""

import functools
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from markdown_it import MarkdownIt

from helpers import accuracy, cpu, data, fit, gpu, lean, models, recipes
from tools import figures, plan

ROOT = Path(__file__).resolve().parent.parent
PAGES = ["README.md", "docs/results.md", "CONTRIBUTING.md", "notebooks/INSTRUCTOR_GUIDE.md"]
README_WORDS = 1500


def _github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _outside_code(text: str) -> str:
    return re.sub(r"```.*?```", "", text, flags=re.S)


def _anchors(path: Path) -> set[str]:
    return {_github_slug(h) for h in re.findall(r"^#+ (.*)$", _outside_code(path.read_text()), flags=re.M)}


@pytest.mark.parametrize("page", PAGES)
def test_the_page_renders_on_github_one_table_per_table_and_every_link_resolves(page):
    """Rendered with a GitHub-flavoured Markdown parser (markdown-it-py, CommonMark + GitHub tables): every block of `|`
    rows is one table with all its rows, and every image and link points at a file of this repository (a heading of it
    where an anchor is given), the published repository at the stamped ref, or another site."""
    path = ROOT / page
    text = path.read_text()
    runs = re.findall(r"(?:^\|.*\n)+", _outside_code(text), flags=re.M)
    tokens = MarkdownIt("commonmark").enable(["table", "strikethrough"]).parse(text)  # GitHub's extensions
    tables = [i for i, t in enumerate(tokens) if t.type == "table_open"]
    assert len(tables) == len(runs), f"{len(runs)} blocks of table rows render as {len(tables)} tables"
    for start, run in zip(tables, runs):
        end = next(i for i in range(start, len(tokens)) if tokens[i].type == "table_close")
        rows = sum(t.type == "tr_open" for t in tokens[start:end])
        assert rows == len(run.strip().splitlines()) - 1, run.splitlines()[0]  # minus the |---| line
    targets = [child.attrs["href"] if child.type == "link_open" else child.attrs["src"]
               for token in tokens for child in token.children or [] if child.type in ("link_open", "image")]
    assert targets
    for target in targets:
        if target.startswith(("https://github.com/OWNER", "https://raw.githubusercontent.com/OWNER",
                              "https://colab.research.google.com/github/OWNER")):
            assert f"/{data.REPO}/" in target and f"/{data.REF}/" in target, target
        elif not target.startswith(("http://", "https://", "mailto:")):
            file, _, anchor = target.partition("#")
            linked = (path.parent / file).resolve() if file else path
            assert linked.exists() and ROOT in linked.parents, f"{target} is not a file of the repository"
            if anchor:
                assert anchor in _anchors(linked), f"{target}: no such heading"


@pytest.mark.parametrize("page", figures.PAGES)
def test_every_generated_block_matches_its_csv(page):
    """The blocks `make figures` writes (tables and the sentences around measured numbers) are what their committed
    CSVs render today: a CSV and its page cannot disagree."""
    text = (ROOT / page).read_text()
    assert "<!-- " in text and text == figures.rendered(text), "run `python -m tools.figures`"


def test_the_results_page_shows_every_recipe_that_holds_its_own_weights():
    block = (ROOT / "docs/results.md").read_text().split("<!-- weights:start -->")[1].split("<!-- weights:end -->")[0]
    expected = recipes.shown_in(recipes.WEIGHTS_TABLE)
    assert expected and all(f"| `{v}` |" in block for v in expected)


def _prose(text: str) -> str:
    """A page's running text: no code blocks, tables, HTML comments, images, badges or link targets."""
    text = re.sub(r"<!--.*?-->", "", _outside_code(text), flags=re.S)
    text = re.sub(r"^\|.*$", "", text, flags=re.M)
    text = re.sub(r"!\[[^\]]*\]\([^)]*\)", "", text)
    return re.sub(r"\]\([^)]*\)", "]", text)


def test_the_readme_is_a_landing_page():
    """At most 1,500 words of prose (tables, badges and code not counted), three ways in, the series table, the
    recipe question, troubleshooting and citation; measured results live on the results page."""
    readme = (ROOT / "README.md").read_text()
    words = len(re.findall(r"\w[\w'’.,-]*", _prose(readme)))
    assert words <= README_WORDS, f"{words} words"
    headings = re.findall(r"^## (.*)$", readme, flags=re.M)
    for needed in ("Three ways in", "The series", "Which recipe for my hardware?", "Troubleshooting", "Citation"):
        assert needed in headings
    assert "docs/results.md" in readme and "CONTRIBUTING.md" in readme and "INSTRUCTOR_GUIDE.md" in readme
    for moved in ("<!-- hardware:start -->", "<!-- cpuclasses:start -->", "<!-- seed:start -->"):
        assert moved not in readme and moved in (ROOT / "docs/results.md").read_text()


# ---- numbers in prose, each against its source ---------------------------------------------------------------------

def _parameters() -> dict[str, int]:
    return _meta_counts("random-full")


def _checkpoint_gb() -> float:
    counts = _parameters()
    return (counts["language model (ESM-2)"] * 2 + (counts["total"] - counts["language model (ESM-2)"]) * 4) / 1e9


def _csv(name: str) -> pd.DataFrame:
    return pd.read_csv(figures.figures_dir() / name)


# The sources below compute each number from what it is about (the architecture, a committed CSV, a helpers constant
# or shared data); where a sentence rounds or words a number, the source does the same, and where a sentence states
# a relation (a floor between two lengths, the steps that lower nothing), the source checks the relation itself.

GIB = 2**30
_WORDS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine"}


@functools.cache
def _meta_counts(source: str) -> dict[str, int]:
    return models.component_parameters(models.meta_model(source))


def _lm_and_rest() -> tuple[int, int]:
    counts = _meta_counts("random-full")
    return counts["language model (ESM-2)"], counts["total"] - counts["language model (ESM-2)"]


def _trunk_config():
    return models.meta_model("random-full").config.esmfold_config.trunk


def _pair_gib(length: int) -> float:
    """One fp32 pair tensor (L × L × the pair width) in GiB."""
    return length**2 * _trunk_config().pairwise_state_dim * 4 / GIB


def _recipe_bytes(recipe: str, column: str = "total") -> int:
    return int(_csv("03_recipe_weights.csv").set_index("recipe").loc[recipe, column])


def _h100_context_gib() -> list[float]:
    """`fit.CUDA_CONTEXT_GIB` is the gpu check's `context` row: device memory in use with no tensor kept (nvidia-smi
    less what PyTorch reserved)."""
    row = _csv("09_gpu_check.csv").set_index("step").loc["context"]
    measured = row["nvidia-smi after (GiB)"] - row["reserved after (GiB)"]
    assert round(measured, 2) == fit.CUDA_CONTEXT_GIB, (measured, fit.CUDA_CONTEXT_GIB)
    return [fit.CUDA_CONTEXT_GIB]


def _superscript_power_of_two(n: int) -> str:
    exponent = n.bit_length() - 1
    assert n == 2**exponent, n
    return "2" + str(exponent).translate(str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹"))


def _spike_length() -> int:
    return len(data.read_fasta(data.fetch("sequences/P0DTC2_spike.fasta"))[0][1])


def _seed_observed() -> int:
    from helpers import metrics

    return len(metrics.experimental_chain("structures/1CA2.pdb", "A")["ca"])


def _straight_line_agreement() -> float:
    """Notebook 05's straight line against 1CA2's Cβ atoms, on the seed-style all-pairs contact agreement."""
    from helpers import metrics

    cb = metrics.experimental_chain("structures/1CA2.pdb", "A")["cb"]
    line = np.stack([np.arange(len(cb)) * 3.8, np.zeros(len(cb)), np.zeros(len(cb))], axis=1)
    return metrics.contact_map_agreement(cb, line)


def _benchmark(targets) -> list[int]:
    lengths = [len(t["sequence"]) for t in targets]
    return [len(targets), min(lengths), max(lengths)]


def _seed_plddt() -> list[float]:
    return [data.SEED_MEAN_PLDDT[r] for r in ("fp32", "fp16-seed", "int8")]


def _seed_plddt_within() -> list[float]:
    """The seed's largest mean-pLDDT gap to fp32, rounded up to 0.1."""
    fp32, *others = _seed_plddt()
    return [math.ceil(max(abs(v - fp32) for v in others) * 10) / 10]


def _longest_without_lean_on_t4() -> list[int]:
    """The hardware table's longest length on a free T4 over the recipes without the lean trunk."""
    table = _csv("04_max_length.csv")
    t4 = next(c for c in table.columns if c.startswith("free T4"))
    return [max(int(re.match(r"≥?\s*(\d+) aa", cell).group(1)) for recipe, cell in zip(table["recipe"], table[t4])
                if "lean" not in recipe and "aa" in cell)]


def _t4_room_in_pair_tensors(length: int) -> list[int]:
    """Notebook 07's last column at L: what a T4 leaves after the CUDA context and the int8 weights, in pair tensors,
    rounded up (the sentence says "fewer than")."""
    return [math.ceil((gpu.T4.usable_gib - _recipe_bytes("int8") / GIB) / _pair_gib(length))]


def _lean_trunk_pair_tensors() -> list[float]:
    """The lean trunk's activation peak (language model parked) in fp32 pair tensors, from the committed grid at every
    length from 2,048 on: one number, if they all round to it."""
    grid = _csv("04_predicted_grid.csv")
    rows = grid[(grid["profile"] == fit.activation_profile("fp32")) & (grid["chunk size"] == fit.LEAN)
                & (grid["length"] >= 2048)]
    ratios = [r["activation bytes, LM parked"] / (_pair_gib(r["length"]) * GIB) for _, r in rows.iterrows()]
    assert ratios and max(ratios) - min(ratios) < 0.2, ratios
    return [sum(ratios) / len(ratios)]


def _t4_floor() -> list[int]:
    """Notebook 06: the longest grid length some recipe of its table fits on a T4 with any chunk size, and the next grid
    length, which none fits."""
    def fits(length):
        return any(gpu.verdict(fit.grid_estimate(recipe, length, chunk)["reserved (GiB)"], gpu.T4.usable_gib) == "fits"
                   for recipe in recipes.ladder() for chunk in (None, 128, 64, 32))

    lengths = list(fit.GRID_LENGTHS)
    longest = max(length for length in lengths if fits(length))
    return [longest, lengths[lengths.index(longest) + 1]]


def _int8_limit_measured() -> list[int]:
    """figures/09_gpu_limits.csv: the longest int8 fold (chunk 64, original trunk) that fitted under the T4 cap, and
    the next length, out of memory with chunk 64 and with chunk 32."""
    rows = _csv("09_gpu_limits.csv")
    rows = rows[(rows["step"] == "fold") & (rows["recipe"] == "int8") & (rows["lean trunk"].astype(str) == "False")]
    status = {(int(r["length"]), str(r["chunk size"])): r["status"] for _, r in rows.iterrows()}
    fitted = max(length for (length, chunk), said in status.items() if chunk == "64" and said == "ok")
    beyond = min(length for (length, chunk), said in status.items() if chunk == "64" and said == "OOM")
    assert fitted < beyond and status.get((beyond, "32")) == "OOM", status
    return [fitted, beyond]


def _lean_steps_lowering_nothing() -> list[str]:
    """The cumulative lean steps whose predicted peak equals the step before's at every length."""
    steps = _csv("07_lean_steps.csv")
    flat = None
    for _, part in steps.groupby("length"):
        peak = part["predicted peak allocated (GiB)"].reset_index(drop=True)
        here = {part["step"].iloc[i].removeprefix("+ ") for i in range(1, len(part)) if abs(peak[i] - peak[i - 1]) < 1e-9}
        flat = here if flat is None else flat & here
    return [" and ".join(f"`{change}`" for change in lean.CHANGES if change in flat)]


def _lean_check_rows_of_check():
    """The rows `tools.lean_check check` writes (default chunks); `wide` adds rows of its own."""
    rows = _csv("07_lean_check.csv")
    return rows[rows["rows per chunk"].astype(str).str.startswith("default")]


def _measured_lean_changes() -> list[str]:
    """The lean changes measured on the GPU (column `lean changes` of every figures/09_gpu_*.csv) are the first n of
    `lean.CHANGES`; the rest are predicted only."""
    measured = set()
    for name in ("09_gpu_check.csv", "09_gpu_limits.csv", "09_gpu_recheck.csv"):
        measured |= set(_csv(name)["lean changes"].dropna())
    assert len(measured) == 1, measured
    changes = [c.strip() for c in measured.pop().split(",")]
    n = len(changes)
    assert tuple(changes) == lean.CHANGES[:n], changes
    rest = lean.CHANGES[n:]
    return [_WORDS[n], _WORDS[len(rest)], " and ".join(f"`{c}`" for c in rest)]


def _cpu_load_ram() -> dict[str, float]:
    """The RAM each CPU recipe needs to load with the real weights, where it is more than a free Colab runtime has."""
    return {name: r.load_ram_gb for name, r in recipes.RECIPES.items()
            if recipes.CPU_TABLE in r.tables and r.load_ram_gb > cpu.COLAB_RAM_GB}


def _over_colab() -> list[float]:
    """Exactly two CPU recipes need more RAM to load than a free Colab runtime has: fp32 and Quanto int8."""
    over = _cpu_load_ram()
    assert len(over) == 2 and "fp32" in over, over
    return [cpu.COLAB_RAM_GB]


def _quantize_on_load_ram() -> list[float]:
    return [next(gb for name, gb in _cpu_load_ram().items() if name != "fp32")]


def _tiny_parameters() -> list[str]:
    n = _meta_counts("tiny")["total"]
    return ["a few hundred thousand" if 100_000 <= n < 1_000_000 else f"{n:,}"]


def _schedule_minutes() -> list[int]:
    """The instructor guide's teaching and hands-on minutes: the sums of its schedule's columns."""
    guide = (ROOT / "notebooks/INSTRUCTOR_GUIDE.md").read_text()
    table = guide.split("<!-- plan:schedule -->")[1].split("<!-- /plan:schedule -->")[0]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in table.strip().splitlines()
            if line.startswith("|")]
    header, body = rows[0], rows[2:]
    return [sum(int(row[header.index(column)]) for row in body if row[header.index(column)].isdigit())
            for column in ("teaching", "hands-on")]


def _bf16_lean_1ca2() -> list:
    """notebook 08's bf16-lean fold of 1CA2 in the class table (uncapped class) and in the uncapped benchmark, with the
    two runs' dates: two numbers for one fold, each from its own CSV."""
    classes, bench = _csv("08_cpu_classes.csv"), _csv("08_cpu_benchmark.csv")
    length = len(data.seed_sequence())  # 1CA2 as deposited: 259 aa
    cls = classes[(classes["recipe"] == "bf16-lean") & (classes["length"] == length)
                  & (classes["CPU class"] == list(cpu.CPU_CLASSES)[-1])]
    ben = bench[(bench["recipe"] == "bf16-lean") & (bench["length"] == length)]
    date = lambda frame: re.search(r"\d{4}-\d\d-\d\d", frame["provenance"].iloc[0]).group()  # noqa: E731
    return [round(cls["fold seconds"].median()), round(ben["fold seconds"].median()), date(cls), date(ben)]


#: (page, the sentence as it must read, how its numbers are computed). The sentence is searched with the page's line
#: breaks (and a notebook script's comment marks) folded into spaces.
CLAIMS = [
    ("README.md", "ESMFold is a {:.1f} B parameter model", lambda: [_parameters()["total"] / 1e9]),
    ("README.md", "downloads the {:.1f} GB checkpoint", lambda: [_checkpoint_gb()]),
    ("README.md", "{} notebooks go from the plain fp32 model",
     lambda: [{7: "Seven", 8: "Eight", 9: "Nine"}.get(len(list((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))))]),
    ("README.md", "picks a recipe that fits {} GB of RAM", lambda: [cpu.COLAB_RAM_GB]),
    ("notebooks/INSTRUCTOR_GUIDE.md", "counts its own {:.1f} GB download", lambda: [_checkpoint_gb()]),
    ("notebooks/03_quantization.py", "reads the {:.1f} GB checkpoint again", lambda: [_checkpoint_gb()]),
    ("notebooks/03_quantization.py", "in every trunk pass ({} with the default recycles)",
     lambda: [models.meta_model("random-full").config.esmfold_config.trunk.max_recycles]),
    ("docs/results.md", "runs at least {}× as fast as fp32", lambda: [cpu.BF16_SPEEDUP_NEEDED]),
    ("docs/results.md", "2 vCPUs and {} GB of RAM", lambda: [cpu.COLAB_RAM_GB]),
    ("docs/results.md", "chunks of 2¹³ = {:,} pair positions run faster than the GPU's memory-sized 2¹⁸",
     lambda: [lean.CPU_POSITIONS] if lean.AUTO_POSITIONS == 2**18 and lean.CPU_POSITIONS == 2**13 else [None]),
    ("docs/results.md", "Every recipe that fits {} GB", lambda: [cpu.COLAB_RAM_GB]),
    ("docs/results.md", "`num_recycles=2` drops one of the default {} trunk passes",
     lambda: [models.meta_model("random-full").config.esmfold_config.trunk.max_recycles]),
    ("docs/results.md", "In this order {} lower nothing", _lean_steps_lowering_nothing),
    ("docs/results.md", "`python -m tools.lean_check check`): {} and {} residues",
     lambda: sorted(_lean_check_rows_of_check()["length"].unique())),
    ("docs/results.md", "The first {} changes were measured on an H100", lambda: _measured_lean_changes()[:1]),
    ("docs/results.md", "The last {1}, {2}, are predicted, not measured", _measured_lean_changes),
    ("docs/results.md", "(`fp32`, and Quanto int8 quantized on load, need more than {} GB while loading)", _over_colab),
    ("README.md", "`ESMFOLD_WEIGHTS=tiny` ({} parameters", _tiny_parameters),
    ("CONTRIBUTING.md", "the largest peaking at ≈ {:.0f} GiB of RAM",
     lambda: [_csv("03_recipe_weights.csv")["load peak RSS (GiB)"].max()]),
    ("CONTRIBUTING.md", "it holds the fp32 model's {:.1f} GB of weights in RAM", lambda: [_recipe_bytes("fp32") / 1e9]),
    ("notebooks/INSTRUCTOR_GUIDE.md", "why halving the language model saves ≈ {:.1f} GiB",
     lambda: [(_recipe_bytes("fp32", "language model (ESM-2)") - _recipe_bytes("fp16", "language model (ESM-2)")) / GIB]),
    ("notebooks/INSTRUCTOR_GUIDE.md", "load ESMFold in under {} GB of RAM", lambda: [cpu.COLAB_RAM_GB]),
    ("notebooks/INSTRUCTOR_GUIDE.md", "RAM exhausted ({} GB)", lambda: [cpu.COLAB_RAM_GB]),
    ("notebooks/INSTRUCTOR_GUIDE.md", "which folds on a CPU within {} GB of RAM", lambda: [cpu.COLAB_RAM_GB]),
    ("notebooks/INSTRUCTOR_GUIDE.md", "where bf16 is not at least {}× fp32", lambda: [cpu.BF16_SPEEDUP_NEEDED]),
    ("notebooks/INSTRUCTOR_GUIDE.md", "where ≈ {:.0f} GB of RAM is available", _quantize_on_load_ram),
    ("notebooks/INSTRUCTOR_GUIDE.md", "(`outputs/esmfold-int8`, ≈ {:.1f} GB)", lambda: [_recipe_bytes("int8") / 1e9]),
    ("notebooks/INSTRUCTOR_GUIDE.md", "The checkpoint takes {:.1f} GB of a free Google account", lambda: [_checkpoint_gb()]),
    ("notebooks/INSTRUCTOR_GUIDE.md", "Teaching minutes: {}; exercise minutes: {}.", _schedule_minutes),
    ("notebooks/01_fp32_baseline.py", "**ESM-2 language model** ({} transformer layers)",
     lambda: [models.meta_model("random-full").config.num_hidden_layers]),
    ("notebooks/01_fp32_baseline.py", "**Folding trunk** ({} blocks)", lambda: [_trunk_config().num_blocks]),
    ("notebooks/01_fp32_baseline.py", "The trunk runs **{} times** by default", lambda: [_trunk_config().max_recycles]),
    ("notebooks/01_fp32_baseline.py", "after each of the structure module's {} blocks",
     lambda: [_trunk_config().structure_module.num_blocks]),
    ("notebooks/02_fp16.py", "about a minute at the {} MB/s that the series' run plan assumes",
     lambda: [plan.DISK_MB_S] if 45 <= _checkpoint_gb() * 1e3 / plan.DISK_MB_S <= 90 else [None]),
    ("notebooks/03_quantization.py", "about a minute at the {} MB/s that the series' run plan",
     lambda: [plan.DISK_MB_S] if 45 <= _checkpoint_gb() * 1e3 / plan.DISK_MB_S <= 90 else [None]),
    ("notebooks/04_memory_vs_length.py", "each of the {} trunk passes ({} blocks each)",
     lambda: [_trunk_config().max_recycles, _trunk_config().num_blocks]),
    ("notebooks/04_memory_vs_length.py", "P0DTC2), {:,} aa) — memory and time depend on the length, not the letters; "
     "past {:,} the sequence is repeated", lambda: [_spike_length()] * 2),
    ("notebooks/04_memory_vs_length.py", "the pair representation, L × L × {} fp32 numbers",
     lambda: [_trunk_config().pairwise_state_dim]),
    ("notebooks/01_fp32_baseline.py", "model needs ≈ {:.0f} GB just for its weights",
     lambda: [_parameters()["total"] * 4 / 1e9]),
    ("notebooks/01_fp32_baseline.py", "would fill its {} GB of RAM", lambda: [cpu.COLAB_RAM_GB]),
    ("notebooks/01_fp32_baseline.py", "Colab's {} GB of CPU RAM never has to hold", lambda: [cpu.COLAB_RAM_GB]),
    ("notebooks/01_fp32_baseline.py", "The language model holds {:.0f} % of the parameters",
     lambda: [100 * _parameters()["language model (ESM-2)"] / _parameters()["total"]]),
    ("notebooks/01_fp32_baseline.py", "CUDA offers a process {:,} bytes of it — {:.2f} GiB",
     lambda: [round(gpu.T4.total_gib * GIB), gpu.T4.total_gib]),
    ("notebooks/01_fp32_baseline.py", "(on an H100 it measured {:.2f} GiB, `fit.CUDA_CONTEXT_GIB`)", _h100_context_gib),
    ("notebooks/01_fp32_baseline.py", "every verdict of this series within {} GiB of the limit is called *borderline*",
     lambda: [gpu.BORDERLINE_GIB]),
    ("notebooks/01_fp32_baseline.py", "The real checkpoint on the hub is {:.2f} GB, not {:.0f} GB, because it stores the "
     "language model in fp16 ({:.3f} B × 2 bytes + {:.3f} B × 4 bytes)",
     lambda: [_checkpoint_gb(), _parameters()["total"] * 4 / 1e9, *(n / 1e9 for n in _lm_and_rest())]),
    ("notebooks/01_fp32_baseline.py", "the CUDA context (≈ {} GiB on a T4, assumed)", lambda: [gpu.T4.context_gib]),
    ("notebooks/01_fp32_baseline.py", "ESMFold's own outputs (e.g. {} for the ESM README's example)",
     lambda: [data.REFERENCE_65AA_PLDDT]),
    ("notebooks/01_fp32_baseline.py", "(all-atom mean pLDDT {})", lambda: [data.REFERENCE_65AA_PLDDT]),
    ("notebooks/01_fp32_baseline.py", "{} residues in the deposited sequence, {} of them resolved",
     lambda: [len(data.seed_sequence()), _seed_observed()]),
    ("notebooks/01_fp32_baseline.py", "The weights leave about {:.1f} GiB of a T4",
     lambda: [gpu.T4.usable_gib - _parameters()["total"] * 4 / GIB]),
    ("notebooks/01_fp32_baseline.py", "The seed article measured {:.0f} GB with nvidia-smi for this protein",
     lambda: [data.SEED_MEMORY_GB["fp32"][_seed_observed()]]),
    ("notebooks/01_fp32_baseline.py", "ESM-2 language model ({:.2f} B parameters, runs once) → folding trunk ({:.2f} B, "
     "runs {} times)", lambda: [_parameters()["language model (ESM-2)"] / 1e9, _parameters()["folding trunk"] / 1e9,
                                _trunk_config().max_recycles]),
    ("notebooks/01_fp32_baseline.py", "{:.2f} B parameters × 4 bytes ≈ {:.1f} GB ({:.1f} GiB) in fp32",
     lambda: [_parameters()["total"] / 1e9, _parameters()["total"] * 4 / 1e9, _parameters()["total"] * 4 / GIB]),
    ("notebooks/01_fp32_baseline.py", "store the {:.1f} B-parameter language model",
     lambda: [_parameters()["language model (ESM-2)"] / 1e9]),
    ("notebooks/05_accuracy.py", "a straight line scoring ≈ {:.2f} on an all-pairs measure",
     lambda: [_straight_line_agreement()]),
    ("notebooks/05_accuracy.py", "The default set is {} experimental structures ({}–{} residues;",
     lambda: _benchmark(accuracy.local_targets())),
    ("notebooks/05_accuracy.py", "uses the {} CAMEO 2022 targets ({}–{} residues",
     lambda: _benchmark(accuracy.cameo_targets())),
    ("notebooks/05_accuracy.py", "(1CA2: {} deposited, {} observed)", lambda: [len(data.seed_sequence()), _seed_observed()]),
    ("notebooks/05_accuracy.py", "The seed article found fp16 and int8 within {:.1f} pLDDT of fp32", _seed_plddt_within),
    ("notebooks/05_accuracy.py", "mean pLDDTs ({:.2f} / {:.2f} / {:.2f} for fp32 / fp16 / int8", _seed_plddt),
    ("notebooks/05_accuracy.py", "has an all-atom mean pLDDT of {}", lambda: [data.REFERENCE_65AA_PLDDT]),
    ("notebooks/06_recipes.py", "keep the {:.1f} B-parameter language model off the GPU",
     lambda: [_parameters()["language model (ESM-2)"] / 1e9]),
    ("notebooks/06_recipes.py", "between {:,} and {:,} residues it meets the T4 whatever the weights", _t4_floor),
    ("notebooks/06_recipes.py", "int8 + chunk 64 folded {:,} residues and ran out of memory at {:,}, with chunk 32 as "
     "with chunk 64", _int8_limit_measured),
    ("notebooks/07_lean_trunk.py", "with trunk chunking (≈ {:,} aa,", _longest_without_lean_on_t4),
    ("notebooks/07_lean_trunk.py", "the *pair representation*, {} numbers for every pair",
     lambda: [_trunk_config().pairwise_state_dim]),
    ("notebooks/07_lean_trunk.py", "a T4 has room for fewer than {} pair tensors at L = 2,000",
     lambda: _t4_room_in_pair_tensors(2000)),
    ("notebooks/07_lean_trunk.py", "a slice of the pair tensor of about {} positions",
     lambda: [_superscript_power_of_two(lean.AUTO_POSITIONS)]),
    ("notebooks/07_lean_trunk.py", "at L = 2,000 each is {:.1f} GiB", lambda: [_pair_gib(2000)]),
    ("notebooks/07_lean_trunk.py", "(about {:.1f} pair tensors at 2,048 and more residues", _lean_trunk_pair_tensors),
    ("README.md", "*GB* and *GiB*: 10⁹ and 2³⁰ bytes (1 GiB = {:.3f} GB)", lambda: [GIB / 1e9]),
    ("docs/results.md", "the same fold reads {} GiB more on a T4 (assumed) and {} GiB more on the H100 (measured)",
     lambda: [gpu.T4.context_gib, *_h100_context_gib()]),
    ("docs/results.md", "`bf16-lean` folds 1CA2 in {} s in the class table above and in {} s here. They are two runs on "
     "the same CPU a day apart ({} and {})", _bf16_lean_1ca2),
    ("notebooks/01_fp32_baseline.py", "nvidia-smi shows a Colab T4 with {:,} MiB", lambda: [figures.T4_NVIDIA_SMI_MIB]),
    ("notebooks/01_fp32_baseline.py", "PyTorch's out-of-memory message writes the same bytes as \"{:.2f} GiB\"",
     lambda: [math.floor(gpu.T4.total_gib * 100) / 100]),
    ("notebooks/01_fp32_baseline.py", "What is left is *PyTorch's budget*, {:.2f} GiB", lambda: [gpu.T4.usable_gib]),
]


def _folded(page: str) -> str:
    text = (ROOT / page).read_text()
    if page.endswith(".py"):
        text = re.sub(r"^# ?", "", text, flags=re.M)
    return re.sub(r"\s+", " ", text)


@pytest.mark.parametrize("page, sentence, source", CLAIMS, ids=[f"{p}: {s[:40]}" for p, s, _ in CLAIMS])
def test_a_number_in_prose_agrees_with_its_source(page, sentence, source):
    expected = sentence.format(*source())
    assert expected in _folded(page), f"{page} should say: {expected}"


def test_the_first_figure_s_title_is_read_from_the_grid_it_shows():
    """The README's first figure carries its title in the PNG's metadata: it names the grid it was predicted on, and
    its longest bar is the grid's end."""
    from PIL import Image

    grid = sorted(int(n) for n in _csv("04_predicted_grid.csv")["length"].unique())
    title = Image.open(figures.figures_dir() / "04_max_length.png").text["Title"]
    assert title == figures.max_length_title(grid), "run `python -m tools.figures`"
    assert f"{grid[0]}–{grid[-1]:,} aa grid" in title
    table = _csv("04_max_length.csv")
    t4 = next(c for c in table.columns if c.startswith("free T4"))
    bars = [figures._t4_length(cell) for cell in table[t4]]
    assert max(length for length, _ in bars) == grid[-1]
    assert all(length <= grid[-1] for length, _ in bars)
    assert "(figures/04_max_length.png)" in (ROOT / "README.md").read_text().split("## ")[0]  # the README's first picture


def test_the_t4_budget_table_names_each_step_once_and_the_pages_use_those_names():
    rows = figures.budget_rows()
    names = [re.match(r"[−= ]*\*\*(.+?)\*\*", step).group(1) for step, _, _ in rows]
    assert len(set(names)) == len(names)
    assert rows[0][1].startswith(f"{figures.T4_NVIDIA_SMI_MIB:,} MiB") and figures.T4_NVIDIA_SMI_MIB / 1024 == 15.0
    assert f"{gpu.T4.total_gib:.2f} GiB" in rows[1][1] and f"{gpu.T4.usable_gib:.2f} GiB" in rows[3][1]
    assert gpu.T4.total_gib - gpu.T4.context_gib == pytest.approx(gpu.T4.usable_gib)
    for page in ("notebooks/01_fp32_baseline.py", "docs/results.md"):
        text = _folded(page)
        assert "PyTorch's budget" in text and "CUDA total" in text and "CUDA context" in text, page


def test_the_3000_residue_fold_is_called_predicted_until_a_gpu_measures_it():
    """Every phrase that promises ≈ 3,000 residues on a T4 says "predicted" in it, unless a lean fold of 3,000 or
    more residues fitted under a T4 cap (figures/09_*.csv)."""
    rows = pd.concat([_csv(n) for n in ("09_gpu_check.csv", "09_gpu_limits.csv", "09_gpu_recheck.csv")])
    measured = rows[(rows["step"] == "fold") & (rows["status"] == "ok") & (rows["lean trunk"].astype(str) == "True")
                    & (rows["length"].astype(float) >= 3000)]
    if not measured.empty:
        pytest.skip("a GPU has measured it")
    pages = ["README.md", "notebooks/INSTRUCTOR_GUIDE.md"] + [f"notebooks/{p.name}" for p in
                                                              sorted((ROOT / "notebooks").glob("0*.py"))]
    found = 0
    for page in pages:
        text = (ROOT / page).read_text()
        if page.endswith(".py"):  # the notebook's markdown cells only
            text = "\n".join(re.findall(r"^# %% \[markdown\]\n((?:#.*\n?)*)", text, flags=re.M))
        for phrase in re.findall(r"[^.;:|\]\[(]*(?:3,000|3,056)[^.;|\])]*", re.sub(r"\s+", " ", re.sub(r"^# ?", "", text, flags=re.M))):
            if re.search(r"\bT4\b|fold|residues", phrase):
                found += 1
                assert "predicted" in phrase, f"{page}: {phrase.strip()}"
    assert found >= 4


def test_every_notebook_is_named_by_its_own_title_in_the_readme_and_the_navigation_links():
    titles = {}
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py")):
        found = re.search(r"^# # (\d\d) · (.+)$", path.read_text(), re.M)
        titles[found.group(1)] = found.group(2)
    readme = (ROOT / "README.md").read_text()
    for number, title in titles.items():
        link = re.search(rf"^\| {number} \| \[([^\]]+)\]", readme, re.M).group(1)
        assert title.startswith(link), (number, link, title)  # the README may stop at the title's colon
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py")):
        for number, text in re.findall(r"\[(\d\d) · ([^\]]+)\]\(\d\d_", path.read_text()):
            assert text == titles[number], (path.name, number, text)
