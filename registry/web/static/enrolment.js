// Operator enrolment: make a one-time code (shown once), list open codes and enrolled agents.
"use strict";

const REFRESH_MS = 5000;
const form = document.getElementById("make-code");

function emptyRow(tbody, columns, message) {
  const row = document.createElement("tr");
  const td = cell(row, message, "muted");
  td.colSpan = columns;
  tbody.appendChild(row);
}

async function refreshCodes() {
  const tbody = document.querySelector("#codes tbody");
  const codes = await api("GET", "/api/v1/enrol-codes");
  tbody.replaceChildren();
  for (const code of codes) {
    const row = document.createElement("tr");
    row.dataset.code = code.code_sha256;
    cell(row, code.code_sha256.slice(0, 12), "fingerprint");
    cell(row, code.agent || "none (enrols nobody)", "agent");
    // A re-enrolment code is shown as what it does: the key it will replace.
    cell(row, code.replaces_key || "no: first enrolment", code.replaces_key ? "replaces thumbprint" : "replaces muted");
    cell(row, code.created_by);
    cell(row, code.created_at);
    cell(row, code.expires_at);
    tbody.appendChild(row);
  }
  if (!codes.length) emptyRow(tbody, 6, "No open codes.");
}

async function refreshAgents() {
  const tbody = document.querySelector("#agents tbody");
  const agents = (await api("GET", "/api/v1/enrolled-agents")).agents;
  tbody.replaceChildren();
  for (const agent of agents) {
    const row = document.createElement("tr");
    row.dataset.agent = agent.agent;
    cell(row, agent.agent);
    cell(row, agent.key_thumbprint, "thumbprint");
    cell(row, agent.enrolled_at);
    cell(row, agent.cameras, "cameras");
    cell(row, agent.state || "not connected yet");
    tbody.appendChild(row);
  }
  if (!agents.length) emptyRow(tbody, 5, "No agent has enrolled yet.");
}

async function refresh() {
  try {
    await Promise.all([refreshCodes(), refreshAgents()]);
  } catch (error) {
    document.getElementById("outcome").textContent = `Could not refresh: ${error.message}`;
  }
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const outcome = document.getElementById("outcome");
  const button = form.querySelector("button");
  button.disabled = true;
  try {
    const made = await api("POST", "/api/v1/enrol-codes", {
      agent: document.getElementById("agent").value,
      ttl: document.getElementById("ttl").value,
      replace: document.getElementById("replace").checked,
    });
    document.getElementById("code").textContent = made.code;
    document.getElementById("code-agent").textContent = made.agent;
    document.getElementById("replaced-key").textContent = made.replaces_key || "";
    document.getElementById("replaced-agent").textContent = made.agent;
    document.getElementById("replaces").hidden = !made.replaces_key;
    document.getElementById("expires").textContent = made.expires_at;
    document.getElementById("expires").dateTime = made.expires_at;
    document.getElementById("command").textContent =
      `camera-agent enroll --registry ${form.dataset.registry} --code ${made.code}`;
    document.getElementById("new-code").hidden = false;
    outcome.textContent = "Code made. It is not shown again once you leave this page.";
    await refresh();
  } catch (error) {
    outcome.textContent = `No code made: ${error.detail || error.message}`;
  } finally {
    button.disabled = false;
  }
});

refresh();
setInterval(refresh, REFRESH_MS);
