"""Numbers in prose that must come from the computation.

The course states measured things — times, memory, accuracies, speed ratios — in its markdown cells and its
README. Those are typed once and drift when the code is re-run. This module finds every number in prose that
carries a unit of measurement (a time, a size, a rate), a per cent sign or a times sign, and looks for it among
the numbers the notebook itself printed (its stored outputs), at the precision the prose gives:

    prose "98.98 %"  matches a printed 98.98, 98.981 or 0.9898 (a fraction shown as a per cent);
    prose "1.3×"     matches a printed 1.31 or 1.27;
    prose "215 µs"   matches a printed 214.6 (and 0.2146 ms or 0.0002146 s: the same time in other units).

A number that is not computed anywhere — a quotation ("the original reported 75–86 %") or a constant of
mathematics or of a standard — is allowed when its line says so in an HTML comment, which neither JupyterLab
nor a code host renders:

    The original reported 75–86 % on MNIST. <!-- quoted: the original diy-dnn README -->
    Inverted dropout keeps 80 % of the units at rate 0.2. <!-- constant: 1 - rate -->

The mark covers the numbers of its own source line only, and must give a reason after the colon.
Not checked: numbers inside $math$, `code`, links' addresses and HTML comments; shapes such as 28×28.
"""
import json
import re
from pathlib import Path

# unit -> (kind, factor to the kind's base unit); longest names first so that "ms" is not read as "m" + "s"
UNITS = {
    "GFLOP/s": ("rate", 1e9), "samples/s": ("sps", 1.0), "images/s": ("sps", 1.0), "steps/s": ("steps", 1.0),
    "GiB": ("bytes", 2**30), "MiB": ("bytes", 2**20), "KiB": ("bytes", 2**10),
    "GB": ("bytes", 1e9), "MB": ("bytes", 1e6), "KB": ("bytes", 1e3), "kB": ("bytes", 1e3), "B": ("bytes", 1.0),
    "hours": ("time", 3600.0), "minutes": ("time", 60.0), "seconds": ("time", 1.0), "min": ("time", 60.0), "ms": ("time", 1e-3), "µs": ("time", 1e-6), "μs": ("time", 1e-6), "us": ("time", 1e-6),
    "ns": ("time", 1e-9), "s": ("time", 1.0),
    "%": ("percent", 1.0), "×": ("ratio", 1.0),
}
_UNIT_RE = "|".join(re.escape(u) for u in sorted(UNITS, key=len, reverse=True))
_NUM = r"\d+(?:,\d{3})*(?:\.\d+)?"
# a number or a range (98.10–98.41 %, 98.10 % – 98.41 %, 60-73 s), then its unit; "×" followed by a digit is a
# shape (28×28, 3 × 3), not a ratio; a unit made of letters must end at a word boundary ("3 seeds" is no time)
PROSE_NUMBER = re.compile(
    rf"(?<![\w.\-/^])(?P<a>{_NUM})(?:\s?(?:{_UNIT_RE}))?(?:\s?[–-]\s?(?P<b>{_NUM}))?"
    rf"[\u2009\u202f ]?(?P<unit>{_UNIT_RE})(?![\w/])(?!\s?\d)")
MARK = re.compile(r"<!--\s*(quoted|constant)\s*:\s*\S[^>]*-->")
_SKIP = [re.compile(p, re.S) for p in (r"<!--.*?-->", r"\$\$.*?\$\$", r"\$[^$\n]+\$", r"```.*?```", r"`[^`\n]+`",
                                        r"\]\([^)]*\)", r"<img[^>]*>", r"https?://\S+")]
_OUTPUT_NUMBER = re.compile(r"(?<![\w.])[-+]?\d+(?:,\d{3})*(?:\.\d+)?(?:[eE][-+]?\d+)?")


def _blank(text, pattern):
    return pattern.sub(lambda m: " " * len(m.group()), text)


def prose_numbers(markdown):
    """[(line number, text as written, [values], unit)] for each unit-carrying number of `markdown`, except on
    lines marked as quoted/constant."""
    found = []
    for lineno, line in enumerate(markdown.splitlines(), 1):
        if MARK.search(line):
            continue
        visible = line
        for pattern in _SKIP:
            visible = _blank(visible, pattern)
        for m in PROSE_NUMBER.finditer(visible):
            values = [m.group("a")] + ([m.group("b")] if m.group("b") else [])
            found.append((lineno, m.group().strip(), values, m.group("unit")))
    return found


