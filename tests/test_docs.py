"""The README is a front door and the documentation holds together.

- README.md stays at most 300 lines, and its first section keeps the two set-up commands, the
  second of them exactly what `.ci/run` runs.
- Every relative link in README.md and docs/ points to a file that exists, and every anchor to a
  heading that exists (as GitHub names headings: the pages are read there as well as on the site).
- Every page in docs/ is in mkdocs.yml's nav, and every nav entry is a page.
- The command tables list exactly the commands `pydiff` has, and every `pydiff CMD --option`
  written in the README or docs is an option CMD accepts.
- `mkdocs build --strict` builds the site (MkDocs Material, mkdocstrings' API reference); skipped,
  with the reason, when the `docs` extra is not installed.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys
import time
import unicodedata
from pathlib import Path

import click
import pytest

from pydiff.cli import main

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
MAX_README_LINES = 300


def pages() -> list[Path]:
    return [README, *sorted(DOCS.rglob("*.md"))]


def outside_fences(text: str) -> str:
    """The lines of a page outside its fenced code blocks."""
    lines, fence = [], None
    for line in text.splitlines():
        stripped = line.lstrip()
        if fence is None and stripped.startswith(("```", "~~~")):
            fence = stripped[:3]
            continue
        if fence is not None:
            if stripped.startswith(fence):
                fence = None
            continue
        lines.append(line)
    return "\n".join(lines)


def prose(text: str) -> str:
    """The text outside code blocks and inline code (where a `[x](y)` is not a link)."""
    return re.sub(r"`[^`\n]*`", "``", outside_fences(text))


def code_blocks(text: str) -> list[str]:
    """The contents of the fenced shell blocks (```bash, ```sh, ```console or unlabelled)."""
    blocks, current, fence = [], None, None
    for line in text.splitlines():
        stripped = line.lstrip()
        if fence is None and stripped.startswith("```"):
            fence = "```"
            current = [] if stripped[3:].strip() in ("", "bash", "sh", "shell", "console") else None
            continue
        if fence is not None and stripped.startswith(fence):
            if current is not None:
                blocks.append("\n".join(current))
            fence, current = None, None
            continue
        if current is not None:
            current.append(line)
    return blocks


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading (and, for the headings these pages use, Python-Markdown too)."""
    text = re.sub(r"<[^>]+>", "", heading).strip().lower()
    text = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LN")
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    headings = re.findall(r"^#{1,6}\s+(.*?)\s*$", outside_fences(path.read_text(encoding="utf-8")), re.M)
    return {github_slug(heading) for heading in headings}


def generated(path: Path) -> bool:
    """Whether mkdocstrings fills the page (`::: module`), whose anchors only the site build checks."""
    return re.search(r"^::: ", path.read_text(encoding="utf-8"), re.M) is not None


def links(path: Path) -> list[str]:
    text = prose(path.read_text(encoding="utf-8"))
    return re.findall(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", text)


def test_readme_is_a_front_door():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES, (
        f"README.md has {len(lines)} lines, more than {MAX_README_LINES}: move the detail to a page in docs/")


def test_readme_first_section_has_the_two_set_up_commands():
    text = README.read_text(encoding="utf-8")
    first = text.split("\n## ", 2)[1]  # the first section, up to the second heading
    commands = [line for block in code_blocks(first) for line in block.splitlines() if line.strip()]
    assert len(commands) == 2, f"the README's first section should hold the two set-up commands, has {commands}"
    run, test = commands
    assert run.startswith("python3 -m venv .venv") and run.endswith("pydiff reproduce --model 9"), run
    assert test.startswith("python3 -m venv .venv") and test.endswith("&& pytest"), test
    # .ci/run runs the second one exactly: the same pip install and pytest
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    install = re.search(r"pip install (.*?) &&", test).group(1)
    assert f"python -m pip install {install}\n" in ci, f".ci/run should install {install!r}, as the README says"
    assert re.search(r"^python -m pytest\s*$", ci, re.M), ".ci/run should run the whole suite, as the README says"
    assert "python3 -m venv .venv" in ci


def test_relative_links_point_to_existing_files_and_headings():
    broken = []
    for page in pages():
        for target in links(page):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            where = f"{page.relative_to(ROOT)}: {target}"
            if not dest.exists():
                broken.append(f"{where} (no such file)")
            elif anchor and dest.suffix == ".md" and not generated(dest) and anchor not in anchors(dest):
                broken.append(f"{where} (no heading #{anchor} in {dest.relative_to(ROOT)})")
    assert not broken, "broken links:\n" + "\n".join(broken)


def nav_pages() -> list[str]:
    text = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    nav = text.split("\nnav:\n", 1)[1]
    nav = nav.split("\n\n", 1)[0]
    return re.findall(r":\s*(\S+\.md)\s*$", nav, re.M)


def test_every_page_is_in_the_nav():
    nav = nav_pages()
    on_disk = sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md"))
    assert sorted(nav) == on_disk, f"mkdocs.yml's nav {sorted(nav)} and the pages in docs/ {on_disk} differ"


def command_table(path: Path) -> set[str]:
    text = path.read_text(encoding="utf-8")
    section = text.split("\n## Commands\n", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([a-z-]+)` \|", section, re.M))


@pytest.mark.parametrize("page", ["README.md", "docs/index.md"])
def test_the_command_table_lists_every_command(page):
    assert command_table(ROOT / page) == set(main.commands), (
        f"{page}'s command table should list exactly pydiff's commands: {sorted(main.commands)}")


def options_of(command: click.Command) -> set[str]:
    names = {"--help", "-h"}
    for param in command.params:
        names.update(param.opts)
        names.update(param.secondary_opts)
    return names


def invocations(page: Path) -> list[str]:
    """Every `pydiff ...` written in a shell block or in inline code of a page."""
    text = page.read_text(encoding="utf-8")
    found = []
    for block in code_blocks(text):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s#.*$", "", line)
            found += [m.group(1) for part in re.split(r"&&|;|\|", line)
                      for m in [re.search(r"(?:^|\s)pydiff\s+(.+)", part)] if m]
    for code in re.findall(r"`([^`\n]+)`", outside_fences(text)):
        m = re.search(r"(?:^|\s)pydiff\s+([a-z].*)", code)
        if m:
            found.append(m.group(1))
    return found


def test_documented_commands_and_options_exist():
    wrong = []
    for page in pages():
        for call in invocations(page):
            try:
                words = shlex.split(call)
            except ValueError:
                words = call.split()
            if not words or words[0].startswith("-") or not re.fullmatch(r"[a-z-]+", words[0]):
                continue
            where = f"{page.relative_to(ROOT)}: pydiff {call.strip()}"
            if words[0] not in main.commands:
                wrong.append(f"{where} (no command {words[0]!r})")
                continue
            command, rest = main.commands[words[0]], words[1:]
            if isinstance(command, click.Group) and rest and rest[0] in command.commands:
                command, rest = command.commands[rest[0]], rest[1:]
            known = options_of(command)
            for word in rest:
                if word.startswith("-") and not re.fullmatch(r"-[\d.]+", word):
                    option = word.split("=", 1)[0]
                    if option not in known and not option.endswith("..."):
                        wrong.append(f"{where} ({option} is not an option of `{command.name}`)")
    assert not wrong, "commands or options the docs name but pydiff does not have:\n" + "\n".join(wrong)


DOCS_EXTRA = ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python")


def test_mkdocs_build_strict(tmp_path):
    missing = [name for name in DOCS_EXTRA if importlib.util.find_spec(name.split(".")[0]) is None
               or importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(f"the docs extra is not installed (no {', '.join(missing)}): pip install -e \".[docs]\"")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    seconds = time.perf_counter() - start
    assert done.returncode == 0, f"mkdocs build --strict failed ({seconds:.1f} s):\n{done.stdout}\n{done.stderr}"
    site = tmp_path / "site"
    assert (site / "index.html").exists() and (site / "api" / "index.html").exists()
    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    for name in ("pydiff.train", "pydiff.TrainConfig", "pydiff.solve", "pydiff.load_pretrained"):
        assert f'id="{name}"' in api, f"the API reference has no entry for {name}"
