#!/usr/bin/env bash
# Installs the Debian / Raspberry Pi OS packages the agent, its demo and its tests need,
# only when some are missing. Uses sudo when not run as root.
set -euo pipefail

PACKAGES=(
  python3 python3-venv python3-pip   # the agent's virtual environment
  mosquitto mosquitto-clients         # a local broker and mosquitto_sub for the demo and tests
  python3-gi python3-numpy gir1.2-gst-rtsp-server-1.0 gstreamer1.0-tools
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly  # the simulated RTSP camera (x264enc is in -ugly)
  gstreamer1.0-x                      # timeoverlay (pango), the clock the live scene shows
  openssl                             # test certificates for TLS
  systemd                             # systemd-analyze checks the unit's hardening
  chromium                            # the registry's pages are tested in a real browser
  postgresql                          # the registry's second database engine (tests use both)
  gcc libc6-dev                       # the clock-step tests build a wall-clock shifter (LD_PRELOAD)
  palapeli-data python3-pywt          # real photographs for the diagnosis corpus's fourth held-out part
  iproute2                            # 'ip netns': the discover tests' two hosts (multicast skips loopback)
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
# The tests run the official tus server (@tus/server, Node.js >= 20.19, npm). Debian 12's
# own nodejs is 18: take Node.js 20 or newer from nodejs.org or NodeSource.
if ! node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a==20&&b>=19)?0:1)' 2>/dev/null \
   || ! command -v npm >/dev/null; then
  echo "note: the tests need Node.js >= 20.19 with npm (for the tus test server); not found" >&2
fi

if ((${#missing[@]} == 0)); then
  exit 0
fi
echo "installing system packages: ${missing[*]}"
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
# Another apt run (unattended-upgrades on a fresh Pi) may hold the lock: wait for it.
APT=($SUDO apt-get -o DPkg::Lock::Timeout=600)
"${APT[@]}" update -qq
DEBIAN_FRONTEND=noninteractive "${APT[@]}" install -y -qq --no-install-recommends "${missing[@]}"
