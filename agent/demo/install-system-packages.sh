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
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
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
