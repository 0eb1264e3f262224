#!/usr/bin/env bash
# The local demo: a broker, a simulated RTSP camera and the agent, all on this machine,
# with the registry's view (every MQTT message) printed as it arrives. Ctrl-C stops it all.
#
#   bash agent/demo/demo.sh            # installs what is missing, then runs
#
# The simulated camera shows a street scene with people, cars and sensor noise. Spoil
# it from another terminal while the demo runs (the exact command is printed below):
#   echo covered > /tmp/camera-agent-demo.XXXX/camera.ctl
# with any of: covered blurred too_dark too_bright low_contrast colour_cast noisy
# frozen moved clear.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$(pwd)

bash agent/demo/install-system-packages.sh
echo "installing the agent into .venv"
[[ -x .venv/bin/pip ]] || python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q .

BROKER_PORT=${DEMO_BROKER_PORT:-18830}
CAMERA_PORT=${DEMO_CAMERA_PORT:-18554}
WORK=$(mktemp -d /tmp/camera-agent-demo.XXXXXX)
pids=()
cleanup() {
  # newest first: the agent says goodbye to the broker before the broker goes
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
  echo "demo stopped; its files are in $WORK"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

cat > "$WORK/mosquitto.conf" <<CONF
listener $BROKER_PORT 127.0.0.1
allow_anonymous true
persistence false
log_dest stderr
CONF
mosquitto -c "$WORK/mosquitto.conf" 2> "$WORK/mosquitto.log" & pids+=($!)

/usr/bin/python3 agent/demo/rtsp_camera.py --port "$CAMERA_PORT" --path /cam \
  --width 1280 --height 720 --fps 10 --scene synthetic --control "$WORK/camera.ctl" \
  > "$WORK/camera.log" 2>&1 &
pids+=($!)

cat > "$WORK/config.yaml" <<CONF
# The demo's config: see config.example.yaml for every key.
agent:
  id: demo-shop
  data_dir: $WORK/state
registry:
  broker: mqtt://127.0.0.1:$BROKER_PORT
  health_interval: 15s
clock:
  require_sync: false
cameras:
  - id: front
    name: Demo camera (simulated)
    url: rtsp://127.0.0.1:$CAMERA_PORT/cam
    location: {lat: 52.9925, lon: 6.5649, bearing_deg: 180, fov_deg: 90, range_m: 25}
    expect: {min_fps: 8, min_width: 1280}
    analysis_interval: 2s
CONF

for _ in $(seq 50); do
  grep -q READY "$WORK/camera.log" 2>/dev/null && break
  sleep 0.2
done
.venv/bin/camera-agent check --config "$WORK/config.yaml"
.venv/bin/camera-agent run --config "$WORK/config.yaml" > "$WORK/agent.log" 2>&1 & pids+=($!)

cat <<MSG

Demo running (files in $WORK):
  broker   mqtt://127.0.0.1:$BROKER_PORT
  camera   rtsp://127.0.0.1:$CAMERA_PORT/cam   (pid ${pids[1]}: kill it to see 'offline')
  agent    log in $WORK/agent.log                (pid ${pids[2]})

Spoil the camera's picture from another terminal and watch its health change:
  echo covered > $WORK/camera.ctl      (or blurred, too_dark, too_bright, low_contrast,
                                        colour_cast, noisy, frozen, moved; 'clear' undoes)
The agent takes its reference view after 6 healthy samples (12 s here); 'moved' needs one.
Below: every message the registry would receive. Ctrl-C stops the demo.

MSG
mosquitto_sub -h 127.0.0.1 -p "$BROKER_PORT" -v -t 'camreg/v1/#'
