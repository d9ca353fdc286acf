"""The course used as a learner uses it: JupyterLab in Chromium, on a scratch copy of the repository.

JupyterLab starts with the README's first command (plus --no-browser, a free port on 127.0.0.1, a random token,
and --allow-root as root); Debian's `chromium` is driven by the Python `playwright` package through
`executable_path` (playwright's own browser download is not used). Checked, in order:

1. chapter 00 renders its formulas: MathJax typesets them, no MathJax error, no raw TeX left in the text;
2. open + save with no edit changes no file (chapter 00, chapter 01, every experiment notebook), byte for byte;
3. editing a library cell of chapter 01 and saving updates its module diydnn/_01_dense.py; reverting the edit
   and saving restores both files byte for byte;
4. every experiment notebook runs top to bottom (Run All) with no error output, timed against the 30 s target
   (its reference runs are read from the committed run records: nothing recorded is trained), and its panel
   renders as widgets; the untouched panel holds exactly the notebook's settings; moving the learning-rate
   slider and pressing Train (several times per notebook, >= 20 in all) trains a new run with the moved value,
   redraws the curves, ends with the test accuracy set against the reference runs, and leaves every stored run
   and every run record untouched, byte for byte;
5. in one panel, a full Train is stopped: another cell runs while it trains, Stop ends it within 2 s, and its
   folder is kept, complete and marked "stopped by the learner";
6. no browser console error and no HTTP error, anywhere.

The course website (test_course_website_in_the_browser; `-k site` runs it alone, in well under a minute) is the
site tests/test_site.py builds, served from 127.0.0.1 with every other address blocked: the home page and three
chapters typeset every formula (MathJax from the site itself) and leave no raw TeX, every figure loads, a solution
drop-down opens, next/previous lead through the course, search finds a chapter, and the browser logs no error.

Runs in FULL mode (DIYDNN_QUICK=0: the learner's mode) on a scratch copy with MNIST (DIYDNN_DATA_DIR) and the
committed run records; the Trains are small (1 epoch on 5,000 images). Prints the Run All time of every notebook.
Skips, with the reason, only where no browser can be had; under CI (CI=true) a missing browser or playwright is a
failure.
"""
import difflib
import functools
import hashlib
import http.server
import json
import os
import re
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import learner_lab  # noqa: E402

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
EXPERIMENTS = sorted(p.relative_to(learner_lab.ROOT).as_posix()
                     for p in (learner_lab.ROOT / "notebooks" / "experiments").glob("[0-9][0-9]_*.ipynb"))
TRAINS_PER_NOTEBOOK = 3
# a Train of a CNN costs several times an MLP's (CI's 15 minutes): two there, one per direction of the slider
TRAINS_PER_CNN_NOTEBOOK = 2
CNN_NOTEBOOKS = {"notebooks/experiments/08_cnn.ipynb", "notebooks/experiments/11_resnet.ipynb"}
ARTIFACTS = learner_lab.ROOT / ".test-artifacts" / "browser"


def _no_browser(reason):
    if IN_CI:
        pytest.fail(f"browser test cannot run in CI: {reason} (.ci/run installs Debian's chromium)")
    pytest.skip(f"no browser for the learner test: {reason}")


