// Reviewer workspace: lease a clip, play it through the protected audio endpoint,
// transcribe, label, submit, and move on. Framework-free; all state is on the server.
(function () {
  "use strict";
  const root = document.getElementById("workspace");
  if (!root) return;
  const csrf = root.dataset.csrf;
  const $ = (id) => document.getElementById(id);
  const audio = $("audio");
  let assignment = null;
  let audioUrl = null;

  async function api(method, url, body, extraHeaders) {
    const headers = Object.assign({"X-CSRFToken": csrf, "Accept": "application/json"}, extraHeaders || {});
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(url, {
      method, headers, credentials: "same-origin", cache: "no-store",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    if (response.status !== 204 && (response.headers.get("Content-Type") || "").includes("json")) {
      data = await response.json();
    }
    return {status: response.status, ok: response.ok, data};
  }

  function say(text) { $("status").textContent = text; }

  function showError(message) {
    const box = $("form-error");
    box.textContent = message || "";
    box.hidden = !message;
  }

  function renderLabels(schema, chosen) {
    const host = $("labels");
    host.replaceChildren();
    for (const group of schema.groups) {
      const fieldset = document.createElement("fieldset");
      fieldset.dataset.group = group.key;
      fieldset.dataset.kind = group.kind;
      const legend = document.createElement("legend");
      legend.textContent = group.name + (group.required ? " (required)" : "");
      fieldset.append(legend);
      for (const label of group.labels) {
        const id = "label-" + group.key + "-" + label.key;
        const input = document.createElement("input");
        input.type = group.kind === "single" ? "radio" : "checkbox";
        input.name = "group-" + group.key;
        input.value = label.key;
        input.id = id;
        input.checked = (chosen[group.key] || []).includes(label.key);
        const text = document.createElement("label");
        text.htmlFor = id;
        text.textContent = label.name + (label.shortcut ? " [" + label.shortcut + "]" : "");
        const row = document.createElement("div");
        row.className = "choice";
        row.append(input, text);
        fieldset.append(row);
      }
      host.append(fieldset);
    }
  }

  function chosenLabels() {
    const labels = {};
    for (const fieldset of $("labels").querySelectorAll("fieldset")) {
      const keys = [...fieldset.querySelectorAll("input:checked")].map((i) => i.value);
      if (keys.length) labels[fieldset.dataset.group] = keys;
    }
    return labels;
  }

  function show(data) {
    assignment = data;
    $("empty").hidden = true;
    $("task").hidden = false;
    $("text").value = data.draft.text;
    renderLabels(data.label_schema, data.draft.labels || {});
    showError("");
    if (audioUrl) { URL.revokeObjectURL(audioUrl); audioUrl = null; }
    audio.removeAttribute("src");
    updateClock();
    say("Clip ready (" + (data.clip.duration_ms / 1000).toFixed(1) + " s). Press Play to listen.");
    $("play").focus();
  }

  async function next() {
    say("Loading your next clip…");
    const r = await api("POST", root.dataset.nextUrl);
    if (r.status === 201) return show(r.data);
    assignment = null;
    $("task").hidden = true;
    if (r.status === 204) { $("empty").hidden = false; say("No clips waiting."); return; }
    say((r.data && r.data.detail) || "Could not load a clip. Try again in a moment.");
  }

  // A fresh token for every play; the bytes arrive over fetch and play from a blob,
  // so no reusable audio address ever exists in the page.
  async function play() {
    if (!assignment) return;
    if (audio.src && audioUrl) { audio.paused ? audio.play() : audio.pause(); return; }
    const t = await api("POST", assignment.audio_token_url);
    if (t.status !== 201) { say((t.data && t.data.detail) || "This clip can no longer be played."); return; }
    const response = await fetch(assignment.audio_url, {
      credentials: "same-origin", cache: "no-store", headers: {"X-Audio-Token": t.data.token},
    });
    if (!response.ok) { say("This clip can no longer be played."); return; }
    audioUrl = URL.createObjectURL(await response.blob());
    audio.src = audioUrl;
    await audio.play();
  }

  function updateClock() {
    const total = assignment ? assignment.clip.duration_ms / 1000 : 0;
    $("clock").textContent = (audio.currentTime || 0).toFixed(1) + " / " + total.toFixed(1) + " s";
    $("play").textContent = audio.paused ? "Play" : "Pause";
  }

  async function submit(event) {
    event.preventDefault();
    if (!assignment) return;
    $("submit").disabled = true;
    try {
      const r = await api("POST", "/api/v1/assignments/" + assignment.id + "/submit/",
        {text: $("text").value, labels: chosenLabels()});
      if (r.ok) { say("Submitted."); return next(); }
      const fields = r.data && r.data.fields ? " (" + Object.keys(r.data.fields).join(", ") + ")" : "";
      showError(((r.data && r.data.detail) || "Could not submit.") + fields);
    } finally {
      $("submit").disabled = false;
    }
  }

  async function skip() {
    if (!assignment) return;
    const reason = window.prompt("Why are you skipping this clip?");
    if (!reason) return;
    const r = await api("POST", "/api/v1/assignments/" + assignment.id + "/skip/", {reason});
    if (r.ok) return next();
    showError((r.data && r.data.detail) || "Could not skip.");
  }

  $("play").addEventListener("click", play);
  $("task").addEventListener("submit", submit);
  $("skip").addEventListener("click", skip);
  $("retry").addEventListener("click", next);
  audio.addEventListener("timeupdate", updateClock);
  audio.addEventListener("play", updateClock);
  audio.addEventListener("pause", updateClock);
  audio.addEventListener("ended", updateClock);
  next();
})();
