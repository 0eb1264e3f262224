#!/usr/bin/env bash
# Installs (or upgrades) camera-agent as a systemd service on Debian 12+ / Raspberry Pi OS
# (64-bit, bookworm or newer), exactly as docs/service.md describes by hand. Run it again
# to upgrade: the virtualenv and the unit are replaced; /etc/camera-agent, the state
# directory (keys, index, outbox, audit log, footage) are never touched. docs/install.md.
#
#   sudo ./systemd/install.sh                 # from a checkout: installs this checkout
#   sudo ./systemd/install.sh --source camera-agent-0.2.0-py3-none-any.whl
#
# Options (the last ones are for packagers and tests):
#   --source SPEC     what pip installs (default: the checkout this script is in)
#   --no-setup        do not run `camera-agent setup` when there is no config yet
#   --root DIR        install under DIR instead of / (implies --no-systemctl --no-packages)
#   --no-systemctl    do not reload, enable or restart the service
#   --no-packages     do not install Debian packages
# Environment: CAMERA_AGENT_PIP_ARGS, extra arguments for pip (a mirror, --no-deps, ...).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CHECKOUT="$(dirname "$HERE")"
SOURCE="$CHECKOUT"
ROOT=""
RUN_SETUP=1
SYSTEMCTL=1
PACKAGES=1
# Only what the agent needs at run time: PyAV, OpenCV and numpy come as wheels with their
# own FFmpeg and BLAS, so no Chromium, PostgreSQL or GStreamer (those are for the tests).
SYSTEM_PACKAGES=(python3 python3-venv python3-pip ca-certificates)
KEEP_VENVS=2 # the running one and the one before it, to go back by hand

usage() { sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; }
say() { printf 'camera-agent install: %s\n' "$*"; }
die() { printf 'camera-agent install: %s\n' "$*" >&2; exit "${2:-1}"; }

while (($#)); do
  case "$1" in
    --source) SOURCE="${2:?--source needs a value}"; shift 2 ;;
    --root) ROOT="$(realpath -m "${2:?--root needs a directory}")"; SYSTEMCTL=0; PACKAGES=0; shift 2 ;;
    --no-setup) RUN_SETUP=0; shift ;;
    --no-systemctl) SYSTEMCTL=0; shift ;;
    --no-packages) PACKAGES=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option $1 (see --help)" 64 ;;
  esac
done

if [[ -z "$ROOT" && $(id -u) -ne 0 ]]; then
  die "run it as root: sudo $0" 77
fi

# The paths of the install contract (docs/service.md); the unit names them too.
OPT="$ROOT/opt/camera-agent"
VENV_LINK="$OPT/venv"
ETC="$ROOT/etc/camera-agent"
CONFIG="$ETC/config.yaml"
UNIT_DIR="$ROOT/etc/systemd/system"
STATE_LINK="$ROOT/var/lib/camera-agent"
STATE_PRIVATE="$ROOT/var/lib/private/camera-agent"

# --- 1. system packages ------------------------------------------------------------------
if ((PACKAGES)); then
  missing=()
  for pkg in "${SYSTEM_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if ((${#missing[@]})); then
    say "installing Debian packages: ${missing[*]}"
    # A fresh Pi runs unattended-upgrades at first boot: wait for its lock.
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
      --no-install-recommends "${missing[@]}"
  fi
  systemd_version="$(systemctl --version 2>/dev/null | awk 'NR==1 {print $2}')"
  if [[ -n "$systemd_version" && "$systemd_version" -lt 252 ]]; then
    say "warning: systemd $systemd_version is older than 252 (Debian 12); the unit may not load"
  fi
fi
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die "needs Python 3.11 or newer (Debian 12 / Raspberry Pi OS bookworm has it)" 69

