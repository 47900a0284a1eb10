"""Maintainer tool: point every badge, setup cell and figure link at the published repository, and write the
student copies of the notebooks (solutions removed).

    python -m tools.stamp OWNER/REPO [REF]     rewrite badges, setup cells, raw figure URLs and data.REPO/REF
    python -m tools.stamp student              notebooks/_student/: the notebooks without their solution cells
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from helpers import data

_BADGE = re.compile(r"https://colab\.research\.google\.com/github/([^/\s\"')]+/[^/\s\"')]+)/blob/([^/\s\"')]+)/")
# Setup-cell lines, in a .py file (REPO = "…") or inside a notebook's JSON (REPO = \"…\"): the GitHub repository,
# or any address pip can install from (a local one, for tools/colab_check.py).
_SETUP_REPO = re.compile(r'(REPO = )(\\?")https://github\.com/([^"\\]+)(\\?")')
_SETUP_URL = re.compile(r'(REPO = )(\\?")([a-z+]+://[^"\\]+)(\\?")')
_SETUP_REF = re.compile(r'(REF = )(\\?")([^"\\]+)(\\?")')
_SOLUTIONS_LINE = re.compile(r"\n*^Solutions follow \(.*?\)\.[ \t]*$", re.M)
_RAW = re.compile(r"https://raw\.githubusercontent\.com/([^/\s\"')]+/[^/\s\"')]+)/([^/\s\"')]+)/")


def stamped_files() -> list[Path]:
    """Files that carry the repository URL: every notebook (both halves of each pair) and the README."""
    root = data.repo_root()
    return sorted((root / "notebooks").glob("[0-9]*.ipynb")) + sorted((root / "notebooks").glob("[0-9]*.py")) + [
        root / "README.md"
    ]


def repo_references(text: str) -> set[tuple[str, str]]:
    """Every (repo, ref) a text points at through a Colab badge, a raw figure URL or a setup cell."""
    refs = {(m.group(1), m.group(2)) for m in _BADGE.finditer(text)}
    refs |= {(m.group(1), m.group(2)) for m in _RAW.finditer(text)}
    repos = [m.group(3) for m in _SETUP_REPO.finditer(text)]
    setup_refs = [m.group(3) for m in _SETUP_REF.finditer(text)]
    refs |= {(repo, ref) for repo, ref in zip(repos, setup_refs)}
    return refs


def stamp(repo: str, ref: str = "main", files: list[Path] | None = None) -> list[Path]:
    """Rewrite badges, raw figure URLs and setup cells to `repo`@`ref` (and the constants in helpers/data.py); return
    the changed files. `repo` is OWNER/NAME on GitHub, or an address such as file:///path of a local repository
    (setup cells and helpers/data.py only: badges and figure links keep pointing at GitHub)."""
    url = repo if "://" in repo else f"https://github.com/{repo}"
    changed = []
    constants = Path(data.__file__).resolve()
    for path in stamped_files() + [constants] if files is None else files:
        text = path.read_text()
        if Path(path).resolve() == constants or Path(path).name == constants.name:
            # only the two constants: the patterns below would also match this module's own code
            new = re.sub(r'^REPO = "[^"]*"', f'REPO = "{repo}"', text, flags=re.M)
            new = re.sub(r'^REF = "[^"]*"', f'REF = "{ref}"', new, flags=re.M)
        else:
            new = text
            if "://" not in repo:  # badges and figure links name a repository on GitHub
                new = _BADGE.sub(f"https://colab.research.google.com/github/{repo}/blob/{ref}/", new)
                new = _RAW.sub(f"https://raw.githubusercontent.com/{repo}/{ref}/", new)
            new = _SETUP_URL.sub(lambda m: f"{m.group(1)}{m.group(2)}{url}{m.group(4)}", new)
            new = _SETUP_REF.sub(lambda m: f"{m.group(1)}{m.group(2)}{ref}{m.group(4)}", new)
        if new != text:
            path.write_text(new)
            changed.append(path)
    return changed


def student_copies(out_dir: Path | None = None) -> list[Path]:
    """Write each notebook without its solution cells (tag `solution`) into notebooks/_student/; return the paths."""
    import nbformat

    out_dir = out_dir or data.repo_root() / "notebooks" / "_student"
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted((data.repo_root() / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        nb.cells = [c for c in nb.cells if "solution" not in c.get("metadata", {}).get("tags", [])]
        for cell in nb.cells:
            if cell.cell_type == "markdown":  # the line announcing the solutions goes with them
                cell.source = _SOLUTIONS_LINE.sub("", cell.source)
        nbformat.write(nb, out_dir / path.name)
        written.append(out_dir / path.name)
    return written


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "student":
        for written_path in student_copies():
            print("wrote", written_path)
    elif len(sys.argv) in (2, 3):
        for changed_path in stamp(*sys.argv[1:]):
            print("stamped", changed_path)
    else:
        sys.exit("usage: python -m tools.stamp OWNER/REPO [REF]  |  python -m tools.stamp student")
