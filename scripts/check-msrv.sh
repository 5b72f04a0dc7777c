#!/usr/bin/env bash
# Fails if a package that valkey-client needs to build (normal and build
# dependencies, every optional feature on, every target platform) declares
# a `rust-version` above valkey-client's own. Only the newest toolchains are
# installed here, so the MSRV cannot be checked by building with it; this
# keeps the promise on the dependencies' side, and clippy's
# `incompatible_msrv` lint (denied in Cargo.toml) on ours.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 - <<'PY'
import json
import subprocess
import sys

ROOT = "valkey-client"
meta = json.loads(subprocess.run(
    ["cargo", "metadata", "--format-version", "1", "--all-features", "--locked"],
    check=True, stdout=subprocess.PIPE).stdout)
packages = {p["id"]: p for p in meta["packages"]}
nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}

def version(text):
    return tuple(int(part) for part in text.split("."))

root = next(p for p in meta["packages"]
            if p["name"] == ROOT and p["id"] in meta["workspace_members"])
msrv = root["rust_version"]
if not msrv:
    sys.exit(f"{ROOT} declares no rust-version")

# Normal and build edges only: dev-dependencies are not built by users.
seen, todo = set(), [root["id"]]
while todo:
    pid = todo.pop()
    if pid in seen:
        continue
    seen.add(pid)
    for dep in nodes[pid]["deps"]:
        if any(k["kind"] in (None, "build") for k in dep["dep_kinds"]):
            todo.append(dep["pkg"])

too_new = []
for pid in sorted(seen, key=lambda i: packages[i]["name"]):
    p = packages[pid]
    needs = p.get("rust_version")
    if needs and version(needs) > version(msrv):
        too_new.append(f"  {p['name']} {p['version']} needs Rust {needs}")

if too_new:
    print(f"{ROOT} promises Rust {msrv}, but these dependencies need more:")
    print("\n".join(too_new))
    print("Raise rust-version in Cargo.toml, or pin the dependency "
          "(cargo update -p NAME --precise VERSION).")
    sys.exit(1)
print(f"MSRV check: the {len(seen) - 1} dependencies of {ROOT} build with Rust {msrv}")
PY
