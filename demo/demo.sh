#!/usr/bin/env bash
# The local demo, the whole system on this machine: mosquitto with passwords and the
# documented ACL, a simulated RTSP camera, the registry (SQLite) with its dashboard, and
# the agent, which enrols with a one-time code. After a minute of footage a police
# officer signs an order for the last few minutes; the agent uploads the originals and
# the registry verifies them. Then the officer sends a voluntary request, which waits for
# the owner: log in to the owner page (its password is printed) and approve it there.
# The agent's notifications go to a local notice board that prints each one here.
# Ctrl-C stops it all.
#
#   bash demo/demo.sh                  # installs what is missing, then runs
#
# The simulated camera shows a street scene with people, cars and sensor noise. Spoil
# it from another terminal while the demo runs (the exact command is printed below):
#   echo covered > /tmp/camera-agent-demo.XXXX/camera.ctl
# with any of: covered blurred too_dark too_bright low_contrast colour_cast noisy
# frozen moved clear.
#
# Settings (environment): DEMO_ORDER_AFTER (seconds of footage before the order, 60),
# DEMO_ORDER_MINUTES (3), DEMO_BROKER_PORT, DEMO_CAMERA_PORT, DEMO_REGISTRY_PORT,
# DEMO_OWNER_PORT (the owner page, 18081), DEMO_NOTIFY_PORT (the notice board, 18082);
# DEMO_SKIP_INSTALL=1 uses .venv as it is; DEMO_APPROVE_WITH=cli lets the demo approve the
# voluntary request itself (`camera-agent requests approve`) instead of waiting for the
# owner page; DEMO_EXIT_AFTER_ORDER=1 stops once both requests are done.
#
# DEMO_AGENT=external runs everything but the agent, for trying the owner's install: it
# prints what to answer to `camera-agent setup` on a machine installed with
# systemd/install.sh that shares this machine's network (this machine, or a container on
# it; the demo listens on 127.0.0.1), waits for that agent's footage, and then sends it
# the same order and voluntary request.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

if [[ -z ${DEMO_SKIP_INSTALL:-} ]]; then
  bash demo/install-system-packages.sh
  echo "installing the agent and the registry into .venv"
  [[ -x .venv/bin/pip ]] || python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[registry]'
  npm ci --prefix registry/web/assets --no-audit --no-fund --loglevel=error
fi

BROKER_PORT=${DEMO_BROKER_PORT:-18830}
CAMERA_PORT=${DEMO_CAMERA_PORT:-18554}
REGISTRY_PORT=${DEMO_REGISTRY_PORT:-18080}
REGISTRY=http://127.0.0.1:$REGISTRY_PORT
OWNER_PORT=${DEMO_OWNER_PORT:-18081}
OWNER_PAGE=http://127.0.0.1:$OWNER_PORT
NOTIFY_PORT=${DEMO_NOTIFY_PORT:-18082}
APPROVE_WITH=${DEMO_APPROVE_WITH:-page}
AGENT_MODE=${DEMO_AGENT:-here}
case $AGENT_MODE in
  here | external) ;;
  *) echo "DEMO_AGENT must be here or external, not '$AGENT_MODE'" >&2; exit 64 ;;
esac
if [[ $AGENT_MODE == external && $APPROVE_WITH == cli ]]; then
  echo "with DEMO_AGENT=external the owner approves on the owner page" >&2
  exit 64
fi
case $APPROVE_WITH in
  page | cli) ;;
  *) echo "DEMO_APPROVE_WITH must be page or cli, not '$APPROVE_WITH'" >&2; exit 64 ;;
esac
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
# Runs a command as a child and waits for it: bash holds a trap back until a command in
# the foreground returns, but `wait` gives way at once, so Ctrl-C (or a TERM) ends the
# demo at once, and cleanup ends the command too.
run() {
  "$@" & pids+=($!)
  local status=0
  wait "$!" || status=$?
  unset 'pids[-1]'
  return "$status"
}

secret() { head -c 18 /dev/urandom | base64 | tr '+/' '-_'; }
umask 077
# The broker: every client logs in; the documented ACL lets each agent write only its own
# topics and the registry read them all and relay requests.
REGISTRY_BROKER_PASSWORD=$(secret)
printf '%s\n%s\n' "$REGISTRY_BROKER_PASSWORD" "$REGISTRY_BROKER_PASSWORD" \
  | mosquitto_passwd -c "$WORK/broker.passwd" camera-registry > /dev/null
printf '%s\n' "$REGISTRY_BROKER_PASSWORD" > "$WORK/registry-broker.pass"
cat > "$WORK/mosquitto.conf" <<CONF
listener $BROKER_PORT 127.0.0.1
allow_anonymous false
password_file $WORK/broker.passwd
acl_file $REPO/docs/mosquitto/acl
persistence false
log_dest stderr
# Run as whoever runs the demo, so the broker can read the demo's (private) files.
user $(id -un)
CONF
mosquitto -c "$WORK/mosquitto.conf" 2> "$WORK/mosquitto.log" & pids+=($!)
BROKER_PID=$!