# --- 2. a new virtualenv, switched to in one step -------------------------------------------
# Each install gets its own venv-<time> folder and /opt/camera-agent/venv points at the
# newest: scripts in a venv name its path, so a venv cannot be built elsewhere and moved,
# and the running service keeps its files until it is restarted. A failed install leaves
# the link, and so the working version, as it was.
install -d -m 0755 "$OPT"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
NEW_VENV="$OPT/venv-$stamp"
[[ -e "$NEW_VENV" ]] && NEW_VENV="$NEW_VENV-$$"
say "creating $NEW_VENV"
python3 -m venv "$NEW_VENV"
trap 'rm -rf "$NEW_VENV"' ERR
# An owner's PYTHONPATH must not leak into what the service runs.
read -r -a pip_args <<<"${CAMERA_AGENT_PIP_ARGS:-}"
env -u PYTHONPATH "$NEW_VENV/bin/python" -m pip install --quiet --upgrade \
  "${pip_args[@]}" "$SOURCE"
"$NEW_VENV/bin/camera-agent" --version >/dev/null
trap - ERR
if [[ -d "$VENV_LINK" && ! -L "$VENV_LINK" ]]; then
  # A venv installed by hand (docs/service.md) is replaced by the link.
  mv "$VENV_LINK" "$OPT/venv-manual-$stamp"
fi
ln -sfn "$(basename "$NEW_VENV")" "$OPT/.venv-next"
mv -T "$OPT/.venv-next" "$VENV_LINK"
say "installed $("$VENV_LINK/bin/camera-agent" --version) in $VENV_LINK"
# Keep the newest few; never the one the link names.
mapfile -t old < <(find "$OPT" -maxdepth 1 -name 'venv-*' -type d -printf '%f\n' | sort -r)
for name in "${old[@]:$KEEP_VENVS}"; do
  [[ "$name" == "$(basename "$NEW_VENV")" ]] || rm -rf "${OPT:?}/$name"
done

# The unit's Documentation= and the example config, for the owner.
install -d -m 0755 "$OPT/docs"
install -m 0644 "$CHECKOUT"/docs/*.md "$OPT/docs/"
install -m 0644 "$CHECKOUT/config.example.yaml" "$OPT/config.example.yaml"

# --- 3. the unit ----------------------------------------------------------------------------
install -d -m 0755 "$UNIT_DIR"
install -m 0644 "$CHECKOUT/systemd/camera-agent.service" "$UNIT_DIR/camera-agent.service"

# --- 4. configuration and state directories ---------------------------------------------
install -d -m 0755 "$ETC"
# DynamicUser=yes keeps the state in /var/lib/private/camera-agent behind the link
# /var/lib/camera-agent; systemd makes both at first start. Made here the same way so that
# setup can write the device key and passwords before that; systemd then hands the folder
# to the service's user. An existing state directory is left exactly as it is.
if [[ ! -e "$STATE_LINK" && ! -L "$STATE_LINK" ]]; then
  install -d -m 0700 "$(dirname "$STATE_PRIVATE")"
  install -d -m 0700 "$STATE_PRIVATE"
  ln -s "private/camera-agent" "$STATE_LINK"
fi

# --- 5. the config: asked for once, checked on every upgrade -----------------------------
if [[ ! -e "$CONFIG" ]]; then
  if ((RUN_SETUP)); then
    "$VENV_LINK/bin/camera-agent" setup --config "$CONFIG" || die "setup did not finish; run it again: sudo $0" 78
  else
    say "no config yet: write it with  sudo $VENV_LINK/bin/camera-agent setup"
    say "(then run this installer again, or: systemctl enable --now camera-agent)"
    exit 0
  fi
fi
if ! "$VENV_LINK/bin/camera-agent" check --config "$CONFIG"; then
  die "the config has errors (above); fix $CONFIG, then run: systemctl restart camera-agent" 78
fi

# --- 6. start, or restart on the new version ----------------------------------------------
if ((SYSTEMCTL)); then
  systemctl daemon-reload
  systemctl enable camera-agent.service
  systemctl restart camera-agent.service
  say "camera-agent is running: systemctl status camera-agent; journalctl -u camera-agent -f"
else
  say "installed under ${ROOT:-/}; systemctl not run"
fi
