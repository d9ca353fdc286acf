"""What the website changes in a page at build time, in memory only (the notebooks on disk are never touched).

- Worked solutions (cells tagged `solution`, collapsed in JupyterLab) become closed drop-downs: each solution —
  its text, its code and the code's output — is wrapped in one <details> element that starts closed.
- A widget output (ipywidgets; a static page has no kernel to run it) never shows its text repr. A training panel
  becomes the still image media/panel_after_train.png with a line that says how to run it live; a tqdm progress
  bar becomes the text of its last state (read from the widget state the notebook saved); any other widget
  becomes a line saying it needs a live kernel. The notebook's saved widget state is dropped, so no page loads
  the widget JavaScript (which would come from a CDN).
- Every notebook page gets, under its title, a link to download the notebook and the README's two commands.
- The home page (README.md) gets the hidden table of contents that orders the sidebar and previous/next:
  begin here, the chapters, then the experiments, discovered from the notebooks folder.
"""
import base64
import html
import json
import re
from pathlib import Path

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
PANEL_IMAGE = "media/panel_after_train.png"
PANEL_LINE = ("*A still image of an experiment panel (experiment 01's) after a Train: a widget needs a running Python "
              "kernel, which a web page does not have. To use this notebook's panel live, run the two commands at the "
              "top of this page, open this notebook in JupyterLab and Run All.*")
OTHER_WIDGET_LINE = ("*An interactive widget is shown here when the notebook runs in JupyterLab (Run All); a web "
                     "page has no kernel to run it.*")
SOLUTION_START = re.compile(r"^[\s#*]*Solution\s+\d+", re.IGNORECASE)
AUTHOR_DETAILS = re.compile(r"^\s*<details[^>]*>\s*<summary>.*?</summary>(.*)</details>\s*$", re.S)


def course_docnames(srcdir):
    """(chapters, experiments): docnames in course order. begin here sorts first, 03_ before 03a_, 15_ after 14_."""
    notebooks = Path(srcdir) / "notebooks"
    chapters = sorted(p.relative_to(srcdir).with_suffix("").as_posix() for p in notebooks.glob("[0-9]*.ipynb"))
    experiments = sorted(p.relative_to(srcdir).with_suffix("").as_posix()
                         for p in (notebooks / "experiments").glob("[0-9]*.ipynb"))
    return chapters, experiments


def readme_commands(readme_text):
    """The fenced bash block under the README's "## Two commands" heading (the two set-up commands)."""
    match = re.search(r"^## Two commands\n.*?^```bash\n(.*?)^```", readme_text, flags=re.M | re.S)
    if not match:
        raise ValueError("README.md: no ```bash block under '## Two commands' (the website shows it on every page)")
    return match.group(1).rstrip("\n")


def home_page(readme_text, srcdir):
    """README.md plus the hidden tables of contents that make the sidebar and previous/next."""
    chapters, experiments = course_docnames(srcdir)
    toc = ""
    for caption, docs in (("Course", chapters), ("Experiments", experiments)):
        toc += f"\n\n```{{toctree}}\n:hidden:\n:caption: {caption}\n\n" + "\n".join(docs) + "\n```\n"
    return readme_text + toc


def table_page(text, file_name):
    """A generated table in media/ as a page outside the sidebar (orphan), titled by its file name if untitled."""
    title = "" if re.match(r"#\s", text) else f"# {file_name}\n\n"
    return f"---\norphan: true\n---\n{title}{text}"


def _source(cell):
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _markdown_cell(text, cell_id):
    return {"cell_type": "markdown", "id": cell_id, "metadata": {}, "source": text}


def _run_it_block(notebook_name, commands):
    return ("\n\n````{admonition} Run this notebook\n:class: tip run-locally\n\n"
            f"{{download}}`Download this notebook <{notebook_name}>` — it is part of the course and imports "
            "the `diydnn` library, so run it from a copy of the repository. From the repository's root:\n\n"
            f"```bash\n{commands}\n```\n````\n\n")


def add_run_it_block(cells, notebook_name, commands):
    """Insert the download link and the two commands right under the page's title (its first '# ' heading)."""
    for cell in cells:
        if cell["cell_type"] != "markdown":
            continue
        lines = _source(cell).split("\n")
        for i, line in enumerate(lines):
            if line.startswith("# "):
                cell["source"] = "\n".join(lines[:i + 1]) + _run_it_block(notebook_name, commands) + \
                    "\n".join(lines[i + 1:])
                return
    raise ValueError(f"{notebook_name}: no title (a markdown line starting with '# ') to put the run block under")


def _solution_label(cell):
    """'Solution N' when the cell's first line names it ('**Solution 1.**', '# Solution 1:', or an HTML summary)."""
    first = re.sub(r"<[^>]+>", "", _source(cell).lstrip().split("\n", 1)[0])
    match = SOLUTION_START.match(first)
    return re.sub(r"[#*\s]+", " ", match.group(0)).strip() if match else None