/usr/bin/python3 demo/rtsp_camera.py --port "$CAMERA_PORT" --path /cam \
  --width 1280 --height 720 --fps 10 --scene synthetic --control "$WORK/camera.ctl" \
  > "$WORK/camera.log" 2>&1 &
pids+=($!)

# The owner's notice board: prints each notification the agent sends (webhook or ntfy).
.venv/bin/python -u demo/notice_board.py --port "$NOTIFY_PORT" & pids+=($!)

# The registry, with SQLite in the demo folder; plain http because it listens on loopback.
cat > "$WORK/registry.yaml" <<CONF
data_dir: $WORK/registry
mqtt:
  broker: mqtt://127.0.0.1:$BROKER_PORT
  username: camera-registry
  password_file: $WORK/registry-broker.pass
http: {listen: "127.0.0.1:$REGISTRY_PORT"}
map: {center: [52.9925, 6.5649], zoom: 17}
enrolment:
  password_file: $WORK/broker.passwd
  reload_command: [kill, -HUP, "$BROKER_PID"]
CONF
REG=(.venv/bin/camera-registry)
OFFICER_PASSWORD=$(secret); OPERATOR_PASSWORD=$(secret); OWNER_PASSWORD=$(secret)
printf '%s\n' "$OFFICER_PASSWORD" > "$WORK/officer.pass"
printf '%s\n' "$OPERATOR_PASSWORD" > "$WORK/operator.pass"
printf '%s\n' "$OWNER_PASSWORD" > "$WORK/owner.pass"
"${REG[@]}" users add officer --role police --password-file "$WORK/officer.pass" --config "$WORK/registry.yaml"
"${REG[@]}" users add operator --role operator --password-file "$WORK/operator.pass" --config "$WORK/registry.yaml"
OFFICER_TOKEN=$("${REG[@]}" tokens add officer --label demo --config "$WORK/registry.yaml" 2>/dev/null)
"${REG[@]}" serve --config "$WORK/registry.yaml" > "$WORK/registry.log" 2>&1 & pids+=($!)
# The police key lives on the officer's machine, never on the registry.
"${REG[@]}" police keygen --out "$WORK/police" --name police-demo > /dev/null
# A code enrols the one agent id it is made for.
AGENT_ID=demo-shop
CODE=$("${REG[@]}" enrol-code --agent "$AGENT_ID" --by operator --config "$WORK/registry.yaml" | sed -n 1p)

for _ in $(seq 50); do
  grep -q READY "$WORK/camera.log" 2>/dev/null && break
  sleep 0.2
done
for _ in $(seq 100); do
  curl -s -o /dev/null "$REGISTRY/login" && break
  sleep 0.2
done
curl -s -o /dev/null "http://127.0.0.1:$NOTIFY_PORT/" \
  || { echo "the notice board did not start (port $NOTIFY_PORT taken?)" >&2; exit 1; }
POLICE=(.venv/bin/python -u demo/police_order.py --registry "$REGISTRY"
  --token "$OFFICER_TOKEN" --key "$WORK/police/police-demo.key"
  --minutes "${DEMO_ORDER_MINUTES:-3}")

