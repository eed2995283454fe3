#!/usr/bin/env python3
"""Finds import circles between the modules of each crate of the workspace.

A module is a top-level module of a crate's `src/` (`src/rest/` and everything below it is
`rest`; `src/rest.rs` too), or, inside one, its direct children (`rest::sse`). It depends on
another when its code names it through a `crate::` path (`use crate::state::AppState`,
`crate::error::Problem::new(..)`) or a relative one that resolves to it (`super::store::Row`
in `jobs/grpc.rs` names `jobs::store`; `self::` likewise). A circle is a strongly connected set of two or more
modules of one level: each reaches every other through such paths, so none can be read,
tested or moved without the others. Code under `#[cfg(test)]` and comments (doc links) are
ignored.

Usage: tools/module_cycles.py [crate dir ...] (default: every workspace crate). Prints each
circle and exits 1 when there is one; .ci/run runs it, so none comes back (issue 22, point 3)."""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NAME = r"[a-z_][a-z0-9_]*"
# `crate::a::b`, `super::super::a`, `self::a`: the anchor, then the names after it.
ANCHORED_PATH = re.compile(rf"\b(crate::|(?:super::)+|self::)((?:{NAME}::)*{NAME})")
USE_GROUP = re.compile(r"\buse\s+(crate::|(?:super::)+|self::)\{([^;]*)\};", re.S)


def crates():
    for manifest in sorted(ROOT.glob("**/Cargo.toml")):
        skipped = {"target", "node_modules", ".git"}
        if skipped & set(manifest.relative_to(ROOT).parts) or manifest.parent == ROOT:
            continue
        if (manifest.parent / "src").is_dir():
            yield manifest.parent


def without_tests(text):
    """The source without `#[cfg(test)]` items (a module block or one item)."""
    out, index = [], 0
    for match in re.finditer(r"#\[cfg\(test\)\]", text):
        if match.start() < index:
            continue
        out.append(text[index : match.start()])
        # Skip to the end of the item: the matching brace of its first block, or a `;`.
        position, depth = match.end(), 0
        while position < len(text):
            char = text[position]
            if char == "{":
                depth += 1
            elif char == "}":
                depth -= 1
                if depth == 0:
                    position += 1
                    break
            elif char == ";" and depth == 0:
                position += 1
                break
            position += 1
        index = position
    out.append(text[index:])
    return "".join(out)


def without_comments(text):
    """The source without line comments (doc links name modules without depending on them)."""
    return re.sub(r"//[^\n]*", "", text)


def module_of(src, path):
    """The module path of a source file: `rest/sse.rs` is ["rest", "sse"]."""
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return parts


def resolved(anchor, names, module):
    """The crate-absolute path `anchor` + `names` stands for in a file of module `module`.

    `super::` is the parent of the module the file is (for `rest/mod.rs`, module `rest`, the
    crate root; for `rest/sse.rs`, `rest`); `self::` is that module. None when it climbs
    above the crate root.
    """
    if anchor == "crate::":
        return names
    here = list(module)
    if anchor == "self::":
        return here + names
    climbs = anchor.count("super::")
    if climbs > len(here):
        return None
    return here[: len(here) - climbs] + names


def referenced_paths(text, module):
    """Every module path the source names (`crate::a::b`, `super::a`, `self::a`), as a
    crate-absolute list, groups (`use crate::{a, b::c}`) expanded."""
    found = []
    for match in ANCHORED_PATH.finditer(text):
        found.append((match.group(1), match.group(2).split("::")))
    for group in USE_GROUP.finditer(text):
        for item in re.split(r",(?![^{]*\})", group.group(2)):
            head = item.strip().split("::")[0].strip("{} \n")
            if re.fullmatch(NAME, head or "") and head not in ("self", "super", "crate"):
                rest = [p.strip("{} \n") for p in item.strip().split("::")[1:2] if p]
                found.append((group.group(1), [head] + rest))
    for anchor, names in found:
        path = resolved(anchor, names, module)
        if path:
            yield path


def edges_at(src, parent):
    """Dependencies between the children of module `parent` ([] for the crate root)."""
    depth = len(parent)
    edges = {}
    for path in src.rglob("*.rs"):
        module = module_of(src, path)
        if len(module) <= depth or module[:depth] != parent:
            continue
        here = module[depth]
        text = without_comments(without_tests(path.read_text()))
        for target in referenced_paths(text, module):
            if len(target) <= depth or target[:depth] != parent:
                continue
            there = target[depth]
            if there != here:
                edges.setdefault(here, set()).add(there)
    return edges


def circles(edges):
    """Strongly connected components of two or more nodes (Tarjan)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(edges.get(node, ())):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    nodes = set(edges) | {n for targets in edges.values() for n in targets}
    for node in sorted(nodes):
        if node not in index:
            visit(node)
    return found


def main():
    targets = [Path(arg).resolve() for arg in sys.argv[1:]] or list(crates())
    problems = []
    for crate in targets:
        src = crate / "src"
        parents = [[]] + [
            [child.stem if child.is_file() else child.name]
            for child in src.iterdir()
            if child.is_dir()
        ]
        for parent in parents:
            for circle in circles(edges_at(src, parent)):
                where = "::".join(parent)
                scope = f"{crate.relative_to(ROOT)}" + (f" (in {where})" if where else "")
                problems.append(f"{scope}: {' <-> '.join(circle)}")
    for problem in problems:
        print(problem)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
