"""The docs are the project's own: no reference outside the repository, every page linked, every link resolves.

Also: the README stays a front door (at most 300 lines), docs/results.md lists
every field of the HDF5 schema, and the generated parts of docs/config.md
(the key table) and docs/cli.md (every subcommand's ``--help``) match the
program. ``python tests/test_docs.py --write`` regenerates those parts.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"
MAX_README_LINES = 300
#: directories never scanned: version control, environments, build output, caches
SKIP_DIRS = {".git", ".venv", "venv", "build", "dist", "__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis",
             "node_modules"}
#: files never scanned: binary data and figures
SKIP_SUFFIXES = {".h5", ".hdf5", ".npz", ".npy", ".png", ".pdf", ".gz", ".whl", ".pyc", ".so", ".svg"}
# The developers' specification documents, which are not in the repository. Spelled in pieces so that
# this file does not match itself.
SPEC_NAMES = ("PROTOCOLS", "DESIGN", "EXPERIMENTS", "MPI_NOTES", "STYLE")
SPEC_REFERENCE = re.compile(
    r"shared[/\\]spec"
    + r"|\b(?:" + "|".join(SPEC_NAMES) + r")\.md\b"
    + r"|\b(?:" + "|".join(SPEC_NAMES) + r")\s*§"
)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~).*?^\1\s*$", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")
GENERATED = re.compile(r"(<!-- generated: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- end generated -->)", re.S)
HELP_COLUMNS = "100"


# ----------------------------------------------------------------------------- helpers

def repository_files() -> list[Path]:
    """Every text file of the checkout outside SKIP_DIRS (egg-info and other build output included)."""
    out = []
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.endswith(".egg-info")]
        for name in files:
            path = Path(folder) / name
            if path.suffix.lower() not in SKIP_SUFFIXES:
                out.append(path)
    return sorted(out)


def read_text(path: Path) -> str | None:
    """The file's text, or None for a binary file."""
    data = path.read_bytes()
    if b"\0" in data[:8192]:
        return None
    return data.decode("utf-8", errors="replace")


def doc_pages() -> list[Path]:
    """Every Markdown page under docs/."""
    return sorted(DOCS.glob("*.md"))


def prose(text: str) -> str:
    """Markdown without fenced code blocks and inline code (links and headings there are not real)."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def links(path: Path) -> list[str]:
    """Every link target of a Markdown file, outside code."""
    return LINK.findall(prose(path.read_text(encoding="utf-8")))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, formatting and punctuation dropped, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip())  # a link's text stays
    text = text.replace("`", "").lower()
    kept = "".join(ch for ch in text if ch.isalnum() or ch in " -_")
    return kept.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Anchors a Markdown page defines: its headings' slugs (repeats numbered as GitHub does)."""
    seen: dict[str, int] = {}
    out = set()
    for line in FENCE.sub("", path.read_text(encoding="utf-8")).splitlines():
        match = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        base = slug(match.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        out.add(base if count == 0 else f"{base}-{count}")
    return out


def key_table() -> str:
    """The key table ``python -m mpigc validate --keys`` prints after the resolved config.

    Run in a fresh process: test modules register extra entries (``tests/slow_first_worker.py``, a
    straggler model) when imported, and a registry's names are the key table's allowed values.
    """
    proc = subprocess.run([sys.executable, "-m", "mpigc", "validate", "--keys"], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    start = re.search(r"^key\s+default\s+allowed\s+meaning", text, re.M)
    assert start, "validate --keys printed no key table"
    return text[start.start():].rstrip() + "\n"


def cli_help() -> str:
    """``mpigc --help`` and every subcommand's ``--help``, at a fixed width."""
    from mpigc import cli

    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = HELP_COLUMNS
    try:
        parser = cli.build_parser()
        commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parts = [("mpigc --help", parser.format_help())]
        parts += [(f"mpigc {name} --help", sub.format_help()) for name, sub in commands.choices.items()]
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old
    blocks = []
    for title, text in parts:
        body = "\n".join(line.rstrip() for line in text.rstrip().splitlines())
        blocks.append(f"### `{title}`\n\n```text\n{body}\n```\n")
    return "\n".join(blocks)


#: generated block name -> (page, function producing its Markdown)
GENERATORS = {
    "validate-keys": ("config.md", lambda: f"```text\n{key_table()}```\n"),
    "cli-help": ("cli.md", cli_help),
}


def regenerate(text: str) -> str:
    """The page text with every generated block replaced by what the program prints now."""
    def fill(match: re.Match) -> str:
        produce = GENERATORS[match.group("name")][1]
        return match.group(1) + produce() + match.group(4)
    return GENERATED.sub(fill, text)


# ----------------------------------------------------------------------------- tests

def test_nothing_refers_to_documents_outside_the_repository():
    files = repository_files()
    assert len(files) > 50, f"found only {len(files)} files under {ROOT}"
    found = []
    for path in files:
        text = read_text(path)
        if text is None:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if SPEC_REFERENCE.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:100]}")
    assert not found, "references to documents outside the repository (point to docs/ instead):\n" + "\n".join(found)


