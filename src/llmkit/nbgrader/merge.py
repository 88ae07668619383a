"""One answer cell from an exercise's stub and its reference solution.

The cell holds the stub's text (docstrings, signatures, given code) with the
reference's code between ``### BEGIN SOLUTION`` / ``### END SOLUTION``. nbgrader's
release replaces each region with :data:`CODE_STUB` (the course's
``ClearSolutions.code_stub``, a comment), so the released cell is the stub itself,
comment lines aside, and the source cell runs as the reference:

* a stub function body that differs from the reference (``raise NotImplementedError``,
  ``pass``) keeps its text after a region holding the reference's body; the region
  ends in ``return`` when the stub's lines would otherwise run, so they are dead code
  in the source notebook and the whole body in the release;
* definitions, imports and constants only the reference has (helpers, private
  methods) become regions where the reference has them; a decorator only the
  reference has becomes a region above the ``def``.

:func:`answer_cell` checks both directions: the released text parses to exactly
the stub's syntax tree and the source text compiles.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
CODE_STUB = "# YOUR CODE HERE"
_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_FUNCS = (ast.FunctionDef, ast.AsyncFunctionDef)


class MergeError(Exception):
    """The stub and the reference cannot be merged into one answer cell."""


@dataclass
class _Insert:
    after: int  # stub line number (1-based) the region follows; 0 = before the first line
    depth: int  # nesting depth: deeper regions come first at the same line
    seq: int
    lines: list[str]


def answer_cell(stub: str, solution: str, name: str = "module") -> str:
    """The answer cell's text: ``stub`` with ``solution``'s code in solution regions."""
    merger = _Merger(stub, solution, name)
    cell = merger.run()
    released = release_text(cell)
    try:
        same = ast.dump(ast.parse(released)) == ast.dump(merger.stub_tree)
    except SyntaxError as exc:
        raise MergeError(f"{name}: the released cell does not parse (line {exc.lineno}: {exc.msg})") from None
    if not same:
        raise MergeError(f"{name}: the released cell differs from the stub")
    try:
        compile(solution_text(cell), name, "exec")
    except SyntaxError as exc:
        raise MergeError(
            f"{name}: the merged solution does not compile (line {exc.lineno}: {exc.msg})"
        ) from None
    return cell


def release_text(cell: str) -> str:
    """What nbgrader's release makes of ``cell`` (each region becomes :data:`CODE_STUB`)."""
    out, inside = [], False
    for line in cell.split("\n"):
        if BEGIN_SOLUTION in line:
            inside = True
            out.append(line[: len(line) - len(line.lstrip())] + CODE_STUB)
        elif END_SOLUTION in line:
            inside = False
        elif not inside:
            out.append(line)
    return "\n".join(out)


def solution_text(cell: str) -> str:
    """``cell`` without its region markers: the code the source notebook runs."""
    return "\n".join(
        line for line in cell.split("\n") if BEGIN_SOLUTION not in line and END_SOLUTION not in line
    )


def _key(node: ast.stmt, index: int) -> tuple:
    if isinstance(node, _DEFS):
        return ("def", node.name)
    if index == 0 and _is_docstring(node):
        return ("doc",)
    return ("stmt", ast.dump(node))


def _is_docstring(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


def _first_line(node: ast.stmt) -> int:
    decorators = getattr(node, "decorator_list", None) or []
    return min([node.lineno, *(d.lineno for d in decorators)])


def _harmless(node: ast.stmt) -> bool:
    """A statement that does nothing when it runs: ``pass``, ``...``, a bare constant."""
    return isinstance(node, ast.Pass) or (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))


