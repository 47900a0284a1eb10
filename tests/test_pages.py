"""The Markdown pages a reader opens on GitHub: they render, their links resolve, their generated blocks match the
committed CSVs, the README stays a landing page, and each number stated in prose agrees with its source."""

import re
from pathlib import Path

import pandas as pd
import pytest
from markdown_it import MarkdownIt

from helpers import cpu, data, fit, lean, models
from tools import figures

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
    # offloading recipes hold the same weights as their base recipe, only placed elsewhere (notebook 06)
    assert all(f"| `{v}` |" in block for v, r in models.RECIPES.items() if not r.offload_lm)


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
    return models.component_parameters(models.meta_model("random-full"))


def _checkpoint_gb() -> float:
    counts = _parameters()
    return (counts["language model (ESM-2)"] * 2 + (counts["total"] - counts["language model (ESM-2)"]) * 4) / 1e9


def _csv(name: str) -> pd.DataFrame:
    return pd.read_csv(figures.figures_dir() / name)


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
