"""Reads only, decided by ClickHouse's own parser: what the dashboard's SQL endpoint and
``privaudit sql`` (without ``--write``) run.

ClickHouse's ``readonly = 1`` refuses writes, DDL, ``SET`` and table functions (``file()``,
``url()``, ``remote()`` ...), but not everything that is not a read: ``SELECT ... INTO OUTFILE``
writes a file where the engine runs (the embedded engine runs in our process), ``KILL QUERY`` stops
others' queries, and the ``file()`` *function* returns any file's content. So a statement is first
parsed by ClickHouse (``EXPLAIN AST``, which parses and runs nothing) and refused unless:

- it is one statement, a ``SELECT`` (with ``WITH``, ``UNION``, ``INTERSECT``, ``EXCEPT``), a
  ``SHOW``, a ``DESCRIBE``, or an ``EXPLAIN`` of a ``SELECT``. Before anything is sent, a ``;``
  anywhere but at the end is refused, even inside a string (``char(59)`` writes one): the embedded
  engine runs every statement of a multi-statement query, and after one that fails it answers the
  *next* query with the previous one's leftover result (measured: ``EXPLAIN AST SELECT 1; DROP
  TABLE x``, then the parse of a ``SELECT ... INTO OUTFILE`` came back without its ``INTO OUTFILE``,
  and the file was written). So a second statement never reaches the engine, not even to be parsed;
- it has no ``INTO OUTFILE`` (which ``SELECT``, ``SHOW``, ``DESCRIBE`` and ``EXPLAIN`` all take: a
  literal file name among the statement's own clauses, or a ``SELECT``'s in it);
- it calls no function that reads the engine's files (:data:`DENIED_FUNCTIONS`);

and then it runs under ``readonly = 1`` as well.
"""

from __future__ import annotations

from dataclasses import dataclass

from privaudit.errors import QueryRefused, StoreError, excerpt

from .client import Rows, Statements

#: Functions that read the engine host's files however read-only the session.
DENIED_FUNCTIONS = frozenset({"file"})
_SELECT_KINDS = ("SelectWithUnionQuery", "SelectIntersectExceptQuery")
_READ_KINDS = (*_SELECT_KINDS, "Show", "Describe")


@dataclass
class _Node:
    depth: int
    kind: str
    text: str
    children: list[_Node]


def read_only_statement(store: Statements, sql: str) -> str:
    """``sql`` as one statement to run read-only, or :class:`QueryRefused` saying why not."""
    statement = sql.strip()
    while statement.endswith(";"):
        statement = statement[:-1].rstrip()
    if not statement:
        raise QueryRefused("an empty query")
    if ";" in statement:
        raise QueryRefused("one statement only: a ';' may end the query, not separate statements, nor appear in a "
                           "string here (write char(59))")
    if "\x00" in statement:
        raise QueryRefused("a NUL character in the query")
    try:
        _, rows = store.query(f"EXPLAIN AST {statement}", readonly=True)
    except StoreError as exc:
        raise QueryRefused(f"not one statement ClickHouse can parse (a FORMAT clause is not needed): "
                           f"{excerpt(str(exc), 300, quoted=False)}") from exc
    root = _tree([str(r[0]) for r in rows])
    kind = root.kind
    if kind == "Explain":
        explained = root.children[0].kind if root.children else ""
        if not explained.startswith(_SELECT_KINDS):
            raise QueryRefused(f"only reads run here: EXPLAIN of a {explained or 'statement'} is refused")
    elif not kind.startswith(_READ_KINDS):
        raise QueryRefused(f"only reads run here (SELECT, WITH, SHOW, DESCRIBE, EXPLAIN): {kind} is refused")
    _refuse_writes(root, top=True)
    return statement


def query_read_only(store: Statements, sql: str) -> tuple[list[str], Rows]:
    """Run ``sql`` if :func:`read_only_statement` lets it through, in a read-only session."""
    return store.query(read_only_statement(store, sql), readonly=True)


def _refuse_writes(node: _Node, *, top: bool = False) -> None:
    statement = top or node.kind.startswith(_SELECT_KINDS) or node.kind == "Explain"
    if statement and any(child.kind == "Literal" for child in node.children):
        raise QueryRefused("only reads run here: INTO OUTFILE writes a file")
    if node.kind == "Function":
        name = node.text.split()[1].lower() if len(node.text.split()) > 1 else ""
        if name in DENIED_FUNCTIONS:
            raise QueryRefused(f"only reads of the database run here: the function {name}() reads the server's files")
    for child in node.children:
        _refuse_writes(child)


def _tree(lines: list[str]) -> _Node:
    """EXPLAIN AST's indented lines as a tree."""
    root = _Node(-1, "", "", [])
    stack = [root]
    for line in lines:
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip(" "))
        text = line.strip()
        node = _Node(depth, text.split()[0], text, [])
        while stack[-1].depth >= depth:
            stack.pop()
        stack[-1].children.append(node)
        stack.append(node)
    if not root.children:
        raise QueryRefused("ClickHouse gave no parse of it")
    return root.children[0]
