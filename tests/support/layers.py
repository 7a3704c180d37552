"""The architecture's rules, checked on the source: layers, pure modules, no import circles,
names that say one thing, folders that stay small.

An AST walk, no import of the checked code: every `import` counts wherever it stands (at the
top, inside a function, under `if TYPE_CHECKING:`), because a circle or an upward import hidden
in one of those still ties the modules together. The rules themselves (the layer order, which
modules are pure) are data passed in, so the tests can plant a violation in a scratch tree and
watch the checker catch it.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# Bottom to top; a package may import from its own level and below. The leaves share one level.
LAYERS: tuple[frozenset[str], ...] = tuple(
    frozenset(level.split())
    for level in (
        "vocabulary calendars durations signing clock times runtime",
        "inbound",
        "config",
        "workflow",
        "store",
        "sla",
        "safety",
        "notify",
        "desk",
        "sources",
        "daemon",
        "cli",
        "__main__",
    )
)

# Modules with no I/O: packages given whole, else single modules (dotted, under the package).
PURE = (
    "vocabulary",
    "calendars",
    "durations",
    "signing",
    "clock",
    "times",
    "inbound",
    "workflow",
    "sla.clocks",
    "sla.timeline",
    "sla.ladder",
    "notify.recipients",
    "notify.context",
    "notify.readers",
    "notify.formats",
    "notify.templates",
    "notify.letter",
)
# What a pure module may not import, directly or through another module of the package.
IMPURE_LIBRARIES = ("sqlalchemy", "imapclient", "aiosmtplib", "smtplib", "socket")
IMPURE_PACKAGES = ("store", "desk", "sources", "daemon", "cli")

MAX_MODULES_PER_FOLDER = 15


@dataclass(frozen=True, slots=True)
class Module:
    name: str  # dotted, relative to the package root: "desk.mail", "clock", "cli" (__init__)
    path: Path
    imports: tuple[str, ...]  # absolute dotted names, as written (the package's own prefixed)


def read_package(root: Path) -> dict[str, Module]:
    """Every module under `root` (a package folder), keyed by its dotted name below it."""
    package = root.name
    modules: dict[str, Module] = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if "migrations" in parts:  # alembic's scripts, loaded by alembic, not imported
            continue
        name = ".".join(p for p in parts if p != "__init__")
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        own = ".".join((package, *parts[:-1])) if parts[-1] == "__init__" else None
        modules[name] = Module(name, path, tuple(_imports(tree, package, name, own)))
    return modules


def _imports(tree: ast.AST, package: str, name: str, own: str | None) -> Iterator[str]:
    """`import a.b` gives a.b; `from a import b` gives a.b (b may be a module or a name)."""
    here = own or ".".join((package, *name.split(".")[:-1]))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's own package upwards
                parts = here.split(".")
                anchor = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{anchor}.{base}" if base else anchor
            yield from (f"{base}.{alias.name}" for alias in node.names)


def internal_graph(modules: Mapping[str, Module], package: str) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (`from pkg.a import b` names pkg.a.b when b
    is a module, else pkg.a)."""
    graph: dict[str, set[str]] = {}
    prefix = package + "."
    for name, module in modules.items():
        targets = set()
        for imported in module.imports:
            if imported == package or not imported.startswith(prefix):
                continue
            dotted = imported.removeprefix(prefix)
            while dotted and dotted not in modules:
                dotted = dotted.rpartition(".")[0]
            if dotted and dotted != name:
                targets.add(dotted)
        graph[name] = targets
    return graph


def _top(name: str) -> str:
    return name.split(".")[0]


def _rank(layers: Sequence[frozenset[str]]) -> dict[str, int]:
    return {package: level for level, names in enumerate(layers) for package in names}


def upward_imports(
    modules: Mapping[str, Module], package: str, layers: Sequence[frozenset[str]] = LAYERS
) -> list[str]:
    """Imports from a package of a higher layer; a top-level name missing from the layers is
    reported too, so a new package has to be given its place."""
    rank = _rank(layers)
    unplaced = sorted({_top(name) for name in modules if name and _top(name) not in rank})
    found = [f"{top}: has no place in the layers" for top in unplaced]
    for name, targets in sorted(internal_graph(modules, package).items()):
        if not name or _top(name) in unplaced:  # the package's own __init__, or said above
            continue
        for target in sorted(targets):
            if _top(target) in rank and rank[_top(target)] > rank[_top(name)]:
                found.append(f"{name} imports {target}, a layer above it")
    return found


