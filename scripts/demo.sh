#!/usr/bin/env bash
# Runs the bundled example end to end on the embedded store: makes examples/hello-node a git
# repository of its own (a fresh copy, committed), registers it as example/hello-node, and runs
# its workflow in sandboxes. Safe to run again: each run commits the current example files.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
airlock="node $root/bin/airlock.js"
data=${AIRLOCK_DATA_DIR:-}
src=${AIRLOCK_DEMO_SOURCE:-${data:-$([ "$(id -u)" = 0 ] && echo /var/lib/airlock || echo "$HOME/.airlock")}/demo-sources/hello-node}

mkdir -p "$src"
if [ ! -d "$src/.git" ]; then
  git -C "$src" init -q -b main
fi
find "$src" -mindepth 1 -maxdepth 1 ! -name .git -exec rm -rf {} +
cp -a "$root/examples/hello-node/." "$src/"
git -C "$src" add -A
git -C "$src" -c user.name=airlock-demo -c user.email=demo@airlock.invalid commit -q -m "hello-node example" --allow-empty

if ! $airlock repo list | grep -q '^example/hello-node '; then
  $airlock repo add example/hello-node --source "$src" --protected-branch main
fi
exec $airlock run example/hello-node --ref main "$@"
