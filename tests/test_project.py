"""Project promises: pins agree, notebooks are paired and clean, badges agree, README commands, notebook anatomy."""

import importlib
import json
import re
import shutil
from pathlib import Path

import jupytext
import pytest

from helpers import data
from tools import stamp

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _pins(lines):
    return {m.group(1).lower(): m.group(2) for line in lines if (m := re.match(r"^\s*-?\s*([A-Za-z0-9_.\-]+)==([^\s#]+)", line))}


def test_environment_yml_and_requirements_agree():
    req = _pins((ROOT / "requirements.txt").read_text().splitlines())
    env = _pins((ROOT / "environment.yml").read_text().splitlines())
    env.pop("python", None)
    assert env.pop("torch") == "2.13.0"
    assert req and req == env
    makefile = (ROOT / "Makefile").read_text()
    assert "torch==2.13.0" in makefile and "requirements.txt" in makefile


def test_there_are_notebooks():
    assert NOTEBOOKS and NOTEBOOKS[0].name.startswith("01_")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_jupytext_pair_in_sync(path):
    paired = path.with_suffix(".py")
    assert paired.is_file(), f"{path.name} has no .py pair"
    a = jupytext.read(path)
    b = jupytext.read(paired)
    cells_a = [(c.cell_type, c.source.strip()) for c in a.cells]
    cells_b = [(c.cell_type, c.source.strip()) for c in b.cells]
    assert cells_a == cells_b, f"{path.name} and {paired.name} differ: run `make sync`"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebook_data_has_no_py3dmol_or_widget_output(path):
    nb = json.loads(path.read_text())
    assert "widgets" not in nb.get("metadata", {})
    for cell in nb["cells"]:
        for output in cell.get("outputs", []):
            mimes = set(output.get("data", {}))
            assert not any("3dmol" in m or "widget" in m for m in mimes), f"{path.name} carries {mimes}"
            assert "3Dmol" not in json.dumps(output), f"{path.name} carries a py3Dmol view"


# Patterns are matched against the notebook's py:percent twin, where markdown lines start with "# ".
ANATOMY = {
    "title": r"^# # \d\d · ",
    "what you will learn": r"\*\*What you will learn\*\*",
    "run time (labelled estimate)": r"Estimated run time on a free Colab (T4|CPU runtime).*estimate",
    "Colab badge": r"colab-badge\.svg",
    "setup cell": r'IS_COLAB = "google.colab" in sys.modules',
    "numbered sections": r"^# ## 1 · ",
    "recap": r"^# ## Recap",
    "exercises": r"^# ## Exercises",
    "solutions": r'tags=\["solution"\]',
    "next": r"^# ## Next",
    "previous link": r"^# ← Previous: \[",
}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_anatomy(path):
    text = path.with_suffix(".py").read_text()
    missing = [part for part, pattern in ANATOMY.items() if not re.search(pattern, text, re.M | re.S)]
    assert not missing, f"{path.name} lacks: {missing}"
    positions = [re.search(ANATOMY[p], text, re.M | re.S).start() for p in ["title", "setup cell", "numbered sections", "recap", "exercises", "next"]]
    assert positions == sorted(positions), "anatomy parts are out of order"


@pytest.mark.parametrize("path", stamp.stamped_files(), ids=lambda p: p.name)
def test_badges_figures_and_setup_cells_agree_with_the_one_repo_url(path):
    refs = stamp.repo_references(path.read_text())
    assert refs, f"{path.name} has no badge, figure URL or setup cell"
    assert refs == {(data.REPO, data.REF)}, f"{path.name} points at {refs}"


def test_every_badge_opens_its_own_notebook():
    for path in NOTEBOOKS:
        text = path.with_suffix(".py").read_text()
        assert f"/blob/{data.REF}/notebooks/{path.name})" in text


def test_stamp_rewrites_every_reference_and_only_the_constants_in_data(tmp_path):
    copies = []
    for path in stamp.stamped_files():
        copy = tmp_path / path.name
        shutil.copy(path, copy)
        copies.append(copy)
    module = tmp_path / "data.py"
    shutil.copy(data.__file__, module)
    changed = stamp.stamp("someone/esmfold-course", "v1.0", files=copies + [module])
    assert set(changed) == set(copies + [module])
    for copy in copies:
        assert stamp.repo_references(copy.read_text()) == {("someone/esmfold-course", "v1.0")}
    before = open(data.__file__).read().splitlines()
    after = module.read_text().splitlines()
    differing = [(a, b) for a, b in zip(before, after) if a != b]
    assert differing == [(f'REPO = "{data.REPO}"', 'REPO = "someone/esmfold-course"'),
                         (f'REF = "{data.REF}"', 'REF = "v1.0"')]