if [[ $AGENT_MODE == external ]]; then
  OWNER_PAGE=http://127.0.0.1:8081 # the installed agent's page, at its default port
  FINGERPRINT=$(.venv/bin/python -c 'import pathlib, sys
from agent.crypto import jws
print(jws.thumbprint(jws.public_key_from_pem(pathlib.Path(sys.argv[1]).read_bytes())))' \
    "$WORK/police/police-demo.pem")
  cat <<MSG

Demo registry running, without an agent (files in $WORK):
  dashboard  $REGISTRY/   police: officer / $OFFICER_PASSWORD
  notices    the agent's notifications appear here as "notification: ..."
  logs       $WORK/registry.log

Install the agent (sudo ./systemd/install.sh) on a machine that shares this one's
network, and give camera-agent setup these answers:
  agent id           $AGENT_ID   (the enrolment code is for this id only)
  registry address   $REGISTRY
  enrolment code     $CODE
  camera address     rtsp://127.0.0.1:$CAMERA_PORT/cam   (no user name, no password)
  police key         $WORK/police/police-demo.pem
                     fingerprint $FINGERPRINT
  evidence address   $REGISTRY/files/   (the default)
  notifications      http://127.0.0.1:$NOTIFY_PORT/demo-owner
  owner page         any password you like; then open $OWNER_PAGE/

Spoil the camera's picture from another terminal, and watch the owner page, the
dashboard and the notifications here:
  echo covered > $WORK/camera.ctl      ('clear' undoes)

The officer waits for the agent's footage (up to an hour), then orders the last
${DEMO_ORDER_MINUTES:-3} minutes ${DEMO_ORDER_AFTER:-60} s later:
MSG
  run "${POLICE[@]}" --wait-only --wait 3600
else
cat > "$WORK/config.yaml" <<CONF
# The demo's config: see config.example.yaml for every key.
agent:
  id: $AGENT_ID
  data_dir: $WORK/state
registry:
  broker: mqtt://127.0.0.1:$BROKER_PORT
  username: $AGENT_ID
  password_file: $WORK/state/keys/broker.pass
  health_interval: 15s
clock:
  require_sync: false
police:
  keys: [{file: $WORK/police/police-demo.pem}]
  upload_allow: ["$REGISTRY/files/"]
  max_window: 10m
cameras:
  - id: front
    name: Demo camera
    url: rtsp://127.0.0.1:$CAMERA_PORT/cam
    location: {lat: 52.9925, lon: 6.5649, bearing_deg: 180, fov_deg: 90, range_m: 25}
    expect: {min_fps: 8, min_width: 1280}
    analysis_interval: 2s
    recording: {segment: 10s, retention: 1d}
# The owner's side: the page on this machine only, and every notification to the notice
# board, at most one per camera and kind every 10 s (1h is the default).
owner_page:
  enabled: true
  listen: "127.0.0.1:$OWNER_PORT"
notifications:
  webhook: {url: "http://127.0.0.1:$NOTIFY_PORT/webhook"}
  min_interval: 10s
CONF

# The owner enrols the agent: its device key goes to the registry, a broker login comes back.
.venv/bin/camera-agent enroll --registry "$REGISTRY" --code "$CODE" --config "$WORK/config.yaml" > "$WORK/enroll.log"
.venv/bin/camera-agent check --config "$WORK/config.yaml"
.venv/bin/camera-agent owner-password --password-file "$WORK/owner.pass" \
  --config "$WORK/config.yaml" > /dev/null
.venv/bin/camera-agent run --config "$WORK/config.yaml" > "$WORK/agent.log" 2>&1 & pids+=($!)

cat <<MSG

Demo running (files in $WORK):
  dashboard  $REGISTRY/
             police:   officer / $OFFICER_PASSWORD
             operator: operator / $OPERATOR_PASSWORD
  owner page $OWNER_PAGE/
             owner's password: $OWNER_PASSWORD
  notices    the agent's notifications appear here as "notification: ..."
  broker     mqtt://127.0.0.1:$BROKER_PORT (passwords and ACL)
  camera     rtsp://127.0.0.1:$CAMERA_PORT/cam
  logs       $WORK/agent.log, $WORK/registry.log

Spoil the camera's picture from another terminal, and watch the owner page, the
dashboard and the notifications here:
  echo covered > $WORK/camera.ctl      (or blurred, too_dark, too_bright, low_contrast,
                                        colour_cast, noisy, frozen, moved; 'clear' undoes)

In ${DEMO_ORDER_AFTER:-60} s a police officer orders the last ${DEMO_ORDER_MINUTES:-3} minutes of footage:
MSG
  POLICE+=(--agent "$AGENT_ID" --camera front)
fi
run sleep "${DEMO_ORDER_AFTER:-60}"
run "${POLICE[@]}" --kind order

# The owner approves on the command line (DEMO_APPROVE_WITH=cli): for runs nobody watches.
approve_on_the_command_line() {
  local id=""
  for _ in $(seq 300); do
    id=$(.venv/bin/camera-agent requests list --config "$WORK/config.yaml" \
      | awk '/voluntary/ && /waiting for your decision/ && !id {id = $1} END {print id}') \
      || id=""
    if [[ -n $id ]]; then
      echo "owner: approves $id with: camera-agent requests approve $id"
      .venv/bin/camera-agent requests approve "$id" --config "$WORK/config.yaml"
      return 0
    fi
    sleep 1
  done
  echo "owner: no voluntary request arrived" >&2
  return 1
}

echo
echo "Now the officer asks the owner for the same footage, voluntarily:"
if [[ $APPROVE_WITH == cli ]]; then
  "${POLICE[@]}" --kind voluntary --owner-page "$OWNER_PAGE" & pids+=($!)
  VOLUNTARY_PID=$!
  run approve_on_the_command_line
  wait "$VOLUNTARY_PID"
else
  # Declining is the owner's right, not a failure of the demo.
  run "${POLICE[@]}" --kind voluntary --owner-page "$OWNER_PAGE" \
    || echo "police: the voluntary request delivered no footage"
fi
echo "The evidence is on $REGISTRY/evidence (log in as officer). Ctrl-C stops the demo."
[[ -n ${DEMO_EXIT_AFTER_ORDER:-} ]] && exit 0
run sleep infinity