class _Merger:
    def __init__(self, stub: str, solution: str, name: str):
        self.name = name
        try:
            self.stub_tree = ast.parse(stub)
        except SyntaxError as exc:
            raise MergeError(f"{name}: the stub does not parse (line {exc.lineno}: {exc.msg})") from None
        try:
            self.sol_tree = ast.parse(solution)
        except SyntaxError as exc:
            raise MergeError(f"{name}: the reference does not parse (line {exc.lineno}: {exc.msg})") from None
        self.stub_lines = stub.split("\n")
        self.sol_lines = solution.split("\n")
        self.inserts: list[_Insert] = []

    def run(self) -> str:
        self._merge_block(self.stub_tree.body, self.sol_tree.body, depth=0)
        by_line: dict[int, list[_Insert]] = {}
        for ins in self.inserts:
            by_line.setdefault(ins.after, []).append(ins)
        out: list[str] = []
        for number in range(len(self.stub_lines) + 1):
            if number:
                out.append(self.stub_lines[number - 1])
            for ins in sorted(by_line.get(number, []), key=lambda i: (-i.depth, i.seq)):
                out.extend(ins.lines)
        return "\n".join(out)

    # --- regions --------------------------------------------------------------

    def _region(self, after: int, depth: int, indent: str, body: list[str], blank_before: bool = False):
        lines = ([""] if blank_before else []) + [indent + BEGIN_SOLUTION, *body, indent + END_SOLUTION]
        self.inserts.append(_Insert(after, depth, len(self.inserts), lines))

    def _solution_segment(self, nodes: list[ast.stmt], previous_end: int) -> list[str]:
        """The reference's lines for ``nodes``, with the comments just above the first
        one (back to ``previous_end``, the line where the preceding code ends)."""
        start = _first_line(nodes[0])
        while start - 1 > previous_end and self.sol_lines[start - 2].strip().startswith("#"):
            start -= 1
        return self.sol_lines[start - 1 : nodes[-1].end_lineno]

    @staticmethod
    def _indent(node: ast.stmt) -> str:
        return " " * node.col_offset

    # --- blocks (module and class bodies) -------------------------------------

    def _merge_block(self, stub_body: list[ast.stmt], sol_body: list[ast.stmt], depth: int):
        """Pair the reference's statements with the stub's (definitions by name, in any
        order; other statements by equal syntax), merge each pair of definitions, and put
        the reference's unpaired statements in regions after the stub's counterpart of the
        statement before them."""
        unused: dict[tuple, list[ast.stmt]] = {}
        for i, node in enumerate(stub_body):
            unused.setdefault(_key(node, i), []).append(node)
        pairs = []
        for j, node in enumerate(sol_body):
            candidates = unused.get(_key(node, j))
            pairs.append((node, candidates.pop(0) if candidates else None))
        if depth == 0:  # the reference's extra imports: one region after the stub's last import
            imports = [n for n in stub_body if isinstance(n, (ast.Import, ast.ImportFrom))]
            extra = [o for o, s in pairs if s is None and isinstance(o, (ast.Import, ast.ImportFrom))]
            if imports and extra:
                lines = [line for n in extra for line in self._solution_segment([n], n.lineno - 1)]
                self._region(imports[-1].end_lineno, depth, "", lines)
                pairs = [(o, s) for o, s in pairs if not any(o is e for e in extra)]
        anchor = _first_line(stub_body[0]) - 1
        group: list[ast.stmt] = []
        previous_end = 0  # where the reference's code before the group ends

        def flush():
            if group:
                body = self._solution_segment(group, previous_end)
                self._region(anchor, depth, self._indent(group[0]), body, blank_before=True)
                group.clear()

        for o, s in pairs:
            if s is None:
                if not group:
                    previous_end = self._end_before(o, sol_body)
                group.append(o)
                continue
            flush()
            anchor = s.end_lineno
            if isinstance(s, ast.ClassDef) and isinstance(o, ast.ClassDef):
                self._merge_class(s, o, depth)
            elif isinstance(s, _FUNCS) and isinstance(o, _FUNCS):
                self._merge_function(s, o, depth)
            elif isinstance(s, _DEFS) or isinstance(o, _DEFS):
                raise MergeError(
                    f"{self.name}: {s.name} is a {type(s).__name__} in the stub "
                    f"but a {type(o).__name__} in the reference"
                )
        flush()
        # the stub's unpaired statements stay as they are: the reference does not redefine them

    @staticmethod
    def _end_before(node: ast.stmt, body: list[ast.stmt]) -> int:
        index = next(i for i, n in enumerate(body) if n is node)
        return body[index - 1].end_lineno if index else 0

    def _merge_class(self, s: ast.ClassDef, o: ast.ClassDef, depth: int):
        for attr in ("bases", "keywords", "decorator_list"):
            if [ast.dump(x) for x in getattr(s, attr)] != [ast.dump(x) for x in getattr(o, attr)]:
                raise MergeError(
                    f"{self.name}: class {s.name} has different {attr} in the stub and the reference"
                )
        self._merge_block(s.body, o.body, depth + 1)

    def _merge_function(self, s: ast.FunctionDef, o: ast.FunctionDef, depth: int):
        qual = s.name
        if ast.dump(s.args) != ast.dump(o.args) or ast.dump(s.returns or ast.Pass()) != ast.dump(
            o.returns or ast.Pass()
        ):
            raise MergeError(f"{self.name}: {qual}() has a different signature in the stub and the reference")
        self._merge_decorators(s, o, depth)
        s_body, o_body = list(s.body), list(o.body)
        s_doc = s_body.pop(0) if s_body and _is_docstring(s_body[0]) else None
        o_doc = o_body.pop(0) if o_body and _is_docstring(o_body[0]) else None
        common = 0
        while common < min(len(s_body), len(o_body)) and ast.dump(s_body[common]) == ast.dump(o_body[common]):
            common += 1
        s_rest, o_rest = s_body[common:], o_body[common:]
        if not s_rest and not o_rest:
            return  # given code, identical in both
        if not o_rest:
            raise MergeError(
                f"{self.name}: the stub's {qual}() runs code after everything the reference does"
            )
        if common:
            anchor = s_body[common - 1].end_lineno
            sol_previous = o_body[common - 1].end_lineno
        else:
            anchor = s_doc.end_lineno if s_doc else self._header_end(s, self.stub_lines)
            sol_previous = o_doc.end_lineno if o_doc else self._header_end(o, self.sol_lines)
        indent = self._indent(o_rest[0])
        if s_rest and self._indent(s_rest[0]) != indent:
            raise MergeError(f"{self.name}: {qual}() is indented differently in the stub and the reference")
        body = self._solution_segment(o_rest, sol_previous)
        runs_stub_code = any(not _harmless(n) for n in s_rest)
        if runs_stub_code and not isinstance(o_rest[-1], (ast.Return, ast.Raise)):
            body = [*body, indent + "return"]  # the stub's lines below are dead code here
        self._region(anchor, depth + 1, indent, body)

    def _merge_decorators(self, s: ast.FunctionDef, o: ast.FunctionDef, depth: int):
        stub_decs = [ast.dump(d) for d in s.decorator_list]
        sol_decs = [ast.dump(d) for d in o.decorator_list]
        if stub_decs == sol_decs:
            return
        if sol_decs[: len(stub_decs)] != stub_decs:
            raise MergeError(
                f"{self.name}: {s.name}() has decorators in the stub that the reference "
                "lacks or orders differently"
            )
        extra = o.decorator_list[len(stub_decs) :]
        lines = self.sol_lines[extra[0].lineno - 1 : extra[-1].end_lineno]
        # a decorator line starts with "@" one column left of the expression
        self._region(s.lineno - 1, depth, " " * (extra[0].col_offset - 1), lines)

    @staticmethod
    def _header_end(func: ast.FunctionDef, lines: list[str]) -> int:
        """The last line of ``def ...:`` (a signature may span lines)."""
        line = func.body[0].lineno - 1
        while line > func.lineno and (not lines[line - 1].strip() or lines[line - 1].strip().startswith("#")):
            line -= 1
        return line
