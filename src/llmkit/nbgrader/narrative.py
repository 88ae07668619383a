"""An exercise's narrative, cut from its section's README.

A section README holds a generated block (``<!-- llmkit:exercises:start/end -->``),
then hand-written ``##`` sections. The notebook of exercise X keeps:

* the text between the title and the first ``##`` section (it introduces the section);
* ``##`` sections whose heading starts with X's id (``## 2.1 — Why tokenization
  matters``; the id is dropped from the heading);
* ``##`` sections without an id, when X has no sections of its own (in section 2 the
  unmarked sections are about 2.3, in section 1 they are shared by all exercises);

and inside a kept section drops the blocks about other exercises: from a paragraph
that starts with ``**<other id> —`` up to the next such paragraph or the section's end.
"""

from __future__ import annotations

import re

GENERATED = re.compile(r"<!-- llmkit:exercises:start -->.*?<!-- llmkit:exercises:end -->\n?", re.DOTALL)
OWN_HEADING = re.compile(r"^##\s+(?P<id>\d+\.\d+[a-z]?)\s*[—–:-]+\s*(?P<rest>.*)$")
TAGGED_PARAGRAPH = re.compile(r"^\*\*(?P<id>\d+\.\d+[a-z]?)\b[^*\n]*?[—–:-]")


def _split_sections(text: str) -> tuple[list[str], list[tuple[str, list[str]]]]:
    intro: list[str] = []
    sections: list[tuple[str, list[str]]] = []
    in_code = False
    for line in text.split("\n"):
        if line.lstrip().startswith("```"):
            in_code = not in_code
        if not in_code and line.startswith("## "):
            sections.append((line, []))
        elif sections:
            sections[-1][1].append(line)
        elif not line.startswith("# "):
            intro.append(line)
    return intro, sections


def _drop_other_exercises(lines: list[str], exercise_id: str, section_ids: set[str]) -> list[str]:
    kept, owner, in_code = [], None, False
    for line in lines:
        if line.lstrip().startswith("```"):
            in_code = not in_code
        match = None if in_code else TAGGED_PARAGRAPH.match(line)
        if match and match["id"] in section_ids:
            owner = match["id"]
        if owner in (None, exercise_id):
            kept.append(line)
    return kept


def exercise_narrative(readme: str, exercise_id: str, section_ids: list[str]) -> str:
    """The markdown of ``readme`` that is about ``exercise_id`` (see the module docstring)."""
    intro, sections = _split_sections(GENERATED.sub("", readme))
    own = {exercise_id}
    ids = set(section_ids)
    tagged = {m["id"] for heading, _ in sections if (m := OWN_HEADING.match(heading))}
    parts = ["\n".join(intro).strip()]
    for heading, body in sections:
        match = OWN_HEADING.match(heading)
        if match:
            if match["id"] not in own:
                continue
            rest = match["rest"]
            heading = f"## {rest[:1].upper()}{rest[1:]}"
        elif exercise_id in tagged:
            continue
        text = "\n".join(_drop_other_exercises(body, exercise_id, ids)).strip()
        parts.append(f"{heading}\n\n{text}".strip())
    return "\n\n".join(p for p in parts if p)
