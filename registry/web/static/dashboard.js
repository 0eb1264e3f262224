// The health dashboard: every camera on the map and in the table, refreshed every few seconds.
"use strict";

const REFRESH_MS = 3000;
const mapElement = document.getElementById("map");
const map = makeMap(mapElement);
const layer = map ? L.layerGroup().addTo(map) : null;
const filter = document.getElementById("filter");
let cameras = [];
let fitted = false;

function matches(camera) {
  const value = filter.value;
  if (!value) return true;
  if (value === "not-ok") return camera.status !== "ok" && camera.status !== "pending";
  if (value.startsWith("problem:")) return camera.problems.includes(value.slice(8));
  return camera.status === value;
}

// The problems, and those the owner accepted as normal for the camera (not counted).
function problemWords(camera) {
  const said = camera.problems.join(", ") || "none";
  return camera.accepted && camera.accepted.length ? `${said} (accepted as normal: ${camera.accepted.join(", ")})` : said;
}

// Built as text nodes: names come from agents and are never parsed as markup.
function popup(camera) {
  const box = document.createElement("div");
  const title = document.createElement("strong");
  title.textContent = camera.name || camera.camera;
  const status = document.createElement("div");
  status.textContent = `${statusWords(camera.status)}: ${problemWords(camera)}`;
  box.append(title, status);
  return box;
}

function draw() {
  const shown = cameras.filter(matches);
  const tbody = document.querySelector("#cameras tbody");
  tbody.replaceChildren();
  for (const camera of shown) {
    const row = document.createElement("tr");
    row.dataset.camera = `${camera.agent}/${camera.camera}`;
    cell(row, `${camera.name || camera.camera} (${camera.agent}/${camera.camera})`);
    cell(row, statusWords(camera.status), `status status-${camera.status}`);
    cell(row, problemWords(camera));
    cell(row, camera.last_report ? when(camera.last_report) + (camera.stale ? " (stale)" : "") : null);
    cell(row, when(camera.footage_oldest));
    tbody.appendChild(row);
  }
  const problems = cameras.filter((c) => c.status !== "ok" && c.status !== "pending").length;
  const pending = cameras.filter((c) => c.status === "pending").length;
  document.getElementById("summary").textContent =
    `${cameras.length} cameras, ${problems} with a problem, ${pending} not yet judged; showing ${shown.length}.`;
  if (!layer) return;
  layer.clearLayers();
  const bounds = [];
  for (const camera of shown) {
    if (camera.lat === null || camera.lon === null) continue;
    const colour = STATUS_COLOURS[camera.status] || STATUS_COLOURS.unknown;
    const cone = conePoints(camera, camera.range_m || 25);
    if (cone) L.polygon(cone, { color: colour, weight: 1, fillOpacity: 0.25, className: "cone" }).addTo(layer);
    L.circleMarker([camera.lat, camera.lon], { radius: 6, color: colour, fillColor: colour, fillOpacity: 0.9, className: `marker status-${camera.status}` })
      .bindPopup(popup(camera))
      .addTo(layer);
    bounds.push([camera.lat, camera.lon]);
  }
  if (!fitted && bounds.length) { map.fitBounds(bounds, { maxZoom: 18, padding: [30, 30] }); fitted = true; }
}

async function refresh() {
  try {
    cameras = (await api("GET", "/api/v1/cameras")).cameras;
    draw();
  } catch (error) {
    document.getElementById("summary").textContent = `Could not refresh: ${error.message}`;
  }
}

filter.addEventListener("change", draw);
refresh();
setInterval(refresh, REFRESH_MS);