def _unwrap_details(text):
    """The body of a notebook's own closed <details> element (its summary dropped), or None if it is not one."""
    match = AUTHOR_DETAILS.match(text)
    return match.group(1) if match else None


def wrap_solutions(cells):
    """Each worked solution (consecutive `solution` cells; a new one starts at another 'Solution N') in one closed
    <details>: its text, its code and the code's output. A notebook's own <details> around a solution's text or
    output (closed in JupyterLab too) is unwrapped, so that one click opens the whole solution."""
    out, label = [], None            # label: the open group's 'Solution N' ('' for an unnamed one), None: no group
    for cell in cells:
        is_solution = "solution" in cell.get("metadata", {}).get("tags", [])
        named = _solution_label(cell) if is_solution else None
        starts_new = is_solution and (label is None or (named is not None and named != label))
        if label is not None and (not is_solution or starts_new):
            out.append(_markdown_cell("</details>", f"site-solution-end-{len(out)}"))
            label = None
        if starts_new:
            label = named or ""
            out.append(_markdown_cell(f'<details class="solution">\n<summary>{html.escape(named or "Worked solution")}'
                                      f'</summary>', f"site-solution-{len(out)}"))
        if is_solution and cell["cell_type"] == "markdown" and _unwrap_details(_source(cell)) is not None:
            cell = {**cell, "source": _unwrap_details(_source(cell))}
        if is_solution and cell["cell_type"] == "code":
            for output in cell.get("outputs", []):
                body = _unwrap_details(_source({"source": output.get("data", {}).get("text/html", "")}))
                if body is not None:
                    output["data"]["text/html"] = body
        out.append(cell)
    if label is not None:
        out.append(_markdown_cell("</details>", f"site-solution-end-{len(out)}"))
    return out


def _children(model):
    return [c.removeprefix("IPY_MODEL_") for c in model["state"].get("children", [])]


def _models_below(state, model_id):
    todo, seen = [model_id], []
    while todo:
        mid = todo.pop()
        if mid in state and mid not in seen:
            seen.append(mid)
            todo.extend(_children(state[mid]))
    return [state[m] for m in seen]


def _widget_text(state, model_id):
    """The text a tqdm bar (HBox of HTML, Progress, HTML) showed last, e.g. 'steps 1-5: 100%|██████████| 5/5 [...]'."""
    model = state[model_id]
    name, s = model["model_name"], model["state"]
    if name in ("HTMLModel", "LabelModel"):
        return html.unescape(re.sub(r"<[^>]+>", "", s.get("value", ""))).replace("\u2007", " ")
    if name in ("FloatProgressModel", "IntProgressModel"):
        filled = round(10 * s.get("value", 0) / (s.get("max", 100) or 1))
        return "|" + "█" * filled + " " * (10 - filled) + "|"
    return "".join(_widget_text(state, c) for c in _children(model) if c in state)


def replace_widget(output, state, panel_png):
    """The outputs that stand for one widget output on a static page."""
    model_id = output["data"][WIDGET_VIEW].get("model_id", "")
    models = _models_below(state, model_id)
    text = _source({"source": output["data"].get("text/plain", "")})
    is_panel = any(m["model_name"] == "ButtonModel" and m["state"].get("description") == "Train" for m in models) \
        or "training panel" in text
    if is_panel:
        image = base64.b64encode(panel_png).decode()
        return [{"output_type": "display_data", "metadata": {}, "data": {"text/markdown": PANEL_LINE}},
                {"output_type": "display_data", "metadata": {}, "data": {"image/png": image,
                                                                        "text/plain": "the training panel"}}]
    kinds = {m["model_name"] for m in models}
    if models and kinds <= {"HBoxModel", "HTMLModel", "FloatProgressModel", "IntProgressModel", "LayoutModel",
                            "HTMLStyleModel", "ProgressStyleModel", "DescriptionStyleModel"}:
        return [{"output_type": "stream", "name": "stdout", "text": _widget_text(state, model_id) + "\n"}]
    return [{"output_type": "display_data", "metadata": {}, "data": {"text/markdown": OTHER_WIDGET_LINE}}]


def notebook_page(text, notebook_name, commands, panel_png):
    """The notebook (JSON text) as the website shows it."""
    nb = json.loads(text)
    state = nb.get("metadata", {}).pop("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        outputs = []
        for output in cell.get("outputs", []):
            if WIDGET_VIEW in output.get("data", {}):
                outputs += replace_widget(output, state, panel_png)
            else:
                outputs.append(output)
        cell["outputs"] = outputs
    add_run_it_block(nb["cells"], notebook_name, commands)
    nb["cells"] = wrap_solutions(nb["cells"])
    return json.dumps(nb)