def test_every_docs_page_is_linked_from_the_readme():
    pages = doc_pages()
    assert pages, "no pages under docs/"
    targets = {target.split("#")[0] for target in links(README)}
    missing = [page.name for page in pages if f"docs/{page.name}" not in targets]
    assert not missing, f"README.md links no {missing}"


def test_readme_is_a_front_door():
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_README_LINES, f"README.md has {lines} lines (at most {MAX_README_LINES}): move detail to docs/"


@pytest.mark.parametrize("page", [README, *doc_pages()], ids=lambda p: p.name)
def test_relative_links_resolve(page):
    targets = links(page)
    if page == README:
        assert len(targets) >= len(doc_pages()), "README.md links fewer targets than there are docs pages"
    broken = []
    for target in targets:
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:, ...
            continue
        file_part, _, anchor = target.partition("#")
        path = (page.parent / file_part).resolve() if file_part else page
        if not path.exists():
            broken.append(f"{target}: no such file")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(f"{target}: no heading with anchor #{anchor} in {path.name}")
    assert not broken, f"{page.name}: broken links:\n" + "\n".join(broken)


def test_results_page_lists_every_schema_field():
    from mpigc.results.schema import TABLES

    text = (DOCS / "results.md").read_text(encoding="utf-8")
    assert len(TABLES) >= 4
    missing = []
    for table, dtype in TABLES.items():
        section = re.search(rf"^### `{table}`\n(.*?)(?=^#)", text, re.S | re.M)
        if section is None:
            missing.append(f"the section ### `{table}`")
            continue
        missing += [f"{table}.{field}" for field in dtype.names if f"| `{field}` |" not in section.group(1)]
    assert not missing, "docs/results.md does not describe " + ", ".join(missing)


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_generated_parts_are_current(name):
    page_name, produce = GENERATORS[name]
    text = (DOCS / page_name).read_text(encoding="utf-8")
    block = next((m.group("body") for m in GENERATED.finditer(text) if m.group("name") == name), None)
    assert block is not None, f"{page_name} has no generated block {name!r}"
    assert block == produce(), f"docs/{page_name} is out of date: run `python tests/test_docs.py --write`"


def test_slugs_follow_github():
    assert slug("MPI runtime (`mpigc run`)") == "mpi-runtime-mpigc-run"
    assert slug("Reference: every subcommand's --help") == "reference-every-subcommands---help"
    assert slug("P1's canonical point (simulator)") == "p1s-canonical-point-simulator"
    assert slug("`wait_for`") == "wait_for"


def write() -> None:
    """Regenerate the generated blocks of docs/ in place."""
    for page_name in sorted({page for page, _ in GENERATORS.values()}):
        page = DOCS / page_name
        text = page.read_text(encoding="utf-8")
        new = regenerate(text)
        if new != text:
            page.write_text(new, encoding="utf-8")
            print(f"updated {page.relative_to(ROOT)}")


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/test_docs.py --write   (regenerates the generated parts of docs/)")
    write()
