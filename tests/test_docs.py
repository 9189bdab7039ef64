"""The docs a user copies from say what the program does: every `deploykit ...` command line in README.md and
docs/*.md names commands and options the CLI really has (issue 26: the README's `estimate --fit` line lacked
--db/--profiles; its counts had drifted from the data)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer

from deploykit.cli import app

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
EXAMPLES = sorted((ROOT / "docs" / "examples").glob("*.yml"))  # CI workflows a user copies: their shell lines
# a command is an inline code span that starts with `deploykit `, or a line of a fenced block that does
_SPAN = re.compile(r"`(?:\S*/)?deploykit\s+([^`]+)`")
_FENCED = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
_SHELL_LINE = re.compile(r"^\s*(?:\$\s*)?(?:\S*/)?deploykit\s+(.*)$", re.M)
_OPTION = re.compile(r"(?<![\w/.=-])(--?[a-zA-Z][\w-]*)")


def _command_lines(path: Path) -> list[str]:
    text = path.read_text()
    if path.suffix == ".yml":  # a workflow's `run:` lines are shell lines
        return [line.split(" > ")[0].strip() for line in _SHELL_LINE.findall(text)]
    found = _SPAN.findall(_FENCED.sub("", text))
    for block in _FENCED.findall(text):
        found += _SHELL_LINE.findall(block)
    # a shell comment or pipe ends the command; `\|` is a table cell's escaped "or"
    return [re.split(r"\s#\s|\s\|\s", line)[0].replace("\\|", "|").strip() for line in found]


def _resolve(root, words: list[str]) -> list[tuple]:
    """The commands a line's leading words name; a word like `resources|up|join` names each alternative."""
    found = [("deploykit", root)]
    for word in words:
        nxt = []
        for name, cmd in found:
            if not hasattr(cmd, "commands"):  # a command, not a group (Typer vendors click: no isinstance)
                return found
            alternatives = [w for w in word.split("|") if w]
            subs = [(f"{name} {w}", cmd.commands[w]) for w in alternatives if w in cmd.commands]
            if not subs and getattr(cmd, "default_command", ""):  # `estimate MODEL` is `estimate predict MODEL`
                subs = [(f"{name} {cmd.default_command}", cmd.commands[cmd.default_command])]
                nxt += subs
                continue
            if not subs:
                return found
            nxt += subs
        found = nxt
    return found


def _options(cmd) -> set[str]:
    return {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)} | {"--help"}


def _every_command_line() -> list:
    return [pytest.param(line, id=f"{p.name}:{line[:60]}") for p in [*DOCS, *EXAMPLES] for line in _command_lines(p)]


def test_the_docs_have_command_lines_to_check():
    assert len(_every_command_line()) > 30


@pytest.mark.parametrize("line", _every_command_line())
def test_every_documented_command_line_names_real_commands_and_options(line):
    root = typer.main.get_command(app)
    words = line.split()
    commands = _resolve(root, words)
    assert commands != [("deploykit", root)] or not words or words[0].startswith("-"), f"no command in {line!r}"
    for name, cmd in commands:
        if hasattr(cmd, "commands") and not cmd.invoke_without_command:
            continue  # `deploykit farm` alone: a group's listing
        unknown = sorted(set(_OPTION.findall(line)) - _options(cmd))
        assert not unknown, f"{name} has no option {', '.join(unknown)} (documented as {line!r})"


def test_readme_counts_come_from_the_data():
    """A count of corpus rows or held-out rows in the README drifts as the corpus grows: none is written there."""
    readme = (ROOT / "README.md").read_text()
    assert not re.search(r"\b\d{2,} (?:published latencies|held-out rows|corpus rows)", readme)


def test_the_check_catches_what_the_cli_lacks():
    root = typer.main.get_command(app)
    [(name, cmd)] = _resolve(root, "estimate --fit --nope".split())
    assert name == "deploykit estimate predict" and "--nope" not in _options(cmd) and "--fit" in _options(cmd)
    [(name, _)] = _resolve(root, "estimate fit --device pixel8".split())
    assert name == "deploykit estimate fit"
    assert [n for n, _ in _resolve(root, "farm resources|status".split())] == [
        "deploykit farm resources",
        "deploykit farm status",
    ]


def test_the_profile_schema_page_documents_every_field_and_no_other():
    """docs/profiles.md's three tables list exactly what a profile file may hold (read off the dataclasses)."""
    from deploykit.devices import SCHEMA
    from deploykit.targets import ROOFLINE_FIELDS

    page = (ROOT / "docs" / "profiles.md").read_text()
    sections = re.split(r"^## ", page, flags=re.M)
    documented = {}
    for title, key in (
        ("The profile's fields", "profile"),
        ("A target's fields", "target"),
        ("The estimator", "roofline"),
    ):
        [section] = [s for s in sections if s.startswith(title)]
        documented[key] = set(re.findall(r"^\| `(\w+)` \|", section, flags=re.M))
    assert documented["profile"] == set(SCHEMA["profile"])
    assert documented["target"] == set(SCHEMA["target"])
    assert documented["roofline"] == set(ROOFLINE_FIELDS)


# a markdown link [text](target): target is a path relative to the page, an #anchor, or both
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_CODE = re.compile(r"^```.*?^```|`[^`\n]*`", re.S | re.M)


def _anchors(path: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, -1, -2 … on repeats."""
    seen: dict[str, int] = {}
    out = set()
    for title in re.findall(r"^#{1,6}\s+(.+?)\s*#*$", _FENCED.sub("", path.read_text()), flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def _broken_links(path: Path) -> list[str]:
    broken = []
    for target in _LINK.findall(_CODE.sub("", path.read_text())):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto: …: not a file of this repository
            continue
        file, _, anchor = target.partition("#")
        dest = (path.parent / file).resolve() if file else path
        if not dest.exists():
            broken.append(f"{target} (no file {dest.relative_to(ROOT) if dest.is_relative_to(ROOT) else dest})")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(f"{target} (no heading #{anchor} in {dest.name})")
    return broken


@pytest.mark.parametrize("page", DOCS, ids=lambda p: p.name)
def test_every_relative_link_points_at_a_file_and_heading_that_exist(page):
    assert not _broken_links(page)


def test_the_link_check_catches_a_missing_file_and_a_missing_heading(tmp_path):
    (tmp_path / "a.md").write_text("# A page\n\n## Fitting your own phone (`--fit`)\n")
    page = tmp_path / "b.md"
    page.write_text(
        "[ok](a.md#fitting-your-own-phone---fit) [web](https://example.org/x.md) `[code](gone.md)`\n"
        "[file](gone.md) [heading](a.md#nowhere) [here](#a-page)\n"
    )
    assert _broken_links(page) == [
        f"gone.md (no file {tmp_path / 'gone.md'})",
        "a.md#nowhere (no heading #nowhere in a.md)",
        "#a-page (no heading #a-page in b.md)",
    ]
