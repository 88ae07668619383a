"""nbgrader packaging: a working nbgrader course from the kit's own sources.

``llmkit nbgrader build COURSE_DIR [--sections N ...] [--exercises ID ...]`` writes the
course (:mod:`llmkit.nbgrader.build`); the notebooks' cells use
:mod:`llmkit.nbgrader.runtime` at run time. Needs the ``instructor`` extra to build
(nbgrader, matplotlib); learners need only llmkit itself.
"""

from __future__ import annotations

import argparse

from llmkit.catalog import load_catalog


def cmd_build(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from llmkit.nbgrader.build import BuildError, build_course

    console = Console()
    try:
        catalog = load_catalog()
        with console.status("building the course (collecting the graders, drawing figures)…"):
            course = build_course(args.course_dir, catalog, args.sections, args.exercises)
    except BuildError as exc:
        console.print(
            f"llmkit nbgrader build: {exc}", style="red", markup=False, highlight=False, soft_wrap=True
        )
        return 2
    table = Table(title=f"nbgrader course in {course.root}")
    for col in ("assignment", "notebook", "exercise", "points", "of which GPU-only"):
        table.add_column(col)
    for nb in course.notebooks:
        gpu = f"{nb.gpu_points:g}" if nb.gpu_points else ""
        table.add_row(
            nb.path.parent.name, nb.path.name, nb.exercise.id, f"{nb.points + nb.gpu_points:g}", gpu
        )
    console.print(table)
    first = course.assignments[0]
    console.print(
        f"Next: cd {course.root} && nbgrader generate_assignment {first} --force "
        "(one assignment per section; see the README's nbgrader workflow).",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    return 0


def _section(value: str) -> int:
    try:
        return int(value.removeprefix("section"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"a section is a number such as 2, got {value!r}") from None


def register(subparsers) -> None:
    """Add ``llmkit nbgrader ...`` to the CLI."""
    parser = subparsers.add_parser("nbgrader", help="package the exercises as an nbgrader course")
    commands = parser.add_subparsers(dest="nbgrader_command", required=True)
    p = commands.add_parser(
        "build",
        help="write an nbgrader course: nbgrader_config.py and source/section<N>/<topic>.ipynb",
        description="Write an nbgrader course: one assignment per section, one notebook per exercise.",
    )
    p.add_argument(
        "course_dir", metavar="COURSE_DIR", help="a new or empty directory, or a course built before"
    )
    p.add_argument(
        "--sections", nargs="+", type=_section, metavar="N", help="only these sections (default: all)"
    )
    p.add_argument("--exercises", nargs="+", metavar="ID", help="only these exercises, e.g. 2.3 5.1")
    p.set_defaults(func=cmd_build)
