// Police search: a point and a time in, the cameras whose view and footage cover it out.
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

function drawResults(result) {
  const tbody = document.querySelector("#results tbody");
  tbody.replaceChildren();
  if (layer) layer.clearLayers();
  for (const camera of result.cameras) {
    const row = document.createElement("tr");
    row.dataset.camera = `${camera.agent}/${camera.camera}`;
    cell(row, `${camera.name || camera.camera} (${camera.agent}/${camera.camera})`);
    cell(row, `${camera.distance_m} m`);
    cell(row, statusWords(camera.status), `status status-${camera.status}`);
    cell(row, `${camera.footage_oldest} – ${camera.footage_newest}`);
    cell(row, camera.dori_m ? `${camera.dori_m.identify} m` : null);
    const action = document.createElement("td");
    const link = document.createElement("a");
    link.href = `/requests?agent=${encodeURIComponent(camera.agent)}&camera=${encodeURIComponent(camera.camera)}&at=${encodeURIComponent(result.at)}`;
    link.textContent = "Request footage";
    action.appendChild(link);
    row.appendChild(action);
    tbody.appendChild(row);
    if (!layer) continue;
    const colour = STATUS_COLOURS[camera.status] || STATUS_COLOURS.unknown;
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
  document.getElementById("outcome").textContent =
    `${result.cameras.length} camera(s) could have seen ${result.lat.toFixed(5)}, ${result.lon.toFixed(5)} at ${result.at}.`;
}

document.getElementById("search").addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = {
    lat: Number(document.getElementById("lat").value),
    lon: Number(document.getElementById("lon").value),
    at: document.getElementById("at").value + "Z",
    reason: document.getElementById("reason").value,
  };
  try {
    drawResults(await api("POST", "/api/v1/search", body));
  } catch (error) {
    document.getElementById("outcome").textContent = `Search refused: ${error.message}`;
  }
});
