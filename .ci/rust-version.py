#!/usr/bin/env python3
"""Checks that every publishable crate's `rust-version` is true.

A crate's true minimum is the highest `rust-version` declared by what it builds on: its
normal and build dependencies, transitively (dev-dependencies are not built by its users),
as `cargo metadata` resolves them for this machine's target. The declared value must not be
lower (users on that toolchain would fail to build it); a higher one is reported, since
it turns users away for nothing.

The resolution is the workspace's: features other workspace members enable are included,
so the result can only overstate a crate's needs, never understate them.

    python3 .ci/rust-version.py          # exits 1 if a declared rust-version is too low
"""

import json
import subprocess
import sys


def version_key(text):
    return tuple(int(part) for part in text.split("."))


def normalize(text):
    """`1.89` and `1.89.0` are the same minimum."""
    parts = text.split(".")
    return ".".join((parts + ["0", "0"])[:3])


def main():
    host = next(
        line.split(": ", 1)[1]
        for line in subprocess.run(["rustc", "-vV"], check=True, capture_output=True, text=True).stdout.splitlines()
        if line.startswith("host: ")
    )
    metadata = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--locked", "--filter-platform", host],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    packages = {package["id"]: package for package in metadata["packages"]}
    nodes = {node["id"]: node for node in metadata["resolve"]["nodes"]}

    def used_by(root):
        """Every package `root` builds on, itself excluded."""
        seen, stack = set(), [root]
        while stack:
            for dep in nodes[stack.pop()]["deps"]:
                kinds = {kind["kind"] for kind in dep["dep_kinds"]}
                if kinds & {None, "build"} and dep["pkg"] not in seen:
                    seen.add(dep["pkg"])
                    stack.append(dep["pkg"])
        return seen

    failed = False
    for member in metadata["workspace_members"]:
        package = packages[member]
        if package.get("publish") == []:
            continue
        declared = package.get("rust_version")
        needs = [
            (normalize(packages[dep]["rust_version"]), packages[dep]["name"], packages[dep]["version"])
            for dep in used_by(member)
            if packages[dep].get("rust_version")
        ]
        if not needs:
            print(f"{package['name']}: no dependency declares a rust-version (declared: {declared})")
            continue
        highest = max(needs, key=lambda need: version_key(need[0]))
        reason = f"{highest[1]} {highest[2]} needs {highest[0]}"
        if declared is None:
            print(f"error: {package['name']} declares no rust-version; {reason}", file=sys.stderr)
            failed = True
        elif version_key(normalize(declared)) < version_key(highest[0]):
            print(f"error: {package['name']} declares rust-version {declared}, but {reason}", file=sys.stderr)
            failed = True
        elif version_key(normalize(declared)) > version_key(highest[0]):
            print(f"note: {package['name']} declares rust-version {declared}, higher than needed ({reason})")
        else:
            print(f"{package['name']}: rust-version {declared} ({reason})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
