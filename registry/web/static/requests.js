// Prepare claims, download them for signing off the server, submit the token, follow it.
"use strict";

const REFRESH_MS = 3000;
let preparedId = null;

(function prefill() {
  const query = new URLSearchParams(window.location.search);
  if (query.get("agent")) document.getElementById("agent").value = query.get("agent");
  if (query.get("camera")) document.getElementById("cameras").value = query.get("camera");
  const at = query.get("at");
  if (at) {
    const moment = new Date(at).getTime();
    const local = (ms) => new Date(ms).toISOString().slice(0, 19);
    document.getElementById("start").value = local(moment - 150000);
    document.getElementById("end").value = local(moment + 150000);
  }
})();

document.getElementById("prepare").addEventListener("submit", async (event) => {
  event.preventDefault();
  const value = (id) => document.getElementById(id).value;
  const body = {
    agent: value("agent"), cameras: value("cameras").split(",").map((c) => c.trim()).filter(Boolean),
    start: value("start") + "Z", end: value("end") + "Z", kind: value("kind"), case: value("case"),
    basis: value("basis"), requester: value("requester"), reason: value("reason"),
  };
  const outcome = document.getElementById("prepared");
  try {
    const result = await api("POST", "/api/v1/requests", body);
    choose(result.request_id, `Prepared ${result.request_id}. `);
    refresh();
  } catch (error) {
    outcome.textContent = `Not prepared: ${error.message}`;
  }
});

// Shows the claims download and the token form for one prepared request.
function choose(requestId, message) {
  preparedId = requestId;
  const outcome = document.getElementById("prepared");
  outcome.replaceChildren(message);
  const link = document.createElement("a");
  link.href = `/api/v1/requests/${encodeURIComponent(requestId)}/claims.json`;
  link.textContent = "Download claims.json";
  link.id = "claims-link";
  outcome.appendChild(link);
  document.getElementById("submit").hidden = false;
  document.getElementById("token").focus();
}

document.getElementById("submit").addEventListener("submit", async (event) => {
  event.preventDefault();
  const outcome = document.getElementById("submitted");
  try {
    await api("POST", `/api/v1/requests/${preparedId}/token`, { token: document.getElementById("token").value });
    outcome.textContent = `Sent ${preparedId} to the agent.`;
    refresh();
  } catch (error) {
    outcome.textContent = `Not sent: ${error.message}`;
  }
});

async function refresh() {
  const tbody = document.querySelector("#requests tbody");
  try {
    const list = (await api("GET", "/api/v1/requests")).requests;
    tbody.replaceChildren();
    for (const request of list) {
      const row = document.createElement("tr");
      row.dataset.request = request.request_id;
      cell(row, request.request_id);
      cell(row, request.case);
      cell(row, `${request.agent}: ${request.cameras.join(", ")}`);
      cell(row, `${request.window.start} – ${request.window.end}`);
      let state = request.state + (request.reason ? ` (${request.reason})` : "");
      if (request.progress && request.state === "uploading") {
        state += ` ${Math.round(100 * request.progress.bytes_sent / Math.max(1, request.progress.bytes_total))} %`;
      }
      cell(row, state, "state");
      const action = cell(row, "");
      if (request.state === "prepared") {
        // A request prepared earlier (or on another visit) can still be signed and sent.
        const button = document.createElement("button");
        button.type = "button";
        button.textContent = "Submit token";
        button.className = "choose";
        button.addEventListener("click", () => choose(request.request_id, `Selected ${request.request_id}. `));
        action.replaceChildren(button);
      }
      tbody.appendChild(row);
    }
  } catch (error) { /* shown on the next successful refresh */ }
}

refresh();
setInterval(refresh, REFRESH_MS);
