"""Generated parts of the READMEs, rendered from the catalog.

Each generated block sits between ``<!-- llmkit:NAME:start -->`` and
``<!-- llmkit:NAME:end -->``; ``llmkit docs --write`` refreshes them and
``llmkit docs --check`` (run by the test suite) fails when they are stale.
"""

from __future__ import annotations

import re
from pathlib import Path

from llmkit.catalog import Catalog, Exercise


def curriculum_table(catalog: Catalog) -> str:
    lines = [
        "| section | exercise | difficulty | track | points |",
        "|---|---|---|---|---|",
    ]
    for section in catalog.sections:
        name = f"{section.number}. {section.title}"
        exercises = catalog.in_section(section.number)
        for ex in exercises:
            link = f"[{ex.id} {ex.title}](exercises/{ex.section_dir}/README.md)"
            lines.append(f"| {name} | {link} | {ex.difficulty} | {ex.track} | {ex.points} |")
            name = ""
        for planned in section.planned:
            lines.append(f"| {name} | {planned} *(planned)* | | | |")
            name = ""
        if not exercises and not section.planned:
            lines.append(f"| {name} | *(none yet)* | | | |")
    return "\n".join(lines)


def exercise_header(ex: Exercise) -> str:
    resources = "\n".join(f"- [{r.title}]({r.url})" for r in ex.resources)
    return (
        f"## Exercise {ex.id}: {ex.title}\n\n"
        f"**Difficulty:** {ex.difficulty} · **Track:** {ex.track} · **Points:** {ex.points} · "
        f"**File:** `exercises/{ex.module}` · **Check:** `llmkit check {ex.id}`\n\n"
        f"{ex.summary}\n\n"
        f"**Resources**\n\n{resources}"
    )


def section_header(catalog: Catalog, number: int) -> str:
    return "\n\n".join(exercise_header(ex) for ex in catalog.in_section(number))


def generated_blocks(catalog: Catalog) -> dict[Path, dict[str, str]]:
    """{file: {block name: content}} for every generated block in the project."""
    blocks = {catalog.root / "README.md": {"curriculum": curriculum_table(catalog)}}
    for number in sorted({ex.section for ex in catalog.exercises}):
        path = catalog.root / "exercises" / f"section{number}" / "README.md"
        blocks[path] = {"exercises": section_header(catalog, number)}
    return blocks


def _replace_block(text: str, name: str, content: str, path: Path) -> str:
    pattern = re.compile(rf"(<!-- llmkit:{name}:start -->)\n.*?(<!-- llmkit:{name}:end -->)", re.DOTALL)
    if not pattern.search(text):
        raise ValueError(f"{path}: no <!-- llmkit:{name}:start/end --> markers")
    return pattern.sub(lambda m: f"{m.group(1)}\n{content}\n{m.group(2)}", text)


def stale_files(catalog: Catalog, write: bool = False) -> list[Path]:
    """Files whose generated blocks differ from the catalog (rewritten if ``write``)."""
    stale = []
    for path, blocks in generated_blocks(catalog).items():
        if not path.exists():
            raise ValueError(f"{path} does not exist")
        text = path.read_text(encoding="utf-8")
        new = text
        for name, content in blocks.items():
            new = _replace_block(new, name, content, path)
        if new != text:
            stale.append(path)
            if write:
                path.write_text(new, encoding="utf-8")
    return stale
