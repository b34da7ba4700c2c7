#!/usr/bin/env bash
# Installs everything mirrorscope needs on a fresh Debian 12 machine (as root), idempotently.
# A second run only checks: dpkg for the system packages, a stamp for the virtualenv.
set -euo pipefail
cd "$(dirname "$0")/.."

# Real parts the lab, the tests, the demo and the benchmark run: OVS (userspace datapath), namespaces
# and links, traffic programs, dissectors, collectors and a Prometheus server to scrape us.
DEB_PACKAGES=(
  openvswitch-switch openvswitch-common iproute2 ethtool procps psmisc curl iputils-ping bind9-dnsutils
  libpcap0.8 tcpdump tshark
  iperf3 qperf wrk nginx-light dnsmasq-base netsniff-ng
  nfdump softflowd prometheus nmap hping3
  chromium
  python3 python3-venv python3-dev gcc
)
# Not in Debian 12's own archive (it comes from Kubernetes' or a cloud vendor's repository, which
# this machine image carries): installed when apt can find it, otherwise the kubectl plugin's tests
# say they were skipped for lack of it.
OPTIONAL_PACKAGES=(kubectl)

missing=()
for p in "${DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "bootstrap: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
for p in "${OPTIONAL_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" && continue
  apt-get install -y -q --no-install-recommends "$p" >/dev/null 2>&1 \
    || echo "bootstrap: optional package $p is not available here (its tests will be skipped)"
done

# Debian's packages start system daemons we never use (our labs run private ones); keep them from
# holding ports or the default OVSDB socket a user might point mirrorctl at by mistake.
for svc in prometheus nginx; do
  if pgrep -x "$svc" >/dev/null 2>&1 && command -v service >/dev/null; then service "$svc" stop >/dev/null 2>&1 || true; fi
done

PY=${PYTHON:-python3}
stamp_want="$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -x .venv/bin/python ] || [ "$(cat .venv/.mirrorscope-stamp 2>/dev/null)" != "$stamp_want" ]; then
  echo "bootstrap: preparing .venv"
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[dev]'
  echo "$stamp_want" > .venv/.mirrorscope-stamp
fi
echo "bootstrap: ok"
