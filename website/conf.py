"""Sphinx configuration of the course website (Sphinx + myst-nb + sphinx-book-theme).

Build from the repository's root (the source folder is the repository itself; this folder holds only the config):

    .venv/bin/sphinx-build -c website . _site/html      (myst-nb also writes _site/jupyter_execute/)

The notebooks are read as committed, executed; nothing runs at build time (nb_execution_mode = "off").
course_pages.py changes pages in memory on their way in (solutions, widgets, the run-it block, the toctree).
"""
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import course_pages  # noqa: E402

project = "diydnn"
author = "the diydnn authors"
copyright = "the diydnn authors"

extensions = ["myst_nb", "sphinx.ext.mathjax", "sphinx-mathjax-offline"]

# Sources: the README (home page), every numbered notebook, and the generated tables in media/*.md that the
# README and the notebooks link to (pages outside the sidebar); nothing else in the repository is a page.
root_doc = "README"
include_patterns = ["README.md", "notebooks/[0-9]*.ipynb", "notebooks/experiments/[0-9]*.ipynb", "media/*.md"]
# Folders Sphinx need not walk (virtualenvs, run folders, caches): every top-level entry but these.
exclude_patterns = sorted(p.name for p in ROOT.iterdir() if p.name not in ("README.md", "notebooks", "media")) + [
    "**/.ipynb_checkpoints", "notebooks/**/runs*", "notebooks/runs*"]

# Notebooks: as committed, never executed here.
nb_execution_mode = "off"
nb_merge_streams = True
nb_render_markdown_format = "myst"       # text/markdown outputs (results tables) with tables and math
nb_ipywidgets_js = {}                    # widgets are replaced by course_pages; never load widget JS from a CDN
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3

# Math: the sphinx-mathjax-offline extension sets mathjax_path to its own MathJax 3, copied into _static/mathjax
# (no CDN; tests/test_site.py checks that pages load it from there).

html_theme = "sphinx_book_theme"
html_title = "diydnn — a neural network from scratch"
html_static_path = ["static"]
html_css_files = ["course.css"]
html_favicon = "static/favicon.png"
html_context = {"default_mode": "auto"}    # the theme logs a console error on a first visit without it
html_theme_options = {
    "home_page_in_toc": True,
    "show_navbar_depth": 1,
    "use_download_button": True,
    "use_fullscreen_button": False,
    "show_toc_level": 2,
}
html_sourcelink_suffix = ""


def _rewrite_source(app, docname, source):
    """source-read: the page as course_pages makes it (the file on disk is not changed)."""
    srcdir = Path(app.srcdir)
    readme = (srcdir / "README.md").read_text(encoding="utf-8")
    if docname == root_doc:
        source[0] = course_pages.home_page(source[0], srcdir)
    elif docname.startswith("media/"):
        source[0] = course_pages.table_page(source[0], Path(docname).name + ".md")
    elif docname.startswith("notebooks/"):
        source[0] = course_pages.notebook_page(
            source[0], Path(docname).name + ".ipynb", course_pages.readme_commands(readme),
            (srcdir / course_pages.PANEL_IMAGE).read_bytes())


def _index_page(app, exception):
    """The home page is README.html; index.html is a copy of it, so the folder opens on the home page."""
    if exception is None and app.builder.format == "html":
        out = Path(app.outdir)
        shutil.copyfile(out / "README.html", out / "index.html")


def setup(app):
    app.connect("source-read", _rewrite_source)
    app.connect("build-finished", _index_page)