def _chromium_and_playwright():
    """The Chromium executable and playwright's sync_playwright; else a skip (a failure under CI) that says why."""
    chromium = learner_lab.find_chromium()
    if chromium is None:
        _no_browser("no chromium executable (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _no_browser("the Python package playwright is not installed (pip install -r requirements.txt)")
    return chromium, sync_playwright


def _watch(page):
    """A list that collects the page's console errors, page errors, HTTP errors and failed requests."""
    problems = []
    page.on("console", lambda m: m.type == "error" and problems.append(f"console error: {m.text}"))
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("response", lambda r: r.status >= 400 and problems.append(f"HTTP {r.status}: {r.url}"))
    # ERR_ABORTED: a request still in flight when the test navigates to the next page (not an error)
    page.on("requestfailed", lambda r: "ERR_ABORTED" not in (r.failure or "")
            and problems.append(f"request failed: {r.url} ({r.failure})"))
    return problems


@pytest.fixture(scope="module")
def browser():
    """One Chromium for the module's tests (playwright's sync API allows one running instance at a time)."""
    chromium, sync_playwright = _chromium_and_playwright()
    with sync_playwright() as p:
        chrome = p.chromium.launch(executable_path=chromium, args=learner_lab.CHROMIUM_ARGS)
        try:
            yield chrome
        finally:
            chrome.close()


@pytest.fixture(scope="module")
def learner(browser, tmp_path_factory):
    """A running JupyterLab on a scratch copy, and a Chromium page on it; everything stopped at the end."""
    work = tmp_path_factory.mktemp("learner")
    repo = learner_lab.scratch_copy(work / "repo")
    env = {"DIYDNN_QUICK": "0", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}     # full mode, as a learner
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with learner_lab.running_lab(repo, work / "state", env) as lab:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.set_default_timeout(60_000)
            problems = _watch(page)
            page.on("dialog", lambda d: d.accept())
            yield Learner(page, lab, repo, problems)
        finally:
            page.close()
    (ARTIFACTS / "jupyterlab.log").write_text(lab.log_text())


class Learner:
    def __init__(self, page, lab, repo, problems):
        self.page, self.lab, self.repo, self.problems = page, lab, repo, problems
        self.trains, self.run_all_seconds = 0, {}

    # -- opening, running, saving ---------------------------------------------------
    def open(self, rel):
        """Open a notebook in a fresh workspace and wait for its kernel to be idle."""
        page = self.page
        for session in self.lab.api("GET", "/api/sessions"):      # one kernel at a time: end the previous one
            self.lab.api("DELETE", f"/api/sessions/{session['id']}", timeout=30)
        page.goto(f"{self.lab.url}/lab/tree/{rel}?reset&token={self.lab.token}")
        page.wait_for_selector(".jp-Notebook .jp-Cell")
        deadline = time.time() + 60
        while time.time() < deadline:   # the first open of a session may ask which kernel: take the proposed one
            if page.locator(".jp-Dialog .jp-mod-accept").count():
                page.locator(".jp-Dialog .jp-mod-accept").click()
            if page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").count():
                break
            time.sleep(0.2)
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']")
        page.locator(".jp-Notebook").first.click(position={"x": 5, "y": 5})

    def menu(self, top, item):
        self.page.get_by_role("menuitem", name=top, exact=True).click()
        self.page.get_by_role("menuitem", name=item, exact=True).click()

    def save(self, *paths):
        """Save the open notebook (File > Save) and wait until jupytext has written every given file."""
        before = {p: p.stat().st_mtime_ns for p in paths}
        button = self.page.locator(".jp-NotebookPanel-toolbar [data-command='docmanager:save']")
        if button.count():
            button.first.click()            # the toolbar's save button
        else:
            self.page.keyboard.press("Control+s")
        deadline = time.time() + 30
        while any(p.stat().st_mtime_ns == before[p] for p in paths):
            assert time.time() < deadline, f"saving did not write {[str(p) for p in paths]}"
            time.sleep(0.1)
        time.sleep(0.5)

    def run_all(self, rel, timeout=float(os.environ.get('DIYDNN_RUN_ALL_TIMEOUT', 600))):
        """Clear outputs, Run All, and wait until every code cell has run; the notebook's code cell count."""
        cells = [c for c in json.loads((self.repo / rel).read_text())["cells"] if c["cell_type"] == "code"]
        n_code = len(cells)     # a collapsed (hidden) input shows no prompt: count the shown ones
        n_shown = sum(not c["metadata"].get("jupyter", {}).get("source_hidden") for c in cells)
        self.menu("Edit", "Clear Outputs of All Cells")
        self.menu("Run", "Run All Cells")
        self.page.wait_for_function(   # (a failure leaves a screenshot in .test-artifacts/browser/)
            """n => { const p = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')]
                                .filter(e => e.offsetParent !== null);
                      const busy = p.some(e => e.textContent.includes('*'));
                      const failed = document.querySelector('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]');
                      const ran = p.filter(e => /\\[\\d+\\]/.test(e.textContent)).length;
                      return !busy && (ran >= n || failed); }""",
            arg=n_shown, timeout=timeout * 1000)
        self.page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']")
        return n_code

    def error_outputs(self):
        return self.page.eval_on_selector_all(
            ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']", "els => els.map(e => e.innerText)")

    def take_problems(self):
        found, self.problems[:] = list(self.problems), []
        return found


def digest(folder):
    """{relative path: sha256} of every file below folder."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def paired(repo, rel):
    nb = repo / rel
    if "experiments" in nb.parts:
        return nb, nb.with_suffix(".py")
    return nb, repo / "diydnn" / f"_{nb.stem}.py"


# ---------------------------------------------------------------------------------------------------------------
def test_chapter_00_renders_its_formulas(learner):
    learner.open("notebooks/00_conventions.ipynb")
    page = learner.page
    cells = json.loads((learner.repo / "notebooks/00_conventions.ipynb").read_text())["cells"]
    # collapsed cells (the worked solutions) are not rendered until opened: count the formulas of the visible ones
    source = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown"
                       and not c["metadata"].get("jupyter", {}).get("source_hidden"))
    n_math = len(re.findall(r"\$\$.+?\$\$|\$[^$\n]+?\$", source, flags=re.S))
    assert n_math >= 10, "chapter 00 should have formulas to check"
    page.wait_for_function("n => document.querySelectorAll('.jp-RenderedMarkdown mjx-container').length >= n",
                           arg=n_math, timeout=60_000)
    assert page.locator("mjx-merror, .MathJax_Error, [data-mjx-error]").count() == 0, "MathJax reported errors"
    leftover = page.eval_on_selector_all(".jp-RenderedMarkdown", """els => els.map(e => {
        const c = e.cloneNode(true); c.querySelectorAll('mjx-container, code, pre').forEach(x => x.remove());
        return c.textContent; }).join('\\n')""")
    raw = re.findall(r".{0,30}(?:\$|\\[A-Za-z]+).{0,30}", leftover)
    assert not raw, f"raw TeX left in the rendered chapter: {raw[:5]}"
    assert not learner.take_problems()


def solution_snippets(path):
    """A line of every solution's answer as the stored notebook has it: (source lines, output lines)."""
    sources, outputs = [], []
    for cell in json.loads(path.read_text())["cells"]:
        if "solution" not in cell["metadata"].get("tags", []):
            continue
        lines = [ln.strip() for ln in "".join(cell["source"]).splitlines()]
        body = [ln for ln in lines[1:] if len(ln) > 25 and not ln.startswith(("<details", "</details", "from diydnn"))]
        sources += body[:1]
        for out in cell.get("outputs", []):
            text = "".join(out.get("data", {}).get("text/plain", [])).splitlines()[1:]
            outputs += [ln.strip() for ln in text if len(ln.strip()) > 15][:1]
    return sources, outputs


def test_solutions_stay_hidden_until_opened_even_after_run_all(learner):
    rel = "notebooks/00_conventions.ipynb"
    page = learner.page
    sources, outputs = solution_snippets(learner.repo / rel)
    assert len(sources) >= 6 and len(outputs) >= 3, (sources, outputs)
    learner.open(rel)
    learner.run_all(rel)
    page.wait_for_function("n => document.querySelectorAll('.jp-Notebook details').length >= n", arg=len(outputs) + 3)
    time.sleep(1.0)

    def visible(snippet):
        return any(m.is_visible() for m in page.get_by_text(snippet[:60], exact=False).all())

    shown = [s for s in sources + outputs if visible(s)]
    assert not shown, f"answers visible before they are opened (after Run All): {shown[:3]}"
    # opening one: its output appears
    opened = page.locator(".jp-OutputArea-output details summary").first
    opened.scroll_into_view_if_needed()
    opened.click()
    assert any(visible(s) for s in outputs), "opening a solution's output showed nothing"
    assert not learner.take_problems()


@pytest.mark.parametrize("rel", ["notebooks/00_conventions.ipynb", "notebooks/01_dense.ipynb", *EXPERIMENTS])
def test_open_and_save_changes_no_file(learner, rel):
    files = paired(learner.repo, rel)
    before = [p.read_bytes() for p in files]
    learner.open(rel)
    learner.save(*files)
    for path, old in zip(files, before):
        assert path.read_bytes() == old, f"open + save changed {path.relative_to(learner.repo)}"
    assert not learner.take_problems()


def test_editing_a_library_cell_updates_its_module_and_reverting_restores_both(learner):
    rel, marker = "notebooks/01_dense.ipynb", "# edited in the browser"
    notebook, module = paired(learner.repo, rel)
    before = notebook.read_bytes(), module.read_bytes()
    learner.open(rel)
    page = learner.page
    cell = page.locator(".jp-CodeCell", has_text="class Dense(Layer)").first
    cell.locator(".cm-content").click()
    page.keyboard.press("Control+Home")
    page.keyboard.type(marker)
    page.keyboard.press("Enter")
    learner.save(notebook, module)
    text = module.read_text()
    assert f"{marker}\nclass Dense(Layer)" in text, "the paired module did not receive the edit"
    assert marker in notebook.read_text()
    cell.locator(".cm-content").click()         # back into the editor (the save button took the focus)
    page.keyboard.press("Control+Home")
    page.keyboard.press("Shift+ArrowDown")
    page.keyboard.press("Delete")
    learner.save(notebook, module)
    for path, old in zip((notebook, module), before):
        assert path.read_bytes() == old, f"revert + save did not restore {path.name}:\n" + "".join(
            difflib.unified_diff(old.decode().splitlines(True), path.read_text().splitlines(True), n=1))[:2000]
    assert not learner.take_problems()


# Run All of an experiment notebook reads its run records: the target is 30 s (issue 20), printed against every
# measurement. The assert's limit is wider, 90 s: a timing on a shared CI machine is noisy (the brief: speed targets
# are measured, not asserted in timed tests), while a notebook that trained its recorded runs again takes minutes.
RUN_ALL_TARGET = 30.0
RUN_ALL_BUDGET = float(os.environ.get("DIYDNN_RUN_ALL_BUDGET", 90))    # seconds, per notebook
STOP_NOTEBOOK = "notebooks/experiments/02_full_data.ipynb"             # where a full Train is stopped


def readout(panel, description):
    """The label beside a slider (its value as the panel holds it: the slider itself shows no number box)."""
    box = panel.locator(".widget-hbox", has=panel.page.locator(".widget-slider", has_text=description))
    return box.locator(".diydnn-panel-readout").inner_text()


def readout_element(panel, description):
    box = panel.locator(".widget-hbox", has=panel.page.locator(".widget-slider", has_text=description))
    return box.locator(".diydnn-panel-readout").element_handle()


def wait_for_result(page, panel, heading_before, timeout=180_000):
    """Done when the heading names a new folder, the result line has its final text and Train is enabled again."""
    page.wait_for_function("""([el, before]) => {
        const text = name => el.querySelector('.diydnn-panel-' + name).textContent;
        const button = el.querySelector('.diydnn-panel-train');
        return text('heading') !== before && /test accuracy|Error|stopped/.test(text('result')) && !button.disabled;
    }""", arg=[panel.element_handle(), heading_before], timeout=timeout)


@pytest.mark.parametrize("rel", EXPERIMENTS)
def test_experiment_runs_and_its_panel_trains_new_runs(learner, rel):
    page, repo = learner.page, learner.repo
    records = repo / "notebooks" / "experiments" / "records"
    recorded = digest(records)
    learner.open(rel)
    t0 = time.time()
    try:
        learner.run_all(rel)
    except Exception:
        page.screenshot(path=str(ARTIFACTS / f"run_all_{Path(rel).stem}.png"), full_page=True)
        raise
    run_all_seconds = learner.run_all_seconds[rel] = time.time() - t0
    print(f"{rel}: Run All {run_all_seconds:.1f} s (full mode, fresh scratch copy)")
    errors = learner.error_outputs()
    assert not errors, f"{rel}: error output after Run All: {errors[:3]}"
    assert not page.get_by_text("Traceback").count(), f"{rel}: a traceback after Run All"
    assert digest(records) == recorded, f"{rel}: Run All changed a run record"
    panels = page.locator(".widget-vbox", has=page.locator(".diydnn-panel-train"))
    if not panels.count():
        assert "experiment_controls(" not in (repo / rel).with_suffix(".py").read_text(), \
            f"{rel}: no panel rendered as widgets after Run All"
        assert not learner.take_problems()
        return
    panel = panels.last
    assert not page.get_by_text("Run All (a live kernel) to show it").count(), "panel shown as text only"
    time.sleep(1.0)   # let the browser render every control (a snapping slider would send its change now)
    changes = panel.locator(".diydnn-panel-changes")
    assert "the notebook's settings" in changes.inner_text(), \
        f"{rel}: the untouched panel does not hold the notebook's settings: {changes.inner_text()}"
    src = panel.locator("img").get_attribute("src") if panel.locator("img").count() else ""
    assert (src or "").startswith(("blob:", "data:")), f"{rel}: no image (a broken-image icon) before the first Train"

    runs = repo / "notebooks" / "experiments" / "runs"
    stored = digest(runs) if runs.exists() else {}
    # small runs: 1 epoch on 5,000 images
    epochs = panel.locator(".widget-slider", has_text="epochs")
    epochs.locator(".noUi-handle").focus()
    page.keyboard.press("Home")
    panel.locator(".widget-dropdown", has_text="training samples").locator("select").select_option(label="5,000")
    lr_slider = panel.locator(".widget-slider", has_text="learning rate")
    n_trains = TRAINS_PER_CNN_NOTEBOOK if rel in CNN_NOTEBOOKS else TRAINS_PER_NOTEBOOK
    for i in range(n_trains):
        label_before = readout(panel, "learning rate")
        lr_slider.locator(".noUi-handle").focus()
        page.keyboard.press("ArrowLeft" if i % 2 == 0 else "ArrowRight")
        # the label beside the slider is set by the kernel: wait for it to show the moved value
        page.wait_for_function("([e, before]) => e.textContent !== before",
                               arg=[readout_element(panel, "learning rate"), label_before])
        page.wait_for_function("e => e.textContent.includes('changed')", arg=changes.element_handle())
        lr_shown = float(readout(panel, "learning rate"))
        image_before = panel.locator("img").get_attribute("src") if panel.locator("img").count() else None
        heading_before = panel.locator(".diydnn-panel-heading").inner_text()
        panel.locator(".diydnn-panel-train").click()
        # the result line says "training…" once the run has started; only then can its final text be waited for
        # (before it, the heading has changed while the line still shows the previous Train's accuracy)
        page.wait_for_function("e => !/test accuracy|Error|stopped/.test(e.textContent)",
                               arg=panel.locator(".diydnn-panel-result").element_handle(), timeout=30_000)
        wait_for_result(page, panel, heading_before)
        result_text = panel.locator(".diydnn-panel-result").inner_text()
        learner.trains += 1
        assert "test accuracy" in result_text, f"{rel}: Train ended without its test accuracy: {result_text}"
        assert "vs reference" in result_text and "interval" in result_text, \
            f"{rel}: the result is not set against the reference runs: {result_text}"
        redraws = int(re.search(r"(\d+) redraws", result_text).group(1))
        assert redraws >= 1 and not panel.locator(".diydnn-panel-status").inner_text().strip(), \
            f"{rel}: curves not redrawn, or a redraw failed: {result_text} {panel.locator('.diydnn-panel-status').inner_text()}"
        heading = panel.locator(".diydnn-panel-heading code").inner_text()
        folder = repo / "notebooks" / "experiments" / heading
        assert heading.startswith("runs/") and folder.is_dir(), f"{rel}: heading names no new folder: {heading}"
        settings = json.loads((folder / "settings.json").read_text())
        assert settings["lr"] == lr_shown and settings["num_epochs"] == 1 and settings["train_abs_samples"] == 5000
        assert settings["model_name"] == folder.name and folder.name not in {p.split("/")[0] for p in stored}
        assert (folder / "result.json").exists()
        assert panel.locator("img").get_attribute("src") != image_before, f"{rel}: the curves were not redrawn"
        now = digest(runs)
        assert {k: v for k, v in now.items() if k in stored} == stored, f"{rel}: a stored run was changed"
        assert set(stored) <= set(now), f"{rel}: a stored run was deleted"
    if rel.endswith("07_regularisation.ipynb"):          # the whole panel, result line included (README: media/)
        page.set_viewport_size({"width": 1400, "height": 2000})
        panel.screenshot(path=str(ARTIFACTS / "panel_after_train.png"))
        page.set_viewport_size({"width": 1400, "height": 1000})
    if rel == STOP_NOTEBOOK:
        press_while_the_kernel_is_busy(learner, panel, rel)
        stop_a_full_train(learner, panel, rel)
    assert digest(records) == recorded, f"{rel}: a Train changed a run record"
    print(f"{rel}: Run All {run_all_seconds:.1f} s, {n_trains} Trains")
    assert not learner.take_problems()


def press_while_the_kernel_is_busy(learner, panel, rel):
    """Presses of Train while the kernel is busy. (1) While a cell runs: JupyterLab sends widget messages to a kernel
    subshell, so the press is taken at once and the Train starts while the cell still runs. (2) A press the kernel
    cannot take yet (a front-end without subshells): the browser alone shows "waiting for the kernel" at once."""
    page = learner.page
    waiting, result = panel.locator(".diydnn-panel-waiting"), panel.locator(".diydnn-panel-result")
    assert not waiting.is_visible(), f"{rel}: 'waiting for the kernel' shows while the kernel is free"
    page.locator(".jp-Notebook .jp-Cell").last.locator(".jp-InputPrompt").click()      # select the last cell
    page.keyboard.press("Escape")
    page.keyboard.press("b")                                 # a new code cell below it
    page.keyboard.press("Enter")
    page.keyboard.type("import time; time.sleep(12)  # the browser test keeps the kernel busy")
    page.keyboard.press("Control+Enter")
    busy_cell = page.locator(".jp-Notebook .jp-CodeCell").last
    prompt = busy_cell.locator(".jp-InputPrompt")
    page.wait_for_function("e => e.textContent.includes('*')", arg=prompt.element_handle(), timeout=10_000)
    # (1) a cell runs: the press is taken at once
    heading_before = panel.locator(".diydnn-panel-heading").inner_text()
    pressed = time.time()
    panel.locator(".diydnn-panel-train").click()
    page.wait_for_function("e => e.textContent.includes('training')", arg=result.element_handle(), timeout=10_000)
    started = time.time() - pressed
    assert "*" in prompt.inner_text(), f"{rel}: the cell ended before the Train started ({started:.1f} s)"
    wait_for_result(page, panel, heading_before)
    assert "test accuracy" in result.inner_text() and not waiting.is_visible()
    # (2) a press the kernel cannot take yet (a front-end without subshells, where every press waits for the running
    # cells): the browser's own part, the toggle drawn pressed (class mod-active) with no answer from the kernel, is
    # enough to show the waiting line, after its 0.3 s delay and within 1.5 s, and to hide it once the toggle is lowered
    train = panel.locator(".diydnn-panel-train").element_handle()
    page.evaluate("b => b.classList.add('mod-active')", train)
    pressed = time.time()
    waiting.wait_for(state="visible", timeout=5_000)
    shown = time.time() - pressed
    assert "Train starts" in waiting.inner_text()
    page.evaluate("b => b.classList.remove('mod-active')", train)
    waiting.wait_for(state="hidden", timeout=5_000)
    print(f"{rel}: a press while a cell runs: the Train started after {started:.2f} s, the cell still running; "
          f"a press the kernel cannot take yet: 'waiting for the kernel' shown after {shown:.2f} s")
    assert 0.25 <= shown <= 1.5, f"the waiting line showed after {shown:.2f} s"
    page.wait_for_function("e => !e.textContent.includes('*')", arg=prompt.element_handle(), timeout=30_000)
    n_cells = page.locator(".jp-Notebook .jp-Cell").count()
    prompt.click()                                            # remove the helper cell again
    page.keyboard.press("Escape")
    page.keyboard.press("d")
    page.keyboard.press("d")
    page.wait_for_function("n => document.querySelectorAll('.jp-Notebook .jp-Cell').length === n",
                           arg=n_cells - 1, timeout=5_000)


def stop_a_full_train(learner, panel, rel):
    """A full Train (all samples, the notebook's epochs), stopped within 5 s: another cell runs meanwhile, the run ends
    within 2 s of Stop, and its folder is complete and marked."""
    page, repo = learner.page, learner.repo
    epochs = panel.locator(".widget-slider", has_text="epochs")
    epochs.locator(".noUi-handle").focus()
    page.keyboard.press("End")                                          # many epochs: it would run for minutes
    samples = panel.locator(".widget-dropdown", has_text="training samples").locator("select")
    samples.select_option(label=samples.locator("option").all_inner_texts()[-1])      # all the training samples
    heading_before = panel.locator(".diydnn-panel-heading").inner_text()
    panel.locator(".diydnn-panel-train").click()
    page.wait_for_function("e => e.textContent.includes('training')",
                           arg=panel.locator(".diydnn-panel-result").element_handle(), timeout=10_000)
    # another cell runs while the Train trains: the first code cell, run again in place
    first = page.locator(".jp-Notebook .jp-CodeCell").first
    prompt_before = first.locator(".jp-InputPrompt").inner_text()
    first.locator(".cm-content").click()
    page.keyboard.press("Control+Enter")
    page.wait_for_function("([el, before]) => el.textContent !== before && !el.textContent.includes('*')",
                           arg=[first.locator(".jp-InputPrompt").element_handle(), prompt_before], timeout=20_000)
    assert "stopped" not in panel.locator(".diydnn-panel-result").inner_text(), "the Train ended before Stop"
    pressed = time.time()
    panel.locator(".diydnn-panel-stop").click()
    wait_for_result(page, panel, heading_before, timeout=30_000)
    stop_seconds = time.time() - pressed
    print(f"{rel}: Stop -> run ended and reported in {stop_seconds:.2f} s")
    assert stop_seconds <= 2.0, f"Stop took {stop_seconds:.2f} s to end the run"
    result_text = panel.locator(".diydnn-panel-result").inner_text()
    assert "stopped by the learner" in result_text, result_text
    folder = repo / "notebooks" / "experiments" / panel.locator(".diydnn-panel-heading code").inner_text()
    result = json.loads((folder / "result.json").read_text())
    assert result["stop_reason"].startswith("stopped by the learner") and (folder / "checkpoint_best.npz").exists()
    assert {p.name for p in folder.iterdir()} >= {"settings.json", "history.json", "result.json", "checkpoint_last.npz"}
    assert not list(folder.parent.glob(f".{folder.name}.new-*")), "a half-written folder was left"


def test_run_all_within_budget(learner):
    """Every experiment notebook's Run All, timed above: within the budget (printed in full)."""
    assert learner.run_all_seconds, "no notebook was run"
    print("Run All, full mode, fresh scratch copy:", {Path(k).stem: round(v, 1) for k, v in learner.run_all_seconds.items()})
    over = {Path(k).stem: round(v, 1) for k, v in learner.run_all_seconds.items() if v > RUN_ALL_TARGET}
    print(f"over the {RUN_ALL_TARGET:.0f} s target on this machine now: {over or 'none'}")
    slow = {k: round(v, 1) for k, v in learner.run_all_seconds.items() if v > RUN_ALL_BUDGET}
    assert not slow, f"Run All over {RUN_ALL_BUDGET:.0f} s: {slow}"


def test_enough_trains_and_no_browser_problems(learner):
    assert learner.trains >= 20, f"only {learner.trains} Train clicks: a 1-in-10 crash could pass unseen"
    assert not learner.take_problems()


# --- the course website ----------------------------------------------------------------------------------------
SITE_PAGES = ["index.html", "notebooks/00_conventions.html", "notebooks/05_batchnorm.html",
              "notebooks/experiments/06_original_bug.html"]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def site_page(browser, course_site):
    """A Chromium page on the built website, served from 127.0.0.1; a request elsewhere is blocked and reported."""
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(course_site.html)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    try:
        page.set_default_timeout(30_000)
        problems = _watch(page)

        def local_only(route):
            if urlsplit(route.request.url).hostname != "127.0.0.1":
                problems.append(f"the page asked the network for {route.request.url}")
                return route.abort()
            return route.continue_()
        page.route("**/*", local_only)
        page.base = f"http://127.0.0.1:{server.server_address[1]}"
        page.problems = problems
        yield page
    finally:
        page.close()
        server.shutdown()
        server.server_close()


def _rendered_math(page):
    """(number of formulas in the page, number MathJax typeset), once MathJax has typeset all of them."""
    n_math = page.locator(".math").count()
    try:
        page.wait_for_function("n => document.querySelectorAll('mjx-container').length >= n", arg=n_math)
    except Exception as e:
        raise AssertionError(f"{page.url}: MathJax typeset {page.locator('mjx-container').count()} of {n_math} "
                             f"formulas ({type(e).__name__}); browser problems: {page.problems[:5]}") from None
    return n_math, page.locator("mjx-container").count()


def test_course_website_in_the_browser(site_page):
    page = site_page
    for rel in SITE_PAGES:
        page.goto(f"{page.base}/{rel}", wait_until="load")          # "load": every image has arrived (or failed)
        n_math, typeset = _rendered_math(page)
        assert n_math >= (5 if "notebooks/" in rel else 1) and typeset >= n_math, f"{rel}: {typeset}/{n_math} typeset"
        assert page.locator("mjx-merror, [data-mjx-error]").count() == 0, f"{rel}: MathJax reported errors"
        leftover = page.eval_on_selector("main", """el => { const c = el.cloneNode(true);
            c.querySelectorAll('mjx-container, code, pre, script, .cell_output').forEach(x => x.remove());
            return c.textContent; }""")
        raw = re.findall(r".{0,30}(?:\$\$|\\frac|\\sum|\\mathbf).{0,30}", leftover)
        assert not raw, f"{rel}: raw TeX left on the page: {raw[:3]}"
        broken = page.eval_on_selector_all("img", "imgs => imgs.filter(i => !(i.complete && i.naturalWidth > 0))"
                                                  ".map(i => i.getAttribute('src'))")
        assert not broken, f"{rel}: figures that did not load: {broken}"
        assert page.locator("img").count() >= (1 if "notebooks/" in rel else 0)
        print(f"{rel}: {typeset} formulas typeset, {page.locator('img').count()} figures")
        if rel == "notebooks/05_batchnorm.html":
            page.screenshot(path=str(ARTIFACTS / "site_chapter.png"))

    # a worked solution: closed, then opened by a click, showing its code, output and formulas
    page.goto(f"{page.base}/notebooks/00_conventions.html", wait_until="load")
    _rendered_math(page)
    solution = page.locator("details.solution").first
    assert solution.get_attribute("open") is None and not solution.locator(".cell").first.is_visible()
    solution.locator("summary").click()
    assert solution.get_attribute("open") is not None
    assert solution.locator(".cell .highlight").first.is_visible() and solution.locator(".cell_output").first.is_visible()
    assert solution.locator("mjx-container").count() >= 1, "the solution's formulas are not typeset"
    solution.locator("summary").scroll_into_view_if_needed()
    page.evaluate("window.scrollBy(0, -90)")
    page.screenshot(path=str(ARTIFACTS / "site_solution.png"))

    # next / previous through the course
    page.goto(f"{page.base}/notebooks/05_batchnorm.html", wait_until="load")
    page.locator("a.right-next").click()
    page.wait_for_url("**/notebooks/06_optimisers.html")
    page.locator("a.left-prev").click()
    page.wait_for_url("**/notebooks/05_batchnorm.html")
    page.goto(f"{page.base}/index.html", wait_until="load")
    page.locator("a.right-next").click()
    page.wait_for_url("**/notebooks/00_begin_here.html")

    # full-text search (the theme's search page, the site's own index)
    page.goto(f"{page.base}/search.html?q=im2col", wait_until="load")
    page.wait_for_selector("#search-results li a[href*='12_convolution']")
    assert not page.problems, "\n".join(page.problems)
