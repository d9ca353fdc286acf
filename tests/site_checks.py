"""Build the course website (website/conf.py) into a scratch folder and check what it shows.

Used by tests/test_site.py (the checks, and that each one can fail) and by the browser test (which serves the
built site). Every check takes the built site and returns a list of problems, empty when all is well.
"""
import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from bs4 import BeautifulSoup

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "website"))
import course_pages  # noqa: E402

# Warnings the build may emit today, each caused by a known slip in a notebook, not by the website; a fix of the
# notebook makes the entry unnecessary (the count is an upper bound). Anything else is a failure.
KNOWN_WARNINGS = {}   # (notebook, warning text) -> how many times it is allowed; none today
WIDGET_REPR = re.compile(r"\b(?:[A-Z][A-Za-z]*(?:Box|Slider|Button|Checkbox|Dropdown|Progress|Output|Text|HTML|Tab|"
                         r"Accordion|Label|Select|Toggle\w*))\((?:children|value|description|layout)=|"
                         r"Run All \(a live kernel\) to show it")
TRACEBACK = re.compile(r"Traceback \(most recent call last\)|\x1b\[")     # (ANSI colours: an IPython traceback)


@dataclass
class Site:
    src: Path            # the repository (or a copy) the site was built from
    html: Path           # the built site
    returncode: int
    warnings: list       # lines of the build's warning log and Python warnings on stderr
    seconds: float
    stderr: str = ""     # the build's stderr (says why a build failed)
    parsed: dict = field(default_factory=dict, repr=False)

    def pages(self):
        """Built HTML pages (not the theme's static files)."""
        return sorted(p for p in self.html.rglob("*.html") if "_static" not in p.relative_to(self.html).parts)

    def soup(self, page):
        """The parsed page (parsed once; the checks must not change it)."""
        page = Path(page).resolve()
        if page not in self.parsed:
            self.parsed[page] = BeautifulSoup(page.read_text(encoding="utf-8"), "html.parser")
        return self.parsed[page]


def build(src, out):
    """Build the website from the repository `src` into `out` (html/, doctrees/, warnings.log); no execution."""
    src, out = Path(src), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    log = out / "warnings.log"
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-c", str(src / "website"),
           "-d", str(out / "doctrees"), "-w", str(log), str(src), str(out / "html")]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    lines = [ln for ln in (log.read_text() if log.exists() else "").splitlines() if ln.strip()]
    lines += [ln for ln in done.stderr.splitlines() if re.search(r"\w+Warning\b|WARNING|ERROR|Traceback", ln)
              and ln not in lines]
    return Site(src, out / "html", done.returncode, lines, seconds, done.stderr)


def notebooks(src):
    chapters, experiments = course_pages.course_docnames(src)
    return chapters + experiments


def unexpected_warnings(site):
    """Warnings and errors of the build, less the known ones (KNOWN_WARNINGS), plus a failed build."""
    why = [ln for ln in site.stderr.splitlines() if re.search(r"[Ee]rror|exception", ln)][:6]
    problems = [] if site.returncode == 0 else [f"the build exited with {site.returncode}: " + "\n".join(why)]
    budget = dict(KNOWN_WARNINGS)
    for line in site.warnings:
        key = next((k for k in budget if budget[k] > 0 and line.startswith(str(site.src / k[0])) and k[1] in line),
                   None)
        if key:
            budget[key] -= 1
        else:
            problems.append(line)
    return problems


def missing_pages(site):
    """Every notebook has a page (same path, .html), and the home page is README.html and index.html."""
    want = ["README", "index"] + notebooks(site.src)
    return [f"no page for {doc}" for doc in want if not (site.html / f"{doc}.html").is_file()]


def _targets(soup):
    for tag, attr in (("a", "href"), ("img", "src"), ("link", "href"), ("script", "src"), ("source", "src")):
        for el in soup.find_all(tag):
            if el.get(attr):
                yield tag, el[attr]


def broken_links(site):
    """Internal links, images, stylesheets and scripts that point at nothing (a file, or an id in a page);
    anything a page loads (image, script, style) from outside the site."""
    problems, ids = [], {}
    for page in site.pages():
        soup = site.soup(page)
        for tag, target in _targets(soup):
            parts = urlsplit(target)
            if parts.scheme or parts.netloc:
                if tag != "a" and parts.scheme != "data":
                    problems.append(f"{page.relative_to(site.html)}: loads {target} from the network")
                continue
            path = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            rel = page.relative_to(site.html)
            if not path.exists():
                problems.append(f"{rel}: <{tag}> {target} points at nothing")
            elif parts.fragment and path.suffix == ".html":
                if path not in ids:
                    ids[path] = {el["id"] for el in site.soup(path).find_all(id=True)}
                if unquote(parts.fragment) not in ids[path]:
                    problems.append(f"{rel}: <{tag}> {target}: no id '{parts.fragment}' in {path.name}")
    return problems


def _outputs(soup):
    return soup.select(".cell_output, .output")