def output_texts(notebook):
    """Every text a notebook's code cells printed or displayed (stored outputs)."""
    texts = []
    for cell in notebook["cells"]:
        for out in cell.get("outputs", []) if cell["cell_type"] == "code" else []:
            if "text" in out:
                texts.append("".join(out["text"]))
            for mime in ("text/plain", "text/markdown", "text/html", "text/latex"):
                if mime in out.get("data", {}):
                    texts.append("".join(out["data"][mime]))
    return texts


def printed_values(texts):
    """The set of numbers in `texts` (as floats)."""
    values = set()
    for text in texts:
        for m in _OUTPUT_NUMBER.finditer(text):
            try:
                values.add(float(m.group().replace(",", "")))
            except ValueError:
                pass
    return values


def _decimals(written):
    return len(written.split(".")[1]) if "." in written else 0


def matches(written, unit, printed):
    """True if the prose number `written` (with `unit`) equals a printed value at the prose's precision."""
    target = float(written.replace(",", ""))
    tol = 0.5 * 10 ** -_decimals(written) * (1 + 1e-9)
    kind, factor = UNITS[unit]
    scales = [1.0]
    if kind == "percent":
        scales.append(100.0)                 # 0.9898 printed, 98.98 % written
    if kind in ("time", "bytes"):            # the same quantity printed in another unit of its kind
        scales = [f / factor for u, (k, f) in UNITS.items() if k == kind]
    return any(abs(v * s - target) <= tol for v in printed for s in scales)


def unmatched(markdown, printed):
    """[(line, text as written)] of the unit-carrying numbers in `markdown` that no printed value matches."""
    return [(lineno, text) for lineno, text, values, unit in prose_numbers(markdown)
            if not all(matches(v, unit, printed) for v in values)]


def notebook_problems(path):
    """The unit-carrying numbers of a notebook's markdown that its own outputs do not show, as readable lines."""
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    printed = printed_values(output_texts(nb))
    problems = []
    for index, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "markdown":
            continue
        for lineno, text in unmatched("".join(cell["source"]), printed):
            problems.append(f"{Path(path).name}, markdown cell {index}, line {lineno}: {text!r} is not printed "
                            f"by any cell of the notebook")
    return problems


# --- the README: blocks copied from generated files, and numbers in its prose ------------------------------------
# A README block between `<!-- generated: media/x.md -->` and `<!-- end generated -->` (or the benchmark's own
# markers) must equal the file that code wrote; its numbers are then the computation's by construction.
GENERATED = re.compile(r"<!-- generated: (?P<file>\S+) -->\n(?P<body>.*?)\n?<!-- end generated -->", re.S)
BENCHMARK = re.compile(r"<!-- benchmark:start -->\n(?P<body>.*?)\n?<!-- benchmark:end -->", re.S)


def generated_blocks(readme):
    """[(file named by the block, text of the block)] of a README text."""
    blocks = [(m.group("file"), m.group("body")) for m in GENERATED.finditer(readme)]
    blocks += [("media/bench_training.md", m.group("body")) for m in BENCHMARK.finditer(readme)]
    return blocks


def without_generated_blocks(readme):
    """The README with every generated block blanked (line count kept), for the prose check."""
    for pattern in (GENERATED, BENCHMARK):
        readme = pattern.sub(lambda m: "\n" * m.group().count("\n"), readme)
    return readme


def update_generated_blocks(readme_path, root):
    """Copy every generated file into its README block (written atomically); returns the files copied."""
    from diydnn._00_conventions import write_atomically
    text = Path(readme_path).read_text(encoding="utf-8")

    def fill(m):
        body = (Path(root) / m.group("file")).read_text(encoding="utf-8").strip()
        return f"<!-- generated: {m.group('file')} -->\n{body}\n<!-- end generated -->"
    new = GENERATED.sub(fill, text)
    write_atomically(readme_path, lambda f: f.write(new.encode("utf-8")))
    return [m.group("file") for m in GENERATED.finditer(text)]


if __name__ == "__main__":
    import sys
    if sys.argv[1:] != ["--update-readme"]:
        sys.exit("usage: python tests/prose_numbers.py --update-readme   (copies media/ tables into README blocks)")
    root = Path(__file__).resolve().parents[1]
    print("updated from:", update_generated_blocks(root / "README.md", root))