def impure_imports(
    modules: Mapping[str, Module],
    package: str,
    pure: Iterable[str] = PURE,
    libraries: Iterable[str] = IMPURE_LIBRARIES,
    packages: Iterable[str] = IMPURE_PACKAGES,
) -> list[str]:
    """A pure module importing I/O, directly or through any module of the package it imports."""
    graph = internal_graph(modules, package)
    banned_libraries, banned_packages = tuple(libraries), tuple(packages)
    found = []
    for name in sorted(n for n in modules if _is_pure(n, pure)):
        for via in _reachable(graph, name):
            for imported in modules[via].imports:
                top = imported.split(".")[0]
                inner = imported.removeprefix(package + ".")
                bad = top in banned_libraries or (top == package and _top(inner) in banned_packages)
                if bad:
                    path = name if via == name else f"{name} (through {via})"
                    found.append(f"{path} imports {imported}")
                    break
    return sorted(set(found))


def _is_pure(name: str, pure: Iterable[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in pure)


def _reachable(graph: Mapping[str, set[str]], start: str) -> list[str]:
    seen, todo = {start}, [start]
    while todo:
        for nxt in graph[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return sorted(seen)


def circles(modules: Mapping[str, Module], package: str) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan, iterative)."""
    graph = internal_graph(modules, package)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    found.append(sorted(group))
    return sorted(found)


def crowded_folders(root: Path, limit: int = MAX_MODULES_PER_FOLDER) -> list[str]:
    counts: dict[Path, int] = defaultdict(int)
    for path in root.rglob("*.py"):
        if path.name != "__init__.py" and "migrations" not in path.parts:
            counts[path.parent] += 1
    return [f"{folder}: {n} modules" for folder, n in sorted(counts.items()) if n > limit]


def look_alike_names(root: Path) -> list[str]:
    """Siblings (modules and packages of one folder) whose names differ only by an ending
    (escalation/escalator, notice/notices) or where one abbreviates the other (msg/message)."""
    found = []
    folders = {root, *(p.parent for p in root.rglob("*.py") if "migrations" not in p.parts)}
    for folder in sorted(folders):
        names = sorted(
            p.stem if p.is_file() else p.name
            for p in folder.iterdir()
            if (p.suffix == ".py" and p.stem != "__init__")
            or (p.is_dir() and (p / "__init__.py").exists())
        )
        for i, first in enumerate(names):
            for second in names[i + 1 :]:
                if _alike(first, second):
                    found.append(f"{folder}: {first} / {second}")
    return found


def _alike(first: str, second: str) -> bool:
    """The same word with another ending (escalation/escalator: a long shared beginning), or
    one name's letters, in order, inside the other from its first letter on (automail /
    automatic_mail, clock/clocks)."""
    a, b = sorted((first.replace("_", "").lower(), second.replace("_", "").lower()), key=len)
    shared = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), len(a))
    if shared >= 5 and shared >= 0.7 * len(a):
        return True
    return len(a) >= 3 and a[0] == b[0] and _subsequence(a, b)


def _subsequence(short: str, long: str) -> bool:
    letters = iter(long)
    return all(ch in letters for ch in short)


def names_defined_twice(
    modules: Mapping[str, Module], rows: Iterable[str] = ("store.db",)
) -> list[str]:
    """Public classes and type aliases (capitalised module-level names) defined in more than
    one module: one name, one thing. The ORM models (`rows`) are left out: a table is named
    after the thing it stores (db.Attachment keeps an inbound Attachment)."""
    where: dict[str, list[str]] = defaultdict(list)
    skipped = set(rows)
    for name, module in modules.items():
        if name in skipped:
            continue
        tree = ast.parse(module.path.read_text(encoding="utf-8"))
        for node in tree.body:
            for defined in _defined(node):
                if re.fullmatch(r"[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)*", defined):
                    where[defined].append(name)
    return [f"{n}: {', '.join(sorted(m))}" for n, m in sorted(where.items()) if len(m) > 1]


def _defined(node: ast.stmt) -> Iterator[str]:
    if isinstance(node, ast.ClassDef):
        yield node.name
    elif isinstance(node, ast.Assign):
        yield from (t.id for t in node.targets if isinstance(t, ast.Name))
    elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        yield node.target.id