def tracebacks_and_widget_reprs(site):
    """No output shows a Python traceback or a widget's text repr (VBox(children=...), a panel's one-liner)."""
    problems = []
    for page in site.pages():
        rel = page.relative_to(site.html)
        for out in _outputs(site.soup(page)):
            text = out.get_text()
            if "traceback" in " ".join(out.get("class", [])) or TRACEBACK.search(text):
                problems.append(f"{rel}: a traceback in an output: {text.strip()[:120]!r}")
            match = WIDGET_REPR.search(text)
            if match:
                problems.append(f"{rel}: a widget's text repr in an output: {text[match.start():][:80]!r}")
    return problems


def _solution_cells(src, doc):
    cells = json.loads((src / f"{doc}.ipynb").read_text(encoding="utf-8"))["cells"]
    return [c for c in cells if "solution" in c["metadata"].get("tags", [])]


def _phrase(markdown):
    """Six plain words in a row from a markdown solution (no markup, math or code), to find it on the page."""
    text = re.sub(r"<[^>]+>|\*\*Solution\s+\d+\.?\*\*|Solution\s+\d+\s*\(click to open\)", " ", markdown)
    run = []
    for word in re.sub(r"\*", "", text).split():
        run = run + [word] if re.fullmatch(r"[A-Za-z][A-Za-z,.;:-]*", word) else []     # (quotes become curly)
        if len(run) == 6:
            return " ".join(run)
    return None


def open_solutions(site):
    """Every worked solution is inside a closed drop-down: each code cell tagged `solution` (myst-nb marks it
    `tag_solution`) and six words of each markdown solution; at least one drop-down per page that has any."""
    problems = []
    for doc in notebooks(site.src):
        page = site.html / f"{doc}.html"
        if not page.is_file():
            continue
        soup, cells = site.soup(page), _solution_cells(site.src, doc)
        closed = [d for d in soup.select("details.solution") if not d.has_attr("open")]
        if cells and not closed:
            problems.append(f"{doc}: {len(cells)} solution cells but no closed solution drop-down")
        if len(closed) != len(soup.select("details.solution")):
            problems.append(f"{doc}: a solution drop-down starts open")
        code = soup.select(".tag_solution")
        if len(code) != sum(c["cell_type"] == "code" for c in cells):
            problems.append(f"{doc}: {len(code)} solution code cells on the page, "
                            f"{sum(c['cell_type'] == 'code' for c in cells)} in the notebook")
        problems += [f"{doc}: a solution code cell outside a closed drop-down" for el in code
                     if not any(d in closed for d in el.find_parents("details"))]
        closed_text = " ".join(" ".join(d.get_text(" ").split()) for d in closed)
        page_text = " ".join(soup.select_one("main, body").get_text(" ").split())
        for cell in cells:
            phrase = _phrase("".join(cell["source"])) if cell["cell_type"] == "markdown" else None
            if phrase and (phrase not in closed_text or page_text.count(phrase) > closed_text.count(phrase)):
                problems.append(f"{doc}: the solution text {phrase!r} is not inside a closed drop-down")
    return problems


def raw_math(site):
    """No TeX left unrendered in a page's text: no `$$`, no `$...$` pair, outside code, math and outputs."""
    problems = []
    for page in site.pages():
        body = site.soup(page).select_one("main, article, body")
        if body is None:
            continue
        skip = {id(t) for el in body.select("pre, code, .math, script, style, .cell_output, .output, .highlight")
                for t in el.find_all(string=True)}
        text = " ".join(t for t in body.find_all(string=True) if id(t) not in skip)
        for match in re.finditer(r"\$\$|\$[^$\s][^$\n]*\$", text):
            problems.append(f"{page.relative_to(site.html)}: raw TeX {text[max(0, match.start() - 20):match.end() + 20]!r}")
    return problems


def run_it_blocks(site):
    """Each notebook page links to its own .ipynb (a file of the site) and shows the README's two commands."""
    commands = course_pages.readme_commands((site.src / "README.md").read_text(encoding="utf-8"))
    problems = []
    for doc in notebooks(site.src):
        page = site.html / f"{doc}.html"
        if not page.is_file():
            continue
        soup = site.soup(page)
        links = [a["href"] for a in soup.select("a.download[href]") if a["href"].endswith(Path(doc).name + ".ipynb")]
        if not links or not (page.parent / links[0]).is_file():
            problems.append(f"{doc}: no working 'Download this notebook' link")
        shown = " ".join(t.get_text() for t in soup.select(".run-locally pre"))
        for line in commands.splitlines():
            if line.strip() and line.strip() not in shown:
                problems.append(f"{doc}: the command {line.strip()[:60]!r} is not on the page")
    return problems


def reading_order(site):
    """next/previous links run through the course in order: home, begin here, chapters, experiments."""
    order = ["README"] + notebooks(site.src)
    problems = []
    for before, after in zip(order, order[1:]):
        page = site.html / f"{before}.html"
        if not page.is_file():
            continue
        link = site.soup(page).select_one("a.right-next")
        target = (page.parent / link["href"]).resolve() if link else None
        if target != (site.html / f"{after}.html").resolve():
            problems.append(f"{before}: next leads to {link['href'] if link else 'nothing'}, not {after}")
    return problems