def test_stamp_to_a_local_address_points_setup_cells_and_data_there_and_leaves_badges_alone(tmp_path):
    copy, module = tmp_path / NOTEBOOKS[0].name, tmp_path / "data.py"
    shutil.copy(NOTEBOOKS[0], copy)
    shutil.copy(data.__file__, module)
    url = (tmp_path / "clone").as_uri()
    stamp.stamp(url, "snapshot", files=[copy, module])
    text = copy.read_text()
    assert f'REPO = \\"{url}\\"' in text and 'REF = \\"snapshot\\"' in text
    assert stamp.repo_references(text) == {(data.REPO, data.REF)}  # badges and figure links still name GitHub
    assert f'REPO = "{url}"' in module.read_text()


def test_readme_states_two_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- commands -->\s*```(?:bash|sh)?\n(.*?)```", readme, re.S)
    assert block, "README lacks the commands block"
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.split("#")[0].strip()]
    assert commands == ["make tutorial", "make test"]
    ci = [line.strip() for line in (ROOT / ".ci/run").read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert ci[-1] == "make test-colab" and ci.index("make test") < len(ci) - 1
    assert not any(line.startswith(("pip", "pytest", "python")) for line in ci)


def test_readme_series_table_lists_every_notebook():
    readme = (ROOT / "README.md").read_text()
    for path in NOTEBOOKS:
        assert f"notebooks/{path.name}" in readme


def test_committed_figures_data_each_has_its_csv_and_states_provenance():
    import pandas as pd

    for png in sorted((ROOT / "figures").glob("*.png")):
        assert png.with_suffix(".csv").is_file(), f"{png.name} has no CSV next to it"
    for csv in sorted((ROOT / "figures").glob("*.csv")):
        table = pd.read_csv(csv)
        if "provenance" in table:  # one line naming how it was made: measured (where, versions, when), predicted, cited
            assert table["provenance"].notna().all() and (table["provenance"].str.len() > 40).all(), csv.name
            assert re.search(r"measured|loaded|predicted|computed|cited|published|TM-align", table["provenance"].iloc[0],
                             re.I), csv.name
        else:  # or one column per fact, on every row
            facts = {"torch", "transformers", "date"} | ({"device", "weights"} if "device" in table else {"method"})
            assert facts <= set(table.columns), f"{csv.name} lacks {facts - set(table.columns)}"
            assert table[sorted(facts)].notna().all().all(), csv.name


def test_student_copies_drop_solutions_and_keep_everything_else(tmp_path):
    import nbformat

    written = stamp.student_copies(tmp_path)
    assert [p.name for p in written] == [p.name for p in NOTEBOOKS]
    for original, copy in zip(NOTEBOOKS, written):
        full, student = nbformat.read(original, 4), nbformat.read(copy, 4)
        solutions = [c for c in full.cells if "solution" in c.metadata.get("tags", [])]
        assert solutions and len(student.cells) == len(full.cells) - len(solutions)
        assert not any("solution" in c.metadata.get("tags", []) for c in student.cells)
        announced = [c for c in full.cells if "Solutions follow" in c.source]
        assert announced and not any("Solutions follow" in c.source for c in student.cells)  # the line goes too
        assert sum(len(c.source) for c in student.cells if c.cell_type == "markdown") > 0.95 * sum(
            len(c.source) for c in full.cells if c.cell_type == "markdown" and "solution" not in c.metadata.get("tags", []))


def test_instructor_guide_covers_every_notebook_and_the_day_before_command():
    guide = (ROOT / "notebooks" / "INSTRUCTOR_GUIDE.md").read_text()
    for path in NOTEBOOKS:
        assert f"**{path.name[:2]}**" in guide or f"| {path.name[:2]} ·" in guide, path.name
    assert "make day-before" in guide and "tools.stamp student" in guide
    makefile = (ROOT / "Makefile").read_text()
    assert "\nday-before:" in makefile and "ESMFOLD_MEMORY_CAP_GIB=T4" in makefile


def test_the_guide_states_the_day_before_minutes_the_runner_estimates():
    from tools import runner

    guide = (ROOT / "notebooks" / "INSTRUCTOR_GUIDE.md").read_text()
    workshop = re.search(r"^day-before: NOTEBOOKS \?= (.+)$", (ROOT / "Makefile").read_text(), re.M).group(1).split()
    for marker, names in (("minutes", workshop), ("all-minutes", ["all"])):
        stated = int(re.search(rf"<!-- day-before:{marker} -->(\d+)<!-- /day-before:{marker} -->", guide).group(1))
        assert stated == round(runner.estimated_minutes(runner.resolve(names))), marker


def test_the_runner_reports_each_notebook_and_fails_when_one_fails(monkeypatch, capsys, tmp_path):
    """Two one-cell notebooks (nbmake runs the real ones): one passes, one raises; the runner says which and exits 1."""
    import nbformat

    from tools import runner

    for name, code in [("01_fine.ipynb", "print('fine')"), ("02_broken.ipynb", "raise ValueError('boom')")]:
        nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)]), tmp_path / name)
    monkeypatch.setenv("ESMFOLD_WEIGHTS", "tiny")
    assert runner.main([str(tmp_path / "01_fine.ipynb"), str(tmp_path / "02_broken.ipynb")]) == 1
    out = capsys.readouterr().out
    assert "passed  01_fine.ipynb" in out and "FAILED  02_broken.ipynb" in out and "ValueError" in out
    assert "1 passed, 1 failed" in out


