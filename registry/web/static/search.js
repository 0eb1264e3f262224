// Police search: a point and a time (or range) in; the cameras whose view covers it out,
// ranked, with their state then and what they can make of a person there.
"use strict";

const map = makeMap(document.getElementById("map"));
const layer = map ? L.layerGroup().addTo(map) : null;
let pin = null;

if (map) {
  map.on("click", (event) => {
    document.getElementById("lat").value = event.latlng.lat.toFixed(6);
    document.getElementById("lon").value = event.latlng.lng.toFixed(6);
    if (pin) pin.remove();
    pin = L.marker(event.latlng).addTo(map);
  });
}

// A camera's state at the moment searched, in words: "failed (covered)".
function stateWords(camera) {
  const words = STATE_WORDS[camera.state] || camera.state;
  return camera.problems.length ? `${words} (${camera.problems.join(", ")})` : words;
}
const STATE_WORDS = { usable: "usable", pending: "not yet judged", degraded: "degraded", failed: "no usable picture", offline: "offline", gap: "recording gap", not_recording: "not recording", unknown: "unknown" };
// DORI (IEC 62676-4): what the camera can make of a person at the point's distance.
const DORI_WORDS = { identify: "identify", recognise: "recognise", observe: "observe only", detect: "detect only" };

function drawCamera(tbody, camera, result, excluded) {
  const row = document.createElement("tr");
  row.dataset.camera = `${camera.agent}/${camera.camera}`;
  if (excluded) row.className = "excluded";
  cell(row, `${camera.name || camera.camera} (${camera.agent}/${camera.camera})`);
  cell(row, `${camera.distance_m} m`);
  cell(row, stateWords(camera), `state state-${camera.state}`);
  const level = DORI_WORDS[camera.dori_level] || (camera.dori_m ? "too far to detect" : "unknown");
  cell(row, camera.dori_m ? `${level} (identifies within ${camera.dori_m.identify} m)` : level, "dori-level");
  cell(row, camera.footage_held ? "yes" : "no", "held");
  cell(row, statusWords(camera.status), `status status-${camera.status}`);
  const action = document.createElement("td");
  if (!excluded) {
    const link = document.createElement("a");
    link.href = `/requests?agent=${encodeURIComponent(camera.agent)}&camera=${encodeURIComponent(camera.camera)}&at=${encodeURIComponent(result.at)}`;
    link.textContent = "Request footage";
    action.appendChild(link);
  }
  row.appendChild(action);
  tbody.appendChild(row);
  if (!layer) return;
  const colour = excluded ? STATUS_COLOURS.unknown : STATUS_COLOURS.ok;
  L.polygon(camera.cone, { color: colour, weight: 1, fillOpacity: 0.2, className: "cone" }).addTo(layer);
  // DORI: how far the camera can detect, observe, recognise and identify a person.
  if (camera.dori_m && camera.view_known) {
    for (const [label, metres] of Object.entries(camera.dori_m)) {
      const ring = conePoints(camera, metres);
      if (ring) L.polyline(ring.slice(1), { color: colour, weight: 1, dashArray: "3 3", className: `dori dori-${label}` }).bindTooltip(document.createTextNode(`${label} ${metres} m`)).addTo(layer);
    }
  }
  L.circleMarker([camera.lat, camera.lon], { radius: 6, color: colour, className: "marker" }).addTo(layer);
}

// Ranked: the most useful camera first; those without usable footage then listed after.
function drawResults(result) {
  const tbody = document.querySelector("#results tbody");
  tbody.replaceChildren();
  if (layer) layer.clearLayers();
  for (const camera of result.cameras) drawCamera(tbody, camera, result, false);
  for (const camera of result.excluded) drawCamera(tbody, camera, result, true);
  const when = result.until && result.until !== result.at ? `between ${result.at} and ${result.until}` : `at ${result.at}`;
  document.getElementById("outcome").textContent =
    `${result.cameras.length} camera(s) could have seen ${result.lat.toFixed(5)}, ${result.lon.toFixed(5)} ${when}` +
    (result.excluded.length ? `; ${result.excluded.length} more point that way but had no usable footage then.` : ".");
}

document.getElementById("search").addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = {
    lat: Number(document.getElementById("lat").value),
    lon: Number(document.getElementById("lon").value),
    at: document.getElementById("at").value + "Z",
    until: document.getElementById("until").value ? document.getElementById("until").value + "Z" : null,
    reason: document.getElementById("reason").value,
  };
  try {
    drawResults(await api("POST", "/api/v1/search", body));
  } catch (error) {
    document.getElementById("outcome").textContent = `Search refused: ${error.message}`;
  }
});
