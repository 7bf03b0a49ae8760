// Reviewer workspace: lease a clip, play it through the protected audio endpoint,
// transcribe, label, submit, move on. Framework-free; all state lives on the server.
(function () {
  "use strict";
  const root = document.getElementById("workspace");
  if (!root) return;
  const csrf = root.dataset.csrf;
  const $ = (id) => document.getElementById(id);
  const audio = $("audio");
  const canvas = $("waveform");
  const SPEEDS = [0.5, 0.75, 1, 1.25, 1.5, 1.75, 2];
  const AUTOSAVE_MS = 800;

  let assignment = null;   // the live assignment shown on the page
  let audioUrl = null;     // blob: URL of the bytes fetched for the current play
  let speedIndex = 2;
  let version = 0;         // draft version this tab last saw
  let saveTimer = null;
  let saving = null;       // promise of the save in flight
  let conflict = false;
  let leaseExpiresAt = null;
  window.__workspace = {readyAt: 0};  // for the browser tests' timing

  async function api(method, url, body, extraHeaders) {
    const headers = Object.assign({"X-CSRFToken": csrf, "Accept": "application/json"}, extraHeaders || {});
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(url, {
        method, headers, credentials: "same-origin", cache: "no-store",
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      return {status: 0, ok: false, data: {detail: "The server could not be reached. Check your connection."}};
    }
    let data = null;
    if (response.status !== 204 && (response.headers.get("Content-Type") || "").includes("json")) {
      data = await response.json();
    }
    return {status: response.status, ok: response.ok, data};
  }

  const say = (text) => { $("status").textContent = text; };
  const detail = (r, fallback) => (r.data && r.data.detail) || fallback;

  function showError(message) {
    $("form-error").textContent = message || "";
    $("form-error").hidden = !message;
  }

  function showPanel(id) {
    for (const panel of root.querySelectorAll(".panel")) panel.hidden = panel.id !== id;
    $("task").hidden = id !== "task";
    const heading = id !== "task" && $(id) ? $(id).querySelector("h1") : null;
    if (heading) heading.focus();
  }

  // --- Header: progress and lease time --------------------------------------------
  function showProgress(progress) {
    if (!progress) return;
    $("progress").textContent = progress.clips_today + " of " + progress.clips_per_day + " clips today";
  }

  function setLease(iso) {
    leaseExpiresAt = iso ? new Date(iso) : null;
    tickLease();
  }

  function tickLease() {
    const el = $("lease");
    if (!leaseExpiresAt || !assignment) { el.textContent = ""; return; }
    const left = Math.max(0, Math.round((leaseExpiresAt - Date.now()) / 1000));
    el.textContent = "Time left " + Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0");
    el.classList.toggle("low", left < 60);
    if (left === 0) leaseEnded();
  }
  setInterval(tickLease, 1000);

  function leaseEnded() {
    assignment = null;
    stopAudio();
    showPanel("expired");
    $("task").hidden = false;  // keep the text visible to copy
    for (const el of $("task").querySelectorAll("button, input, textarea")) el.disabled = true;
    $("text").disabled = false;
    $("text").readOnly = true;
    say("Time ran out on this clip.");
  }

  // --- Labels --------------------------------------------------------------------
  function renderLabels(schema, chosen) {
    const host = $("labels");
    host.replaceChildren();
    for (const group of schema.groups) {
      const fieldset = document.createElement("fieldset");
      fieldset.dataset.group = group.key;
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
        input.required = group.required;
        if (label.shortcut) input.dataset.shortcut = label.shortcut;
        input.checked = (chosen[group.key] || []).includes(label.key);
        input.addEventListener("change", scheduleSave);
        const text = document.createElement("label");
        text.htmlFor = id;
        text.textContent = label.name + (label.shortcut ? " [" + label.shortcut + "]" : "");
        if (label.shortcut) input.setAttribute("aria-keyshortcuts", String(label.shortcut));
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

  function toggleLabel(number) {
    const input = $("labels").querySelector('input[data-shortcut="' + number + '"]');
    if (!input) return;
    input.checked = input.type === "radio" ? true : !input.checked;
    input.dispatchEvent(new Event("change"));
    say((input.checked ? "Ticked " : "Unticked ") + input.labels[0].textContent.replace(/ \[\d\]$/, ""));
  }

  // --- Drafts ------------------------------------------------------------------------
  function scheduleSave() {
    if (!assignment || conflict) return;
    $("draft-state").textContent = "Unsaved changes";
    clearTimeout(saveTimer);
    saveTimer = setTimeout(saveDraft, AUTOSAVE_MS);
  }

  async function saveDraft() {
    clearTimeout(saveTimer);
    if (!assignment || conflict) return;
    if (saving) await saving;
    const current = assignment;
    saving = api("PUT", "/api/v1/assignments/" + current.id + "/draft/",
      {text: $("text").value, labels: chosenLabels(), version});
    const r = await saving;
    saving = null;
    if (current !== assignment) return;
    if (r.ok) {
      version = r.data.version;
      setLease(r.data.lease_expires_at);
      $("draft-state").textContent = "Draft saved";
    } else if (r.status === 409 && r.data && r.data.code === "stale_version") {
      conflict = true;
      $("conflict").hidden = false;
      $("draft-state").textContent = "Not saved: changed elsewhere";
    } else if (r.status === 409) {
      leaseEnded();
    } else {
      $("draft-state").textContent = detail(r, "Draft not saved") + " (will retry)";
      saveTimer = setTimeout(saveDraft, 3000);
    }
  }

  async function reloadDraft() {
    if (!assignment) return;
    const r = await api("GET", "/api/v1/assignments/" + assignment.id + "/");
    if (!r.ok) return;
    conflict = false;
    $("conflict").hidden = true;
    version = r.data.draft.version;
    $("text").value = r.data.draft.text;
    renderLabels(r.data.label_schema, r.data.draft.labels || {});
    $("draft-state").textContent = "Loaded the newer version";
    $("text").focus();
  }

  // --- Audio and waveform -----------------------------------------------------------
  function stopAudio() {
    audio.pause();
    audio.removeAttribute("src");
    if (audioUrl) { URL.revokeObjectURL(audioUrl); audioUrl = null; }
    audio.load();
  }

  // A fresh token for every play; the bytes arrive over fetch and play from a blob, so
  // no reusable audio address exists. The blob is dropped when the play ends.
  async function loadAudio() {
    const current = assignment;
    const t = await api("POST", current.audio_token_url);
    if (t.status !== 201) { say(detail(t, "This clip can no longer be played.")); return false; }
    setLease(t.data.lease_expires_at);
    const response = await fetch(current.audio_url, {
      credentials: "same-origin", cache: "no-store", headers: {"X-Audio-Token": t.data.token},
    });
    if (!response.ok) {
      let message = "This clip can no longer be played.";
      try { message = (await response.json()).detail || message; } catch (err) { /* not JSON */ }
      say(message);
      return false;
    }
    const blob = await response.blob();
    if (current !== assignment) return false;
    audioUrl = URL.createObjectURL(blob);
    audio.src = audioUrl;
    audio.playbackRate = SPEEDS[speedIndex];
    audio.preservesPitch = true;
    return true;
  }

  async function togglePlay() {
    if (!assignment) return;
    if (!audioUrl && !(await loadAudio())) return;
    if (audio.paused) await audio.play().catch(() => say("Press Play again to start the audio."));
    else audio.pause();
  }

  async function seekBy(seconds) {
    if (!assignment) return;
    if (!audioUrl && !(await loadAudio())) return;
    const total = assignment.clip.duration_ms / 1000;
    audio.currentTime = Math.min(Math.max(0, (audio.currentTime || 0) + seconds), total);
    draw();
  }

  async function seekTo(fraction) {
    if (!assignment) return;
    if (!audioUrl && !(await loadAudio())) return;
    audio.currentTime = fraction * assignment.clip.duration_ms / 1000;
    draw();
  }

  function setSpeed(delta) {
    speedIndex = Math.min(Math.max(0, speedIndex + delta), SPEEDS.length - 1);
    audio.playbackRate = SPEEDS[speedIndex];
    audio.preservesPitch = true;
    $("speed").textContent = SPEEDS[speedIndex] + "×";
  }

  function draw() {
    const ctx = canvas.getContext("2d");
    const width = canvas.clientWidth || 800;
    const height = canvas.clientHeight || 80;
    const ratio = window.devicePixelRatio || 1;
    if (canvas.width !== Math.round(width * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
    }
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    const peaks = assignment ? assignment.clip.peaks : [];
    const total = assignment ? assignment.clip.duration_ms / 1000 : 0;
    const played = total ? (audio.currentTime || 0) / total : 0;
    const bar = width / Math.max(1, peaks.length);
    for (let i = 0; i < peaks.length; i++) {
      const h = Math.max(1, (peaks[i] / 100) * (height - 8));
      ctx.fillStyle = i / peaks.length < played ? "#1f5fbf" : "#9fb3d1";
      ctx.fillRect(i * bar, (height - h) / 2, Math.max(1, bar - 0.5), h);
    }
    ctx.fillStyle = "#d1344b";
    ctx.fillRect(Math.min(width - 2, played * width), 0, 2, height);
    $("clock").textContent = (audio.currentTime || 0).toFixed(1) + " / " + total.toFixed(1) + " s";
    canvas.setAttribute("aria-valuenow", (audio.currentTime || 0).toFixed(1));
    canvas.setAttribute("aria-valuetext", (audio.currentTime || 0).toFixed(1) + " of " + total.toFixed(1) + " seconds");
    $("play").textContent = audio.paused ? "Play" : "Pause";
  }

  function animate() {
    draw();
    if (!audio.paused) requestAnimationFrame(animate);
  }

  // --- The task ------------------------------------------------------------------------
  function show(data) {
    assignment = data;
    conflict = false;
    version = data.draft.version;
    stopAudio();
    for (const el of $("task").querySelectorAll("button, input, textarea")) el.disabled = false;
    $("text").readOnly = false;
    $("conflict").hidden = true;
    $("draft-state").textContent = version ? "Draft restored" : "";
    $("text").value = data.draft.text;
    renderLabels(data.label_schema, data.draft.labels || {});
    canvas.setAttribute("aria-valuemax", (data.clip.duration_ms / 1000).toFixed(1));
    showError("");
    showProgress(data.progress);
    setLease(data.lease_expires_at);
    showPanel("task");
    draw();
    say("Clip ready (" + (data.clip.duration_ms / 1000).toFixed(1) + " s). Press Play or K to listen.");
    window.__workspace.readyAt = performance.now();
    $("play").focus();
  }

  async function next() {
    say("Loading your next clip…");
    const r = await api("POST", root.dataset.nextUrl);
    if (r.status === 201) return show(r.data);
    assignment = null;
    setLease(null);
    stopAudio();
    if (r.status === 204) { showPanel("empty"); say("No clips waiting."); return; }
    if (r.status === 429) {
      $("quota-detail").textContent = detail(r, "You have reached a limit for now.");
      const resets = r.data && r.data.resets_at ? new Date(r.data.resets_at) : null;
      $("quota-reset").textContent = resets ? "You can continue from " + resets.toLocaleString() + "." : "";
      showPanel("quota");
      say(detail(r, "Limit reached."));
      return;
    }
    showPanel("none");
    say(detail(r, "Could not load a clip. Try again in a moment."));
  }

  async function submit(event) {
    if (event) event.preventDefault();
    if (!assignment || $("submit").disabled) return;
    clearTimeout(saveTimer);
    $("submit").disabled = true;
    try {
      const r = await api("POST", "/api/v1/assignments/" + assignment.id + "/submit/",
        {text: $("text").value, labels: chosenLabels()});
      if (r.ok) { window.__workspace.submittedAt = performance.now(); say("Submitted."); return next(); }
      if (r.status === 409) return leaseEnded();
      const fields = r.data && r.data.fields ? " (" + Object.keys(r.data.fields).join(", ") + ")" : "";
      showError(detail(r, "Could not submit.") + fields);
    } finally {
      $("submit").disabled = false;
    }
  }

  function askReason(title, label, confirmText) {
    const dialog = $("reason-dialog");
    $("reason-title").textContent = title;
    $("reason-label").textContent = label;
    $("reason-confirm").textContent = confirmText;
    $("reason-text").value = "";
    $("reason-error").hidden = true;
    return new Promise((resolve) => {
      const form = $("reason-form");
      const onSubmit = (event) => {
        if (event.submitter && event.submitter.value === "confirm" && !$("reason-text").value.trim()) {
          event.preventDefault();
          $("reason-error").hidden = false;
          $("reason-text").focus();
        }
      };
      form.addEventListener("submit", onSubmit);
      dialog.addEventListener("close", () => {
        form.removeEventListener("submit", onSubmit);
        resolve(dialog.returnValue === "confirm" ? $("reason-text").value.trim() : null);
      }, {once: true});
      dialog.returnValue = "";
      dialog.showModal();
      $("reason-text").focus();
    });
  }

  async function skip() {
    if (!assignment) return;
    const reason = await askReason("Skip this clip", "Why are you skipping it?", "Skip");
    if (!reason || !assignment) return $("play").focus();
    const r = await api("POST", "/api/v1/assignments/" + assignment.id + "/skip/", {reason});
    if (r.ok) return next();
    showError(detail(r, "Could not skip."));
  }

  async function flag() {
    if (!assignment) return;
    const reason = await askReason("Flag as distressing", "What in this clip is distressing?", "Flag it");
    if (!reason || !assignment) return $("play").focus();
    const r = await api("POST", "/api/v1/assignments/" + assignment.id + "/flag/", {reason});
    if (!r.ok) return showError(detail(r, "Could not flag the clip."));
    assignment = null;
    setLease(null);
    stopAudio();
    $("flagged-detail").textContent = r.data.detail;
    showPanel("flagged");
    say("Clip flagged.");
  }

  // --- Keyboard ------------------------------------------------------------------------
  function onKey(event) {
    if (document.querySelector("dialog[open]")) return;  // dialogs keep their own keys
    if (!assignment) return;
    const target = event.target;
    const typing = target.matches && target.matches("textarea, input[type=text], input:not([type])");
    if ((event.ctrlKey || event.metaKey) && event.key === "Enter") { event.preventDefault(); submit(); return; }
    if (event.altKey && !event.ctrlKey && !event.metaKey) {
      const action = {KeyK: togglePlay, KeyJ: () => seekBy(-3), KeyL: () => seekBy(3), Comma: () => setSpeed(-1),
        Period: () => setSpeed(1), KeyS: skip, KeyF: flag}[event.code];
      if (action) { event.preventDefault(); action(); }
      return;
    }
    if (typing) {
      if (event.key === "Escape") { event.preventDefault(); $("play").focus(); }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (target.tagName === "BUTTON" && (event.key === " " || event.key === "Enter")) return;
    if (target === canvas && (event.key === "ArrowLeft" || event.key === "ArrowRight")) {
      event.preventDefault();
      seekBy(event.key === "ArrowLeft" ? -1 : 1);
      return;
    }
    const action = {" ": togglePlay, k: togglePlay, j: () => seekBy(-3), l: () => seekBy(3), "[": () => setSpeed(-1),
      "]": () => setSpeed(1), s: skip, f: flag, t: () => $("text").focus(), "?": openHelp}[event.key.toLowerCase()];
    if (action) { event.preventDefault(); action(); return; }
    if (/^[1-9]$/.test(event.key)) { event.preventDefault(); toggleLabel(event.key); }
  }

  function openHelp() { $("help").showModal(); }

  document.addEventListener("keydown", (event) => {
    if (event.key === "?" && !document.querySelector("dialog[open]") &&
        !(event.target.matches && event.target.matches("textarea, input"))) {
      event.preventDefault();
      openHelp();
      return;
    }
    onKey(event);
  });
  $("help-open").addEventListener("click", openHelp);
  $("play").addEventListener("click", togglePlay);
  $("back").addEventListener("click", () => seekBy(-3));
  $("forward").addEventListener("click", () => seekBy(3));
  $("slower").addEventListener("click", () => setSpeed(-1));
  $("faster").addEventListener("click", () => setSpeed(1));
  canvas.addEventListener("click", (event) => {
    const box = canvas.getBoundingClientRect();
    seekTo(Math.min(Math.max(0, (event.clientX - box.left) / box.width), 1));
  });
  $("task").addEventListener("submit", submit);
  $("text").addEventListener("input", scheduleSave);
  $("skip").addEventListener("click", skip);
  $("flag").addEventListener("click", flag);
  $("reload-draft").addEventListener("click", reloadDraft);
  $("take-break").addEventListener("click", () => { showPanel("break"); say("On a break."); });
  for (const button of root.querySelectorAll(".next-button")) button.addEventListener("click", next);
  audio.addEventListener("play", animate);
  audio.addEventListener("pause", draw);
  audio.addEventListener("seeked", draw);
  // The bytes of one play are dropped when it ends: the next play fetches (and counts) anew.
  audio.addEventListener("ended", () => { stopAudio(); draw(); });
  window.addEventListener("resize", draw);
  window.addEventListener("beforeunload", () => { if (saveTimer) saveDraft(); });
  next();
})();
