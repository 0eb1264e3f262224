// Shared by the registry's pages: CSRF-carrying requests, status colours, view cones.
"use strict";

const CSRF = document.querySelector('meta[name="csrf-token"]')?.content || "";
// pending: says ok, but its picture is not judged yet (registry/judgement.py).
const STATUS_COLOURS = { ok: "#2e7d32", pending: "#64b5f6", degraded: "#f9a825", failed: "#c62828", offline: "#616161", unknown: "#9e9e9e" };
const STATUS_WORDS = { pending: "not yet judged" };

// A status as shown to people: "pending" reads "not yet judged".
function statusWords(status) { return STATUS_WORDS[status] || status; }

async function api(method, url, body) {
  const options = { method, headers: { "X-CSRF-Token": CSRF }, credentials: "same-origin" };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(url, options);
  if (response.status === 401) { window.location = "/login"; throw new Error("logged out"); }
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error(data.error || `${response.status} ${response.statusText}`);
    error.detail = data.message; // the server's sentence, for pages that show it
    throw error;
  }
  return data;
}

// "2026-11-28T01:00:56Z" -> "2026-11-28 01:00 UTC": readable, and still unambiguous.
function when(iso) {
  return iso ? iso.replace("T", " ").replace(/:\d\d(\.\d+)?Z$/, " UTC") : null;
}

function text(value) { return value === null || value === undefined ? "—" : String(value); }

function cell(row, value, className) {
  const td = document.createElement("td");
  td.textContent = text(value);
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

// A point `distance` metres from (lat, lon) on `bearing` degrees (spherical earth).
function destination(lat, lon, bearing, distance) {
  const R = 6371008.8, d = distance / R, b = bearing * Math.PI / 180;
  const p1 = lat * Math.PI / 180, l1 = lon * Math.PI / 180;
  const p2 = Math.asin(Math.sin(p1) * Math.cos(d) + Math.cos(p1) * Math.sin(d) * Math.cos(b));
  const l2 = l1 + Math.atan2(Math.sin(b) * Math.sin(d) * Math.cos(p1), Math.cos(d) - Math.sin(p1) * Math.sin(p2));
  return [p2 * 180 / Math.PI, l2 * 180 / Math.PI];
}

// The area a camera sees: a sector of `range` metres, or a circle when no bearing is known.
function conePoints(camera, range) {
  if (camera.bearing_deg === null || camera.fov_deg === null) return null;
  const half = camera.fov_deg / 2, points = [[camera.lat, camera.lon]];
  for (let step = 0; step <= 16; step++) {
    points.push(destination(camera.lat, camera.lon, camera.bearing_deg - half + step * camera.fov_deg / 16, range));
  }
  return points;
}

// A Leaflet map configured by the element's data attributes; works with no tiles at all.
function makeMap(element) {
  if (typeof L === "undefined") return null;
  const [lat, lon] = element.dataset.center.split(",").map(Number);
  const map = L.map(element).setView([lat, lon], Number(element.dataset.zoom));
  if (element.dataset.tiles) {
    L.tileLayer(element.dataset.tiles, { maxZoom: 19, attribution: element.dataset.attribution }).addTo(map);
  }
  return map;
}
