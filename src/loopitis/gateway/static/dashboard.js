// Loopitis dashboard: live fragments over server-sent events, the new-job
// form and the cancel button. No build step, no dependencies.
"use strict";

function follow(section) {
  const banner = document.getElementById("connection");
  const source = new EventSource(section.dataset.events);
  source.addEventListener("update", (event) => {
    section.innerHTML = event.data;
    banner.hidden = true;
    refreshRelativeTimes();
    section.dispatchEvent(new CustomEvent("loopitis:updated"));
  });
  source.addEventListener("down", (event) => {
    banner.textContent = event.data;
    banner.hidden = false;
  });
  source.onerror = () => {
    banner.textContent = "reconnecting…";
    banner.hidden = false;
  };
  source.onopen = () => { banner.hidden = true; };
}

function relative(iso) {
  const seconds = Math.round((Date.parse(iso) - Date.now()) / 1000);
  const size = Math.abs(seconds);
  let text;
  if (size < 1) return "now";
  if (size < 90) text = `${size} s`;
  else if (size < 5400) text = `${Math.round(size / 60)} min`;
  else if (size < 129600) text = `${Math.round(size / 3600)} h`;
  else text = `${Math.round(size / 86400)} d`;
  return seconds > 0 ? `in ${text}` : `${text} ago`;
}

function refreshRelativeTimes() {
  for (const node of document.querySelectorAll("time.rel")) {
    node.textContent = relative(node.getAttribute("datetime"));
  }
}

function formBody(form) {
  const body = {};
  for (const [name, raw] of new FormData(form)) {
    // The payload goes out exactly as typed; other fields lose stray spaces.
    const value = name === "payload" ? raw : raw.trim();
    if (value.trim() === "") continue;
    // Plain digits are sent as numbers, as a script would; anything else goes
    // as text so the API can say what is wrong with it.
    body[name] = name === "occurrences" && /^\d+$/.test(value) ? Number(value) : value;
  }
  return body;
}

function showProblems(form, problems) {
  const general = document.getElementById("form-error");
  for (const problem of problems) {
    const slot = form.querySelector(`.field-error[data-for="${problem.field}"]`);
    const input = form.querySelector(`[name="${problem.field}"]`);
    if (input) input.classList.add("invalid");
    if (slot) {
      slot.textContent = problem.message;
    } else {
      general.textContent = problem.message;
      general.hidden = false;
    }
  }
}

function clearProblems(form) {
  for (const slot of form.querySelectorAll(".field-error")) slot.textContent = "";
  for (const input of form.querySelectorAll(".invalid")) input.classList.remove("invalid");
  document.getElementById("form-error").hidden = true;
}

async function submitJob(event) {
  event.preventDefault();
  const form = event.target;
  clearProblems(form);
  const response = await fetch("/set/notifier", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(formBody(form)),
  });
  const answer = await response.json().catch(() => ({}));
  if (response.status === 201) {
    window.location.assign(`/ui/jobs/${answer.id}`);
    return;
  }
  const error = answer.error || { message: `the gateway answered ${response.status}` };
  showProblems(form, answer.errors || [error]);
}

async function cancelJob(event) {
  const button = event.target;
  button.disabled = true;
  const response = await fetch(
    `/requests/cancel_task?requestId=${encodeURIComponent(button.dataset.job)}`,
    { method: "POST" },
  );
  if (response.ok) {
    button.hidden = true;
    return;
  }
  const answer = await response.json().catch(() => ({}));
  const slot = document.getElementById("cancel-error");
  slot.textContent = (answer.error && answer.error.message) || `cancel failed (${response.status})`;
  slot.hidden = false;
  button.disabled = false;
}

document.addEventListener("DOMContentLoaded", () => {
  const live = document.getElementById("live");
  if (live && live.dataset.events) follow(live);
  const form = document.getElementById("new-job");
  if (form) form.addEventListener("submit", submitJob);
  const cancel = document.getElementById("cancel");
  if (cancel && live) {
    cancel.addEventListener("click", cancelJob);
    live.addEventListener("loopitis:updated", () => {
      const counters = live.querySelector(".counters");
      if (counters && counters.dataset.live === "no") cancel.hidden = true;
    });
  }
  refreshRelativeTimes();
  setInterval(refreshRelativeTimes, 1000);
});
