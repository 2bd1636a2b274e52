"""Every code block of README.md and docs/*.md is checked (issue 17, item 12).

```python blocks run in this process, each in a fresh namespace with a temporary working
directory, so a block that needs a name from another block fails here before a reader
pastes it. Command lines in ```bash / ```console blocks that call `jaxmix` are parsed
(not run) by the command line's own argparse parser, which catches stale flags. A block
is skipped only when the line before it is `<!-- not run: REASON -->`.
"""

import json
import re
import shlex
import textwrap
from pathlib import Path
from typing import NamedTuple

import matplotlib
import pytest

matplotlib.use("Agg")  # before pyplot is imported anywhere: blocks draw figures without a display

import matplotlib.pyplot as plt

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LANGUAGES = {"python", "bash", "console", "text", "toml", "json"}
FENCE = re.compile(r"^(?P<indent>\s*)```(?P<lang>[^`\s]*)\s*$")
NOT_RUN = re.compile(r"^\s*<!--\s*not run:\s*\S.*-->\s*$")


class Block(NamedTuple):
    page: str
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    not_run: bool

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def blocks(path: Path) -> list[Block]:
    """The fenced blocks of a Markdown file, dedented (blocks inside list items are indented)."""
    lines = path.read_text().split("\n")
    found, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        start, indent = i, m["indent"]
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            i += 1
        assert i < len(lines), f"{path.name}:{start + 1}: unclosed code block"
        body = [line[len(indent) :] if line.startswith(indent) else line for line in lines[start + 1 : i]]
        previous = next((lines[j] for j in range(start - 1, -1, -1) if lines[j].strip()), "")
        found.append(
            Block(path.name, start + 1, m["lang"], textwrap.dedent("\n".join(body)), bool(NOT_RUN.match(previous)))
        )
        i += 1
    return found


ALL = [b for page in PAGES for b in blocks(page)]
PYTHON = [b for b in ALL if b.lang == "python"]
SHELL = [b for b in ALL if b.lang in ("bash", "console")]


def test_pages_have_blocks():
    assert len(PAGES) >= 10, [p.name for p in PAGES]
    assert len(PYTHON) >= 12
    assert sum(b.not_run for b in ALL) <= 2, "keep the blocks that are not run to one or two"


@pytest.mark.parametrize("block", ALL, ids=lambda b: b.id)
def test_block_is_tagged(block):
    """An untagged or oddly tagged block would escape the checks below."""
    assert block.lang in LANGUAGES, f"{block.id}: tag the block as one of {sorted(LANGUAGES)}"


@pytest.mark.parametrize("block", PYTHON, ids=lambda b: b.id)
def test_python_block_runs(block, tmp_path, monkeypatch):
    """Each block is self-contained: its own imports and data, no name from another block."""
    if block.not_run:
        pytest.skip("marked <!-- not run -->")
    monkeypatch.chdir(tmp_path)  # blocks that write files write here
    code = compile(block.code, block.id, "exec")
    try:
        exec(code, {"__name__": "__main__"})
    finally:
        plt.close("all")


@pytest.mark.parametrize("block", [b for b in ALL if b.lang == "json"], ids=lambda b: b.id)
def test_json_block_parses(block):
    json.loads(block.code)


def _cli_lines(block: Block) -> list[str]:
    lines = []
    for line in block.code.split("\n"):
        line = line.strip()
        if block.lang == "console":
            if not line.startswith("$ "):
                continue  # output
            line = line[2:].strip()
        if line.startswith("jaxmix "):
            lines.append(line)
    return lines


CLI = [(b, line) for b in SHELL if not b.not_run for line in _cli_lines(b)]


def test_some_command_lines_are_checked():
    assert len(CLI) >= 3


@pytest.mark.parametrize(("block", "line"), CLI, ids=[f"{b.id}:{line.split()[1]}" for b, line in CLI])
def test_command_line_parses(block, line, capsys):
    """The documented command lines are accepted by `jaxmix`'s parser (not run)."""
    from jaxmix.cli import build_parser

    args = shlex.split(line, comments=True)[1:]
    try:
        build_parser().parse_args(args)
    except SystemExit as e:
        if e.code == 0 and ("--version" in args or "--help" in args or "-h" in args):
            return
        pytest.fail(f"{block.id}: `{line}` is refused by the parser: {capsys.readouterr().err.strip()}")


LINK = re.compile(r"\]\(([^)\s]+)\)")


def _anchors(path: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return {
        re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
        for m in re.finditer(r"^#+ (.*)$", text, flags=re.M)
    }


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_resolve(page):
    """Links between the pages (and their anchors) survive moving sections around."""
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto
        file, _, anchor = target.partition("#")
        dest = (page.parent / file).resolve() if file else page
        assert dest.exists(), f"{page.name}: broken link {target}"
        if anchor and dest.suffix == ".md":
            assert anchor in _anchors(dest), f"{page.name}: no heading for #{anchor} in {dest.name}"
