#!/usr/bin/env python3
"""Counts the test binaries `cargo test --workspace` builds: every target cargo tests by
default (libraries, binaries and integration tests with `test = true`), per crate.

Each binary links the crate's whole dependency graph, so their number weighs on the build
time of the test suite; issue 22 tracks it. Usage: python3 tools/test_binaries.py [--total]"""

import json
import subprocess
import sys


def main():
    metadata = json.loads(
        subprocess.check_output(["cargo", "metadata", "--no-deps", "--format-version", "1"])
    )
    total = 0
    for package in sorted(metadata["packages"], key=lambda p: p["name"]):
        tested = [t for t in package["targets"] if t.get("test", False)]
        total += len(tested)
        if "--total" not in sys.argv:
            kinds = {}
            for target in tested:
                kind = target["kind"][0]
                kinds[kind] = kinds.get(kind, 0) + 1
            print(f"{package['name']:28} {len(tested):4}  {kinds}")
    print(f"{'total':28} {total:4}")


if __name__ == "__main__":
    main()
