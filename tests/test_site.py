"""The course as a website: built from the committed notebooks (no execution) and checked.

The real site is built once per session (fixture `course_site`, tests/conftest.py) into a scratch folder. Each
check of tests/site_checks.py must find nothing on it, and must find its planted problem in a small copy of the
course whose notebooks and website code carry one planted problem per check.
"""
import json
import shutil

import pytest

import site_checks
from site_checks import course_pages

CHECKS = ["unexpected_warnings", "missing_pages", "broken_links", "tracebacks_and_widget_reprs", "open_solutions",
          "raw_math", "run_it_blocks", "reading_order"]


@pytest.mark.parametrize("check", CHECKS)
def test_the_course_site_passes(course_site, check):
    problems = getattr(site_checks, check)(course_site)
    assert not problems, f"{check}: {len(problems)} problems:\n" + "\n".join(problems[:20])


def test_build_time_and_page_count_are_reported(course_site):
    """The build runs no notebook; its time is printed (measured in the README's test command), not asserted."""
    pages = [p for p in course_site.pages() if p.name not in ("genindex.html", "search.html")]
    print(f"\nwebsite: {len(pages)} pages built in {course_site.seconds:.1f} s")
    assert len(site_checks.notebooks(site_checks.ROOT)) >= 26
    assert len(pages) >= len(site_checks.notebooks(site_checks.ROOT)) + 2      # + README.html and index.html


def test_full_text_search_has_every_page(course_site):
    index = (course_site.html / "searchindex.js").read_text(encoding="utf-8")
    assert (course_site.html / "search.html").is_file()
    for doc in site_checks.notebooks(site_checks.ROOT):
        assert f'"{doc}"' in index, f"{doc} is not in the search index"
    for word in ("im2col", "jacobian", "dropout"):       # indexed words are stemmed and lower case
        assert f'"{word}"' in index, f"the search index has no {word!r}"


def test_math_comes_from_the_site_itself(course_site):
    """MathJax is vendored (sphinx-mathjax-offline): pages load it from _static, and it is there."""
    page = (course_site.html / "notebooks" / "01_dense.html").read_text(encoding="utf-8")
    assert 'src="../_static/mathjax/tex-chtml.js"' in page
    assert (course_site.html / "_static" / "mathjax" / "tex-chtml.js").stat().st_size > 100_000
    assert "cdn" not in page.lower().split("<body")[0], "a page head loads something from a CDN"


# --- the page transformations, on small made-up notebooks --------------------------------------------------------
def _cell(kind, source, tags=(), outputs=None):
    cell = {"cell_type": kind, "metadata": {"tags": list(tags)}, "source": source}
    if kind == "code":
        cell["outputs"] = outputs or []
    return cell


def test_course_order_is_discovered_from_the_folder(tmp_path):
    for name in ("00_conventions", "03a_graph", "15_tuning", "03_ce", "00_begin_here", "14_perf", "notes"):
        (tmp_path / "notebooks" / "experiments").mkdir(parents=True, exist_ok=True)
        (tmp_path / "notebooks" / f"{name}.ipynb").write_text("{}")
    for name in ("10_new", "09_zoo", "01_clip"):
        (tmp_path / "notebooks" / "experiments" / f"{name}.ipynb").write_text("{}")
    chapters, experiments = course_pages.course_docnames(tmp_path)
    assert [c.split("/")[-1] for c in chapters] == ["00_begin_here", "00_conventions", "03_ce", "03a_graph",
                                                    "14_perf", "15_tuning"]
    assert [e.split("/")[-1] for e in experiments] == ["01_clip", "09_zoo", "10_new"]


def test_each_solution_becomes_one_closed_drop_down():
    cells = [_cell("markdown", "## Exercises"), _cell("markdown", "**Solution 1.** text", ["solution"]),
             _cell("code", "x = 1", ["solution"]), _cell("code", "# Solution 2: more", ["solution"]),
             _cell("markdown", "---")]
    out = [c["source"] for c in course_pages.wrap_solutions(cells)]
    assert out == ["## Exercises", '<details class="solution">\n<summary>Solution 1</summary>',
                   "**Solution 1.** text", "x = 1", "</details>",
                   '<details class="solution">\n<summary>Solution 2</summary>', "# Solution 2: more", "</details>",
                   "---"]


def test_a_notebooks_own_details_are_unwrapped_into_one_drop_down():
    """Solutions written as closed <details> (text) and hidden_output() (an output in a closed <details>)."""
    output = {"output_type": "display_data", "metadata": {}, "data": {
        "text/html": "<details><summary>Output of the solution (click to open)</summary><pre>42</pre></details>",
        "text/plain": "42"}}
    cells = [_cell("markdown", "<details><summary><b>Solution 1</b> (click to open)</summary>\n\nThe answer.\n\n"
                               "</details>", ["solution"]),
             _cell("code", "# Solution 1.\nwith hidden_output():\n    print(42)", ["solution"], [output]),
             _cell("markdown", "<details><summary><b>Solution 2</b> (click to open)</summary>\n\nMore.\n</details>",
                   ["solution"])]
    out = course_pages.wrap_solutions(cells)
    assert [c["source"].strip() for c in out] == [
        '<details class="solution">\n<summary>Solution 1</summary>', "The answer.",
        "# Solution 1.\nwith hidden_output():\n    print(42)", "</details>",
        '<details class="solution">\n<summary>Solution 2</summary>', "More.", "</details>"]
    assert out[2]["outputs"][0]["data"]["text/html"] == "<pre>42</pre>"


