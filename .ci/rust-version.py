#!/usr/bin/env python3
"""Checks that every publishable crate's `rust-version` is true.

A crate's true minimum is the highest `rust-version` declared by what it builds on: its
normal and build dependencies, transitively (dev-dependencies are not built by its users).
`cargo metadata` gives every package's declared `rust-version`; which packages a crate
builds on is asked of `cargo tree -p <crate>`, which resolves features for that crate alone
(not unified with the other workspace members), once with its default features and once
with all of them (a user may enable any), for this machine's target. The declared value
must not be lower (users on that toolchain would fail to build it); a higher one is
reported, since it turns users away for nothing.

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
            ["cargo", "metadata", "--format-version", "1", "--locked", "--all-features", "--filter-platform", host],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    packages = {package["id"]: package for package in metadata["packages"]}
    by_name_version = {(package["name"], package["version"]): package["id"] for package in metadata["packages"]}

    def used_by(root):
        """Every package `root` builds on, itself excluded, with default or all features."""
        name = packages[root]["name"]
        seen = set()
        for features in ([], ["--all-features"]):
            tree = subprocess.run(
                ["cargo", "tree", "--locked", "-p", name, "-e", "normal,build", "--prefix", "none",
                 "--format", "{p}", *features],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            for line in tree.splitlines():
                dep_name, version = line.split()[:2]
                seen.add(by_name_version[(dep_name, version.removeprefix("v"))])
        seen.discard(root)
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
