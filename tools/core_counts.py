#!/usr/bin/env python3
"""The counts issue 22 tracks, read off the source: how loosely the domain is typed.

- bare-Uuid ids: parameters, fields and tuple elements typed `Uuid`, `Option<Uuid>` or
  `Vec<Uuid>` in the services' and platform's non-test code (an id newtype wraps a Uuid once,
  in `uuid_id!`, and is not counted);
- String states: fields and bindings named …status/kind/state/channel typed `String`;
- string tenant and user ids: `tenant_id`/`user_id` typed `String` or `&str`;
- `Result<_, String>`: functions and types returning a bare string as their error;
- circles: `tools/module_cycles.py`'s count;
- test binaries: `tools/test_binaries.py`'s total; test files over 800 lines.

Heuristic (regular expressions over the text), stable enough to compare a before and an after.
Usage: python3 tools/core_counts.py"""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE_DIRS = ["services", "platform", "gateway"]
BARE_UUID = re.compile(r"\b\w+\s*:\s*(?:&)?(?:Option<|Vec<)?Uuid\b|\((?:\s*Uuid\s*,)+|,\s*Uuid\s*\)")
STRING_STATE = re.compile(r"\b\w*(?:status|kind|state|channel)\s*:\s*String\b")
STRING_CALLER = re.compile(r"\b(?:tenant_id|user_id)\s*:\s*&?(?:String|str)\b")


def source_files():
    for top in SOURCE_DIRS:
        for path in sorted((ROOT / top).rglob("*.rs")):
            parts = set(path.relative_to(ROOT).parts)
            if "tests" in parts or "target" in parts or path.name == "domain_id.rs":
                continue
            yield path


def without_tests(text):
    cut = text.find("#[cfg(test)]\nmod tests")
    return text if cut < 0 else text[:cut]


def count(pattern):
    return sum(len(pattern.findall(without_tests(p.read_text()))) for p in source_files())


def string_errors(text):
    """`Result<T, String>` types in `text`: the last top-level argument of a `Result<…>`."""
    found = 0
    for start in (m.end() for m in re.finditer(r"\bResult<", text)):
        depth, args, current = 1, [], ""
        for char in text[start:]:
            if char == "<":
                depth += 1
            elif char == ">":
                depth -= 1
                if depth == 0:
                    break
            if char == "," and depth == 1:
                args.append(current)
                current = ""
            else:
                current += char
        args.append(current)
        found += len(args) == 2 and args[1].strip() == "String"
    return found


def main():
    circles = subprocess.run(
        [sys.executable, str(ROOT / "tools/module_cycles.py")], capture_output=True, text=True
    ).stdout.strip().splitlines()
    binaries = subprocess.check_output(
        [sys.executable, str(ROOT / "tools/test_binaries.py"), "--total"], text=True
    ).split()[-1]
    long_tests = [
        path
        for path in ROOT.rglob("*.rs")
        if "tests" in path.relative_to(ROOT).parts
        and not {"target", "node_modules"} & set(path.relative_to(ROOT).parts)
        and len(path.read_text().splitlines()) > 800
    ]
    print(f"bare-Uuid ids             {count(BARE_UUID)}")
    print(f"String states             {count(STRING_STATE)}")
    print(f"string tenant/user ids    {count(STRING_CALLER)}")
    print(f"Result<_, String>         {sum(string_errors(without_tests(p.read_text())) for p in source_files())}")
    print(f"import circles            {len([c for c in circles if '<->' in c])}")
    print(f"test binaries             {binaries}")
    print(f"test files > 800 lines    {len(long_tests)}")


if __name__ == "__main__":
    main()