def _widget_output(text, model_id="m1"):
    return {"output_type": "display_data", "metadata": {},
            "data": {course_pages.WIDGET_VIEW: {"model_id": model_id}, "text/plain": text}}


def test_widgets_become_an_image_a_progress_line_or_a_note():
    panel_state = {"m1": {"model_name": "VBoxModel", "state": {"children": ["IPY_MODEL_b"]}},
                   "b": {"model_name": "ButtonModel", "state": {"description": "Train"}}}
    panel = course_pages.replace_widget(_widget_output("VBox(children=(...))"), panel_state, b"PNG")
    assert panel[0]["data"]["text/markdown"] == course_pages.PANEL_LINE and panel[1]["data"]["image/png"] == "UE5H"
    bar_state = {"m1": {"model_name": "HBoxModel", "state": {"children": ["IPY_MODEL_h", "IPY_MODEL_p"]}},
                 "h": {"model_name": "HTMLModel", "state": {"value": "steps\u20071-5:\u2007100%"}},
                 "p": {"model_name": "FloatProgressModel", "state": {"value": 5, "max": 5}}}
    bar = course_pages.replace_widget(_widget_output("steps 1-5: 0%"), bar_state, b"")
    assert bar[0]["text"] == "steps 1-5: 100%|██████████|\n"
    other = course_pages.replace_widget(_widget_output("IntSlider(value=3)"), {}, b"")
    assert other[0]["data"]["text/markdown"] == course_pages.OTHER_WIDGET_LINE


# --- every check can fail: a copy of part of the course with one planted problem per check ----------------------
PLANTED_NOTEBOOKS = ["notebooks/00_conventions.ipynb", "notebooks/01_dense.ipynb",
                     "notebooks/experiments/01_clip_norm.ipynb"]


def _plant_cells(path, *cells):
    nb = json.loads(path.read_text())
    nb["cells"] += [{**c, "id": f"planted-{i}"} for i, c in enumerate(cells)]
    path.write_text(json.dumps(nb))


@pytest.fixture(scope="module")
def planted_site(tmp_path_factory):
    src = tmp_path_factory.mktemp("planted_src")
    for rel in ["README.md", *PLANTED_NOTEBOOKS]:
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(site_checks.ROOT / rel, src / rel)
    for folder in ("website", "media"):
        shutil.copytree(site_checks.ROOT / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__"))
    _plant_cells(src / "notebooks/01_dense.ipynb",
                 _cell("markdown", "[a broken link](no_such_chapter.ipynb) <a href=\"nowhere.html\">x</a> "
                                   "<img src=\"../media/missing.png\"> <script src=\"https://cdn.example.org/x.js\">"
                                   "</script>"),
                 _cell("markdown", "A formula left raw: $$x^2"))
    _plant_cells(src / "notebooks/00_conventions.ipynb",
                 _cell("code", "1/0", outputs=[{"output_type": "error", "ename": "ZeroDivisionError",
                                                "evalue": "division by zero",
                                                "traceback": ["\x1b[0;31mZeroDivisionError\x1b[0m Traceback "
                                                              "(most recent call last)", "----> 1 1/0"]}]),
                 _cell("code", "panel", outputs=[{"output_type": "display_data", "metadata": {}, "data": {
                     "text/plain": "VBox(children=(IntSlider(value=3),))"}}]))
    pages = src / "website" / "course_pages.py"
    pages.write_text(pages.read_text() + "\n\n# --- planted bugs ---\n"
                     "def wrap_solutions(cells):\n    return cells\n\n\n"
                     "def add_run_it_block(cells, notebook_name, commands):\n    pass\n\n\n"
                     "_course_docnames = course_docnames\n\n\n"
                     "def course_docnames(srcdir):\n    chapters, experiments = _course_docnames(srcdir)\n"
                     "    return chapters[::-1], experiments\n")
    conf = src / "website" / "conf.py"
    conf.write_text(conf.read_text().replace('"notebooks/experiments/[0-9]*.ipynb", ', ""))
    return site_checks.build(src, tmp_path_factory.mktemp("planted_site"))


PLANTED = {
    "unexpected_warnings": ["no_such_chapter"],
    "missing_pages": ["no page for notebooks/experiments/01_clip_norm"],
    "broken_links": ["nowhere.html points at nothing", "missing.png points at nothing",
                     "loads https://cdn.example.org/x.js from the network"],
    "tracebacks_and_widget_reprs": ["a traceback in an output", "a widget's text repr in an output: 'VBox(children="],
    "open_solutions": ["notebooks/00_conventions: 6 solution cells but no closed solution drop-down",
                       "notebooks/00_conventions: a solution code cell outside a closed drop-down",
                       "notebooks/00_conventions: the solution text 'The forward difference has a first-order' is not "
                       "inside"],
    "raw_math": ["raw TeX", "$$x^2"],
    "run_it_blocks": ["notebooks/01_dense: no working 'Download this notebook' link",
                      "notebooks/01_dense: the command '.venv/bin/python -m pytest' is not on the page"],
    "reading_order": ["README: next leads to notebooks/01_dense.html, not notebooks/00_conventions"],
}


@pytest.mark.parametrize("check", CHECKS)
def test_each_check_finds_its_planted_problem(planted_site, check):
    found = "\n".join(getattr(site_checks, check)(planted_site))
    for expected in PLANTED[check]:
        assert expected in found, f"{check} missed {expected!r}; it found:\n{found[:2000]}"