def test_runner_without_gpu_runs_only_the_cpu_notebook_and_says_what_it_skipped(monkeypatch, capsys):
    """No GPU, real weights: only notebook 08 (written for the CPU) runs; the others are named as skipped, with how to
    run them. (run_notebook is replaced: the real weights are not downloaded here.)"""
    from tools import runner

    ran = []
    monkeypatch.delenv("ESMFOLD_WEIGHTS", raising=False)
    monkeypatch.setattr(runner, "run_notebook", lambda path, out_dir: ran.append(path.name) or
                        {"notebook": path.name, "status": "passed", "error": "", "seconds": 0.0})
    assert runner.main([]) == 0
    out = capsys.readouterr().out
    assert ran == ["08_cpu_only.ipynb"]
    assert "skipped: 01_fp32_baseline.ipynb" in out and "ESMFOLD_WEIGHTS=tiny make tutorial" in out
    assert runner.main([str(NOTEBOOKS[0])]) == 2  # nothing left to run on a CPU


def test_every_shared_file_the_series_reads_has_a_working_kind_of_public_source():
    """Users have no ../shared: each file the code reads from it must map to its public home — RCSB (PDB, mmCIF and
    BinaryCIF files, FASTA by entry), UniProt, the Hugging Face hub, or a pinned GitHub commit — by the URL pattern of
    that source; the compiled targets file has none and says where its sequences come from instead."""
    shared = ROOT.parent / "shared"
    patterns = [r"^https://files\.rcsb\.org/download/\w{4}\.(pdb|cif)$", r"^https://models\.rcsb\.org/\w{4}\.bcif$",
                r"^https://www\.rcsb\.org/fasta/entry/\w{4}$", r"^https://rest\.uniprot\.org/uniprotkb/\w+\.fasta$",
                r"^https://huggingface\.co/facebook/esmfold_v1/raw/main/config\.json$",
                r"^https://raw\.githubusercontent\.com/[\w.-]+/[\w.-]+/[0-9a-f]{40}/[\w./-]+$"]
    files = list(data.PUBLIC_SOURCES)
    if shared.is_dir():  # every structure file of the shared folder, as users would fetch it
        files += [f"structures/{p.name}" for p in sorted((shared / "structures").iterdir())
                  if p.suffix in (".pdb", ".cif", ".bcif")]
    for relpath in files:
        url = data.public_url(relpath)
        assert any(re.match(p, url) for p in patterns), f"{relpath} → {url}"
        if relpath.startswith("structures/"):
            assert Path(relpath).stem.upper() in url.upper(), url
    with pytest.raises(KeyError, match="local_targets"):
        data.public_url("structures/targets_seqres.fasta")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebook_data_outputs_are_only_those_that_need_no_weights(path):
    """A GitHub reader sees results without running: the cells tagged show-output carry their outputs (no stand-in
    text, no py3Dmol view or widget, no stderr); every other cell carries none (`python -m tools.outputs`)."""
    import nbformat

    from tools import outputs

    nb = nbformat.read(path, 4)
    assert outputs.check(nb) == []
    tagged = [c for c in nb.cells if outputs.TAG in c.get("metadata", {}).get("tags", [])]
    assert tagged, "no result shown to a reader who does not run it"


