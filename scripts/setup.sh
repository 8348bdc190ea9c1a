#!/usr/bin/env bash
# Installs everything Airlock needs on a fresh Debian/Ubuntu host, then builds it.
#   bash scripts/setup.sh            system packages + npm ci + build
#   bash scripts/setup.sh --system   system packages only
# System packages: bubblewrap (the sandbox), util-linux (setpriv), git (checkouts), iproute2 and
# nftables (per-job networks), tar, curl (the egress e2e tests fetch with it inside jobs).
# Needs root for apt-get; skips what is already installed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
packages=(bubblewrap util-linux git iproute2 nftables tar ca-certificates curl)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: these system packages are missing: ${missing[*]}; run this script as root (or install them with apt-get)" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Unprivileged user namespaces: bubblewrap runs jobs as an unprivileged uid and needs them.
if [ -f /proc/sys/kernel/unprivileged_userns_clone ] && [ "$(cat /proc/sys/kernel/unprivileged_userns_clone)" = 0 ]; then
  if [ "$(id -u)" = 0 ]; then sysctl -qw kernel.unprivileged_userns_clone=1; else echo "setup: enable kernel.unprivileged_userns_clone=1" >&2; fi
fi
if [ -f /proc/sys/kernel/apparmor_restrict_unprivileged_userns ] && [ "$(cat /proc/sys/kernel/apparmor_restrict_unprivileged_userns)" = 1 ]; then
  if [ "$(id -u)" = 0 ]; then sysctl -qw kernel.apparmor_restrict_unprivileged_userns=0; else echo "setup: set kernel.apparmor_restrict_unprivileged_userns=0" >&2; fi
fi

[ "${1:-}" = "--system" ] && exit 0

cd "$root"
echo "setup: npm ci" >&2
npm ci --no-audit --no-fund --loglevel=error
echo "setup: build" >&2
npm run --silent build
echo "setup: done; try: npm run demo" >&2