def test_kept_outputs_match_a_fresh_run(tmp_path, monkeypatch):
    """Notebook 01, executed now with the tiny stand-in, prints in its show-output cells exactly what is committed.
    This is `make test`'s run of notebook 01 (nbmake skips it): an error in any cell fails here, and its rehearsal
    logs the loads and folds that the plan test reads."""
    import nbformat
    from nbclient import NotebookClient

    from tools import outputs

    monkeypatch.setenv("ESMFOLD_WEIGHTS", "tiny")
    path = NOTEBOOKS[0]
    committed = nbformat.read(path, 4)
    fresh = nbformat.read(path, 4)
    NotebookClient(fresh, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    pairs = [(a, b) for a, b in zip(committed.cells, fresh.cells) if outputs.TAG in a.get("metadata", {}).get("tags", [])]
    assert pairs
    for a, b in pairs:
        assert [outputs.output_text(o) for o in a.outputs] == [outputs.output_text(o) for o in b.outputs], a.source[:60]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_the_colab_setup_cell_explains_itself_before_the_repository_is_stamped(path, monkeypatch):
    """In Colab, with the helpers not installed and the repository still OWNER, the setup cell stops with one sentence
    saying what to do — no pip call, no traceback from a 404; and it names exactly its NEEDS to install."""
    import importlib.metadata
    import subprocess
    import sys
    import types

    nb = jupytext.read(path.with_suffix(".py"))
    setup = next(c.source for c in nb.cells if c.cell_type == "code" and "IS_COLAB" in c.source)
    code = setup.split("\nfrom helpers import")[0]
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setattr(importlib.metadata, "version", lambda name: (_ for _ in ()).throw(
        importlib.metadata.PackageNotFoundError(name)))
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("pip must not run before the repo is stamped"))
    with pytest.raises(SystemExit) as stop:
        exec(compile(code, path.name, "exec"), {})
    assert "open the notebook from the Colab badge" in str(stop.value) and str(stop.value).count(".") <= 2


def test_the_gpu_rehearsal_parts_cover_the_series_in_order_within_the_limit():
    from tools import plan, runner

    split = runner.parts()
    assert [n for part in split for n in part] == [path.stem for path in plan.series()]
    totals = plan.totals(plan.load_plan()).set_index("notebook")
    for part in split:
        seconds = runner.PART_OVERHEAD_SECONDS + sum(runner.h100_seconds(totals.loc[n].to_dict() | {"notebook": n})
                                                      for n in part)
        assert len(part) == 1 or seconds <= runner.PART_SECONDS, (part, seconds)
    smaller = runner.parts(limit=runner.PART_OVERHEAD_SECONDS + 1)
    assert all(len(part) == 1 for part in smaller)  # every notebook alone when nothing else fits


def test_the_runner_writes_a_row_per_notebook_with_its_provenance(monkeypatch, tmp_path):
    import nbformat

    from tools import runner

    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('fine')")]), tmp_path / "01_x.ipynb")
    monkeypatch.setenv("ESMFOLD_WEIGHTS", "tiny")
    assert runner.main([str(tmp_path / "01_x.ipynb"), "--csv", str(tmp_path / "rows.csv")]) == 0
    import pandas as pd

    rows = pd.read_csv(tmp_path / "rows.csv")
    assert rows["notebook"].tolist() == ["01_x.ipynb"] and rows["status"].tolist() == ["passed"]
    assert {"device", "torch", "transformers", "weights", "date", "nvidia-smi peak (GiB)"} <= set(rows.columns)



TOOLS = sorted(p.stem for p in (ROOT / "tools").glob("*.py") if p.stem != "__init__")


@pytest.mark.parametrize("name", TOOLS)
def test_every_maintainer_tool_imports_and_says_how_it_is_run(name):
    """Each tools/ module imports (most run only by hand, so nothing else would notice an import error), and its
    docstring gives the command that runs it: `python -m tools.<name>`, or a make target that the Makefile points at
    the module."""
    module = importlib.import_module(f"tools.{name}")
    doc = module.__doc__ or ""
    targets = re.findall(r"make ([\w-]+)", doc)
    makefile = (ROOT / "Makefile").read_text()
    assert f"python -m tools.{name}" in doc or (targets and f"tools.{name}" in makefile), (
        f"tools/{name}.py: its docstring should say how it is run")
