// Reviewer workspace: lease a clip, fetch its audio once through the protected endpoint,
// let the reviewer listen as often as they need, transcribe, label, submit, move on.
// Framework-free; the server holds all state except the clip's bytes during its lease.
(function () {
  "use strict";
  const root = document.getElementById("workspace");
  if (!root) return;
  const csrf = root.dataset.csrf;
  const $ = (id) => document.getElementById(id);
  const audio = $("audio");
  const canvas = $("waveform");
  const SPEEDS = [0.5, 0.75, 1, 1.25, 1.5, 1.75, 2];
  const ZOOMS = [1, 2, 4, 8, 16];
  const AUTOSAVE_MS = 800;
  // A withdrawn clip (flagged by someone else, opted out) must stop playing here too, but
  // replays make no request any more: a light check of the lease now and then finds out.
  const LEASE_CHECK_MS = 15000;
  const PLAY_KEYS = new Set([" ", "k"]);
  // Per reviewer (two people may share a computer), and never anything about a clip.
  const prefsKey = "annotator:" + (root.dataset.user || "") + ":";

  let assignment = null;   // the live assignment shown on the page
  // This lease's audio, fetched once (player.js); a failure that may pass is fetched again.
  const player = ClipAudio.leasePlayer(audio, {csrf, retry: true, onToken: (iso) => setLease(iso)});
  let speedIndex = 2;
  let zoomIndex = 0;
  let viewStart = 0;       // seconds at the left edge of the zoomed waveform
  let region = null;       // {start, end} seconds of a selected region; playback loops inside it
  let segments = [];       // issue 12: [{start_ms, end_ms, speaker, text}], sorted, saved with the draft
  let segmentEditing = null;  // index of the segment in the editor, -1 for a new one, null when closed
  let playUntil = null;    // seconds where a segment's playback stops
  let spectrogramShown = false;
  let spectrogramPicture = null;  // {id, image}: this clip's spectrogram, drawn once per clip and theme
  let version = 0;         // draft version this tab last saw
  let asrText = "";        // the recognizer's hypothesis for this clip ("" when none)
  let saveTimer = null;
  let saving = null;       // promise of the save in flight
  let conflict = false;
  let leaseExpiresAt = null;
  let leaseCheckedAt = 0;
  // Between Ctrl+Enter (or a confirmed skip) and the next clip, keys must not reach the
  // clip that is leaving: its lease is ending, so a play would be refused and audited.
  let transition = false;
  let queuedPlay = false;
  const listening = {id: null, ms: 0, last: null};  // milliseconds of this clip heard, replays included
  const measured = {playPressedAt: 0};
  window.__workspace = {readyAt: 0, submittedAt: 0, firstPlayMs: []};  // for the browser tests' timing

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
      return {status: 0, ok: false, data: {detail: gettext("The server could not be reached. Check your connection.")}};
    }
    let data = null;
    if (response.status !== 204 && (response.headers.get("Content-Type") || "").includes("json")) {
      data = await response.json();
    }
    return {status: response.status, ok: response.ok, data};
  }

  const say = (text) => { $("status").textContent = text; };
  const detail = (r, fallback) => (r.data && r.data.detail) || fallback;
  const live = () => assignment !== null && !transition;

  function pref(name, fallback) {
    try { const value = localStorage.getItem(prefsKey + name); return value === null ? fallback : value; }
    catch (err) { return fallback; }  // storage may be off; the default is fine then
  }
  function prefSet(name, value) {
    try { localStorage.setItem(prefsKey + name, String(value)); } catch (err) { /* not kept, harmless */ }
  }

  function showError(message, focusTarget) {
    $("form-error").textContent = message || "";
    for (const el of $("labels").querySelectorAll(".invalid")) el.classList.remove("invalid");
    if (focusTarget) {
      const group = focusTarget.closest("fieldset");
      if (group) group.classList.add("invalid");
      focusTarget.focus();
    }
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
    $("progress").textContent = interpolate(ngettext("%(done)s of %(limit)s clip today", "%(done)s of %(limit)s clips today",
      progress.clips_per_day), {done: progress.clips_today, limit: progress.clips_per_day}, true);
    $("progress").title = gettext("Clips submitted today (skips and flags do not count)");
  }

  function setLease(iso) {
    leaseExpiresAt = iso ? new Date(iso) : null;
    leaseCheckedAt = Date.now();
    tickLease();
  }

  function tickLease() {
    const el = $("lease");
    if (!leaseExpiresAt || !assignment) { el.textContent = ""; return; }
    const left = Math.max(0, Math.round((leaseExpiresAt - Date.now()) / 1000));
    el.textContent = interpolate(gettext("Time left %s"), [Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0")]);
    el.classList.toggle("low", left < 60);
    if (left === 0) leaseEnded();
    else if (!transition && Date.now() - leaseCheckedAt > LEASE_CHECK_MS && !document.hidden) checkLease();
  }
  setInterval(tickLease, 1000);

  async function checkLease() {
    const current = assignment;
    if (!current) return;
    leaseCheckedAt = Date.now();
    const r = await api("GET", current.urls.detail);
    if (current !== assignment || transition) return;
    if (r.ok && r.data.status !== "live") leaseEnded(r.data.status === "revoked");
  }

  // The lease is over: the clip's bytes leave the page with it.
  function leaseEnded(withdrawn) {
    assignment = null;
    stopAudio();
    $("expired-title").textContent = withdrawn ? gettext("This clip was withdrawn") : gettext("Time ran out on this clip");
    $("expired-detail").textContent = withdrawn
      ? gettext("It was taken out of review while you had it, so it can no longer be played. Your text is below.")
      : gettext("The clip went back to the queue after a while without activity. Your text is below if you want to copy it.");
    showPanel("expired");
    $("task").hidden = false;  // keep the text visible to copy
    for (const el of $("task").querySelectorAll("button, input, textarea")) el.disabled = true;
    $("text").disabled = false;
    $("text").readOnly = true;
    say(withdrawn ? gettext("This clip was withdrawn from review.") : gettext("Time ran out on this clip."));
  }

  // --- Guidelines (issue 12): a panel beside the task, not a modal -------------------
  let guidelinesReturn = null;  // where focus goes back when the panel closes
  function showGuidelines(html) {
    // Sanitized on the server (reviews/guidelines.py: Markdown without raw HTML, then an
    // allow-list), so inserting it as HTML is safe; the CSP would refuse scripts anyway.
    $("guidelines-body").innerHTML = html || "";
    $("guidelines-open").hidden = !html;
    if (!html) closeGuidelines(false);
  }
  function openGuidelines() {
    if ($("guidelines-open").hidden) return;
    const active = document.activeElement;
    guidelinesReturn = active && active !== document.body ? active : $("guidelines-open");
    $("guidelines").hidden = false;
    $("guidelines-open").setAttribute("aria-expanded", "true");
    $("guidelines-title").focus();
  }
  function closeGuidelines(restoreFocus = true) {
    if ($("guidelines").hidden) return;
    $("guidelines").hidden = true;
    $("guidelines-open").setAttribute("aria-expanded", "false");
    const back = guidelinesReturn;
    guidelinesReturn = null;
    if (!restoreFocus) return;
    // Back where the reviewer was, unless that control has gone away meanwhile.
    if (back && back.isConnected && !back.disabled && back.getClientRects().length) back.focus();
    else $("guidelines-open").focus();
  }
  function toggleGuidelines() {
    if ($("guidelines").hidden) openGuidelines(); else closeGuidelines();
  }

  // --- Labels --------------------------------------------------------------------
  function renderLabels(schema, chosen) {
    const host = $("labels");
    host.replaceChildren();
    for (const group of schema.groups) {
      const fieldset = document.createElement("fieldset");
      fieldset.dataset.group = group.key;
      const legend = document.createElement("legend");
      legend.textContent = group.required ? interpolate(gettext("%s (required)"), [group.name]) : group.name;
      fieldset.append(legend);
      for (const label of group.labels) {
        const id = "label-" + group.key + "-" + label.key;
        const input = document.createElement("input");
        input.type = group.kind === "single" ? "radio" : "checkbox";
        input.name = "group-" + group.key;
        input.value = label.key;
        input.id = id;
        if (label.shortcut) input.dataset.shortcut = label.shortcut;
        input.checked = (chosen[group.key] || []).includes(label.key);
        input.addEventListener("change", () => { fieldset.classList.remove("invalid"); scheduleSave(); });
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
    say(interpolate(input.checked ? gettext("Ticked %s") : gettext("Unticked %s"), [input.labels[0].textContent.replace(/ \[\d\]$/, "")]));
  }

  const groupNamed = (key) => assignment && assignment.label_schema.groups.find((g) => g.key === key);
  const firstInput = (key) => $("labels").querySelector('fieldset[data-group="' + CSS.escape(key) + '"] input');

  // Name a missing group by what the reviewer sees, and put them on it, before any request.
  function missingLabels(labels) {
    const missing = assignment.label_schema.groups.filter((g) => g.required && !(labels[g.key] || []).length);
    if (!missing.length) return false;
    const names = missing.map((g) => g.name);
    showError(missing.length > 1 ? interpolate(gettext("Choose a label in each of: %s (required)."), [names.join(", ")])
              : interpolate(gettext("Choose a %s label (required)."), [names[0]]), firstInput(missing[0].key));
    return true;
  }

  // The server's per-field problems, in the page's words (its keys are internal).
  function explainRefusal(r) {
    const fields = (r.data && r.data.fields) || {};
    const parts = [];
    let focus = null;
    for (const [key, problem] of Object.entries(fields)) {
      const group = groupNamed(key);
      const segment = /^segments(?:\[(\d+)\])?/.exec(key);  // issue 12: "segments[1].end_ms"
      const what = group ? group.name : key === "text" ? gettext("Transcription")
        : segment ? (segment[1] === undefined ? gettext("Segments")
          : interpolate(gettext("Segment %(number)s"), {number: Number(segment[1]) + 1}, true)) : key;
      parts.push(what + ": " + (problem === gettext("Required.") ? gettext("required, choose one") : problem));
      focus = focus || (group ? firstInput(key) : key === "text" ? $("text") : null);
    }
    const message = r.data && r.data.code === "invalid_labels" && parts.length ? gettext("Check the labels.") : detail(r, gettext("Could not submit."));
    showError(message + (parts.length ? " " + parts.join("; ") + "." : ""), focus);
  }

  // --- Drafts ------------------------------------------------------------------------
  // The text is marked "From ASR" while it is still exactly the recognizer's hypothesis.
  function showAsrState() {
    const fromAsr = !!asrText && $("text").value === asrText;
    $("asr-state").hidden = !fromAsr;
    $("text").classList.toggle("from-asr", fromAsr);
  }

  function scheduleSave() {
    if (!live() || conflict) return;
    $("draft-state").textContent = gettext("Unsaved changes");
    clearTimeout(saveTimer);
    saveTimer = setTimeout(saveDraft, AUTOSAVE_MS);
  }

  async function saveDraft() {
    clearTimeout(saveTimer);
    if (!live() || conflict) return;
    if (saving) await saving;
    const current = assignment;
    if (!current || transition) return;
    saving = api("PUT", current.urls.draft,
      {text: $("text").value, labels: chosenLabels(), segments: segmentsToSend(current), version});
    const r = await saving;
    saving = null;
    if (current !== assignment) return;
    if (r.ok) {
      version = r.data.version;
      setLease(r.data.lease_expires_at);
      $("draft-state").textContent = gettext("Draft saved");
    } else if (r.status === 409 && r.data && r.data.code === "stale_version") {
      conflict = true;
      $("conflict").hidden = false;
      $("draft-state").textContent = gettext("Not saved: changed elsewhere");
    } else if (r.status === 409) {
      leaseEnded(r.data && r.data.code === "assignment_withdrawn");
    } else {
      $("draft-state").textContent = interpolate(gettext("%s (will retry)"), [detail(r, gettext("Draft not saved"))]);
      saveTimer = setTimeout(saveDraft, 3000);
    }
  }

  async function reloadDraft() {
    if (!live()) return;
    const r = await api("GET", assignment.urls.detail);
    if (!r.ok) return;
    conflict = false;
    $("conflict").hidden = true;
    version = r.data.draft.version;
    $("text").value = version ? r.data.draft.text : (r.data.draft.text || asrText);
    showAsrState();
    renderLabels(r.data.label_schema, r.data.draft.labels || {});
    segments = (r.data.draft.segments || []).slice();
    renderSegments();
    $("draft-state").textContent = gettext("Loaded the newer version");
    $("text").focus();
  }

  // --- Audio: one fetch per lease, replays from memory -------------------------------
  function stopAudio() {
    player.forget();
    region = null;
  }

  async function ensureAudio() {
    const current = assignment;
    const url = await player.load(current.id, current.urls, current.carried);
    if (current !== assignment || transition) return false;
    if (!url) { say(player.failure() || gettext("This clip can no longer be played.")); return false; }
    if (player.attach(current.id)) applySpeed();
    return true;
  }

  // Media time heard, so speed does not change it; a seek or a loop's jump back is no listening.
  function listenTick() {
    if (!assignment || listening.id !== assignment.id) return;
    const now = audio.currentTime || 0;
    if (!audio.paused && listening.last !== null) {
      const step = now - listening.last;
      if (step > 0 && step < 1.5) listening.ms += step * 1000;
    }
    listening.last = now;
  }

  function listenStart(data) {
    listening.id = data.id;
    listening.last = null;
    // A reload keeps what was heard before it (the tab's own storage, this lease only).
    listening.ms = Number(sessionStorage.getItem("listened:" + data.id)) || 0;
  }

  function listenKeep() {
    if (listening.id) sessionStorage.setItem("listened:" + listening.id, String(Math.round(listening.ms)));
  }

  async function togglePlay() {
    if (transition) { queuedPlay = true; say(gettext("Loading the next clip… it will play when ready.")); return; }
    if (!live()) return;
    if (audio.paused) measured.playPressedAt = performance.now();
    if (!(await ensureAudio())) return;
    if (audio.paused) {
      playUntil = null;
      if (region && (audio.currentTime < region.start || audio.currentTime >= region.end - 0.02)) {
        audio.currentTime = region.start;
      }
      if (Date.now() - leaseCheckedAt > LEASE_CHECK_MS / 3) checkLease();  // not awaited: never delays a play
      await audio.play().catch(() => say(gettext("Press Play again to start the audio.")));
    } else {
      audio.pause();
    }
  }

  async function seekBy(seconds) {
    if (!live() || !(await ensureAudio())) return;
    const total = assignment.clip.duration_ms / 1000;
    audio.currentTime = Math.min(Math.max(0, (audio.currentTime || 0) + seconds), total);
    keepInView();
    draw();
  }

  async function seekToTime(seconds) {
    if (!live() || !(await ensureAudio())) return;
    audio.currentTime = Math.min(Math.max(0, seconds), assignment.clip.duration_ms / 1000);
    draw();
  }

  function applySpeed() {
    audio.defaultPlaybackRate = audio.playbackRate = SPEEDS[speedIndex];
    audio.preservesPitch = true;
    $("speed").textContent = SPEEDS[speedIndex] + "×";
  }

  function setSpeed(delta) {
    speedIndex = Math.min(Math.max(0, speedIndex + delta), SPEEDS.length - 1);
    prefSet("speed", SPEEDS[speedIndex]);
    applySpeed();
  }

  // --- Waveform: zoom, region, drawing -------------------------------------------------
  const total = () => (assignment ? assignment.clip.duration_ms / 1000 : 0);
  const span = () => total() / ZOOMS[zoomIndex];

  function setZoom(delta, anchorSeconds) {
    if (!assignment) return;
    const before = span();
    zoomIndex = Math.min(Math.max(0, zoomIndex + delta), ZOOMS.length - 1);
    prefSet("zoom", ZOOMS[zoomIndex]);
    const anchor = anchorSeconds === undefined ? (audio.currentTime || 0) : anchorSeconds;
    // Keep the anchor at the same place on screen while the scale changes.
    const share = before ? (anchor - viewStart) / before : 0.5;
    viewStart = anchor - share * span();
    clampView();
    $("zoom").textContent = ZOOMS[zoomIndex] + "×";
    draw();
  }

  function clampView() { viewStart = Math.min(Math.max(0, viewStart), Math.max(0, total() - span())); }

  function keepInView() {
    const now = audio.currentTime || 0;
    if (now < viewStart || now > viewStart + span()) { viewStart = now - span() * 0.1; clampView(); }
  }

  const timeAt = (clientX) => {
    const box = canvas.getBoundingClientRect();
    return viewStart + Math.min(Math.max(0, (clientX - box.left) / box.width), 1) * span();
  };

  function setRegion(start, end) {
    region = end - start >= 0.1 ? {start, end} : null;
    $("clear-region").hidden = !region;
    say(region ? interpolate(gettext("Looping %(start)s–%(end)s s. Press Esc on the waveform to stop."),
      {start: start.toFixed(1), end: end.toFixed(1)}, true) : gettext("Looping off."));
    draw();
  }

  let colours = null;
  function readColours() {
    const style = getComputedStyle(canvas);
    const get = (name, fallback) => style.getPropertyValue(name).trim() || fallback;
    colours = {wave: get("--wave", "#9fb3d1"), played: get("--wave-played", "#1f5fbf"),
      cursor: get("--wave-cursor", "#d1344b"), region: get("--wave-region", "rgba(240,180,41,.3)")};
  }

  function draw() {
    if (!colours) readColours();
    const ctx = canvas.getContext("2d");
    const width = canvas.clientWidth || 800;
    const height = canvas.clientHeight || 80;
    const ratio = window.devicePixelRatio || 1;
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
    }
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    const peaks = assignment ? assignment.clip.peaks : [];
    const length = total();
    const now = audio.currentTime || 0;
    const visible = span() || 1;
    const x = (seconds) => ((seconds - viewStart) / visible) * width;
    if (region) {
      ctx.fillStyle = colours.region;
      ctx.fillRect(x(region.start), 0, x(region.end) - x(region.start), height);
    }
    if (peaks.length && length) {
      const first = Math.floor((viewStart / length) * peaks.length);
      const last = Math.min(peaks.length, Math.ceil(((viewStart + visible) / length) * peaks.length));
      const bar = width / Math.max(1, last - first);
      for (let i = first; i < last; i++) {
        const h = Math.max(1, (peaks[i] / 100) * (height - 8));
        ctx.fillStyle = (i / peaks.length) * length < now ? colours.played : colours.wave;
        ctx.fillRect((i - first) * bar, (height - h) / 2, Math.max(1, bar - 0.5), h);
      }
    }
    // Issue 12: each segment as a bar along the top, one colour per speaker.
    const speakers = assignment && assignment.label_schema.segments ? assignment.label_schema.segments.speakers : [];
    for (const segment of segments) {
      const left = x(segment.start_ms / 1000), right = x(segment.end_ms / 1000);
      if (right < 0 || left > width) continue;
      ctx.fillStyle = speakers.indexOf(segment.speaker) % 2 ? colours.cursor : colours.played;
      ctx.fillRect(left, 1 + (speakers.indexOf(segment.speaker) % 2) * 5, Math.max(2, right - left - 1), 4);
    }
    ctx.fillStyle = colours.cursor;
    ctx.fillRect(Math.min(width - 2, Math.max(0, x(now))), 0, 2, height);
    drawSpectrogram(now, length, visible);
    $("clock").textContent = interpolate(gettext("%(now)s / %(length)s s"), {now: now.toFixed(1), length: length.toFixed(1)}, true);
    canvas.setAttribute("aria-valuenow", now.toFixed(1));
    canvas.setAttribute("aria-valuetext", interpolate(gettext("%(now)s of %(length)s seconds"),
      {now: now.toFixed(1), length: length.toFixed(1)}, true));
    $("play").textContent = audio.paused ? gettext("Play") : gettext("Pause");
  }

  // --- Spectrogram (issue 12): the same view as the waveform, zoom and playhead included ------
  function drawSpectrogram(now, length, visible) {
    const spec = $("spectrogram");
    if (spec.hidden || !assignment || !length) return;
    if (!spectrogramPicture || spectrogramPicture.id !== assignment.id) {
      const image = window.ReviewAids.spectrogramImage(assignment.clip.spectrogram,
                                                      window.ReviewAids.spectrogramColours(spec));
      spectrogramPicture = {id: assignment.id, image};
    }
    const image = spectrogramPicture.image;
    const ctx = spec.getContext("2d");
    const width = spec.clientWidth || 800;
    const height = spec.clientHeight || 96;
    const ratio = window.devicePixelRatio || 1;
    if (spec.width !== Math.round(width * ratio) || spec.height !== Math.round(height * ratio)) {
      spec.width = Math.round(width * ratio);
      spec.height = Math.round(height * ratio);
    }
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    if (image) {
      ctx.imageSmoothingEnabled = true;
      ctx.drawImage(image, (viewStart / length) * image.width, 0, (visible / length) * image.width, image.height,
                    0, 0, width, height);
    }
    const x = (seconds) => ((seconds - viewStart) / visible) * width;
    if (region) {
      ctx.fillStyle = colours.region;
      ctx.fillRect(x(region.start), 0, x(region.end) - x(region.start), height);
    }
    ctx.fillStyle = colours.cursor;
    ctx.fillRect(Math.min(width - 2, Math.max(0, x(now))), 0, 2, height);
    spec.dataset.drawn = String(Number(spec.dataset.drawn || 0) + 1);  // for the browser test
  }

  function applySpectrogram() {
    const available = !!(assignment && assignment.clip.spectrogram);
    $("spectrogram-toggle").hidden = !available;  // clips ingested before issue 12 have none
    $("spectrogram").hidden = !(available && spectrogramShown);
    $("spectrogram-toggle").setAttribute("aria-pressed", String(spectrogramShown));
    draw();
  }

  function toggleSpectrogram() {
    if (!assignment || !assignment.clip.spectrogram) return;
    spectrogramShown = !spectrogramShown;
    prefSet("spectrogram", spectrogramShown ? "1" : "0");
    applySpectrogram();
    say(spectrogramShown ? gettext("Spectrogram shown.") : gettext("Spectrogram hidden."));
  }

  // --- Segments (issue 12): from the selected part, a speaker, optional text -------------------
  const segmentsAsked = (current) => !!(current && current.label_schema.segments);
  const segmentsToSend = (current) => (segmentsAsked(current) ? segments : undefined);

  function renderSegments() {
    const asked = segmentsAsked(assignment);
    $("segments").hidden = !asked;
    const list = $("segment-list");
    list.replaceChildren();
    if (!asked) return;
    segments.forEach((segment, index) => {
      const item = document.createElement("li");
      const button = (name, label, action) => {
        const b = document.createElement("button");
        b.type = "button";
        b.className = "link-button";
        const hidden = document.createElement("span");
        hidden.className = "visually-hidden";
        hidden.textContent = " " + interpolate(gettext("segment %(number)s"), {number: index + 1}, true);
        b.append(label, hidden);
        b.dataset.action = name;  // untranslated: the focus moves find buttons by it
        b.addEventListener("click", action);
        return b;
      };
      const actions = document.createElement("span");
      actions.className = "segment-actions";
      actions.append(button("play", gettext("Play"), () => playSegment(index)),
                     button("edit", gettext("Edit"), () => openSegmentEditor(index)),
                     button("delete", gettext("Delete"), () => deleteSegment(index)));
      item.append(...window.ReviewAids.segmentContent(segment), actions);
      list.append(item);
    });
  }

  function openSegmentEditor(index) {
    if (!live() || !segmentsAsked(assignment)) return;
    const speakers = assignment.label_schema.segments.speakers;
    const select = $("segment-speaker");
    select.replaceChildren(...speakers.map((name) => new Option(name, name)));
    const editing = index >= 0 ? segments[index] : null;
    const now = audio.currentTime || 0;
    const start = editing ? editing.start_ms / 1000 : region ? region.start : now;
    const end = editing ? editing.end_ms / 1000 : region ? region.end : Math.min(total(), now + 1);
    $("segment-start").value = start.toFixed(2);
    $("segment-end").value = end.toFixed(2);
    $("segment-start").max = $("segment-end").max = total().toFixed(2);
    // A new segment takes the speaker after the last one's (turns alternate more often than not).
    const last = segments.length ? speakers.indexOf(segments[segments.length - 1].speaker) : -1;
    select.value = editing ? editing.speaker : speakers[(last + 1) % speakers.length];
    $("segment-text").value = editing ? editing.text : "";
    $("segment-error").textContent = "";
    $("segment-editor-title").textContent = editing
      ? interpolate(gettext("Edit segment %(number)s"), {number: index + 1}, true) : gettext("New segment");
    $("segment-editor").hidden = false;
    segmentEditing = index;
    select.focus();
  }

  function closeSegmentEditor(focusTarget) {
    if (segmentEditing === null) return;
    segmentEditing = null;
    $("segment-editor").hidden = true;
    if (focusTarget) focusTarget.focus();
  }

  function saveSegment() {
    if (segmentEditing === null || !live()) return;
    const start = Math.round(Number($("segment-start").value) * 1000);
    const limit = assignment.clip.duration_ms;
    let end = Math.round(Number($("segment-end").value) * 1000);
    if (end > limit && end - limit < 10) end = limit;  // the field shows hundredths: its end is the clip's end
    const problem = !$("segment-start").value || !$("segment-end").value || isNaN(start) || isNaN(end)
      ? gettext("Give a start and an end in seconds.") : start < 0 ? gettext("The start cannot be before 0.")
      : end > limit ? interpolate(gettext("The end is past the clip's end (%(seconds)s s)."),
                                  {seconds: (limit / 1000).toFixed(2)}, true)
      : end <= start ? gettext("The end must come after the start.") : "";
    if (problem) { $("segment-error").textContent = problem; return; }
    const segment = {start_ms: start, end_ms: end, speaker: $("segment-speaker").value,
                     text: $("segment-text").value.trim()};
    if (segmentEditing >= 0) segments[segmentEditing] = segment; else segments.push(segment);
    segments.sort((a, b) => a.start_ms - b.start_ms || a.end_ms - b.end_ms);
    const index = segments.indexOf(segment);
    segmentEditing = null;
    $("segment-editor").hidden = true;
    renderSegments();
    scheduleSave();
    draw();
    say(interpolate(gettext("Segment %(number)s saved: %(speaker)s, %(time)s."),
                    {number: index + 1, speaker: segment.speaker, time: window.ReviewAids.segmentTime(segment)}, true));
    $("segment-list").children[index].querySelector("button").focus();
  }

  function deleteSegment(index) {
    if (!live()) return;
    segments.splice(index, 1);
    closeSegmentEditor();
    renderSegments();
    scheduleSave();
    draw();
    say(interpolate(gettext("Segment %(number)s deleted."), {number: index + 1}, true));
    const items = $("segment-list").children;
    const next = items[Math.min(index, items.length - 1)];
    (next ? next.querySelector('button[data-action="delete"]') : $("segment-new")).focus();
  }

  async function playSegment(index) {
    const segment = segments[index];
    if (!segment || !live() || !(await ensureAudio())) return;
    region = null;
    $("clear-region").hidden = true;
    audio.currentTime = segment.start_ms / 1000;
    keepInView();
    await audio.play().catch(() => say(gettext("Press Play again to start the audio.")));
    playUntil = segment.end_ms / 1000;  // after play(): a plain play clears it
    stopAtSegmentEnd();
  }

  // Animation frames may come late on a busy machine: a timer stops the segment on time too.
  function stopAtSegmentEnd() {
    if (playUntil === null || audio.paused) return;
    const left = (playUntil - audio.currentTime) / (audio.playbackRate || 1);
    if (left <= 0) { playUntil = null; audio.pause(); return; }
    setTimeout(stopAtSegmentEnd, Math.min(250, Math.max(5, left * 1000)));
  }

  function animate() {
    listenTick();
    if (playUntil !== null && audio.currentTime >= playUntil) { playUntil = null; audio.pause(); }
    if (region && !audio.paused && audio.currentTime >= region.end) audio.currentTime = region.start;
    if (zoomIndex > 0 && !audio.paused) keepInView();
    draw();
    if (!audio.paused) requestAnimationFrame(animate);
  }

  // --- The task ------------------------------------------------------------------------
  function show(data) {
    assignment = data;
    data.carried = ClipAudio.carriedToken(data.audio_token);  // next's token: the first fetch needs no request
    transition = false;
    conflict = false;
    version = data.draft.version;
    stopAudio();
    listenStart(data);
    viewStart = 0;
    $("zoom").textContent = ZOOMS[zoomIndex] + "×";
    $("clear-region").hidden = true;
    for (const el of $("task").querySelectorAll("button, input, textarea")) el.disabled = false;
    $("text").readOnly = false;
    $("conflict").hidden = true;
    $("draft-state").textContent = version ? gettext("Draft restored") : "";
    // No draft yet: start from the recognizer's hypothesis, if there is one, to correct.
    asrText = (data.asr && data.asr.text) || "";
    const confidence = data.asr && typeof data.asr.confidence === "number" ? data.asr.confidence : null;
    $("asr-detail").textContent = confidence === null
      ? gettext("This text is the speech recognizer's guess: listen and correct it.")
      : interpolate(gettext("This text is the speech recognizer's guess (confidence %s): listen and correct it."),
        [Math.round(confidence * 100) + "%"]);
    $("text").value = version ? data.draft.text : (data.draft.text || asrText);
    showAsrState();
    renderLabels(data.label_schema, data.draft.labels || {});
    segments = (data.draft.segments || []).slice();
    segmentEditing = null;
    $("segment-editor").hidden = true;
    renderSegments();
    playUntil = null;
    applySpectrogram();
    showGuidelines(data.guidelines_html);
    canvas.setAttribute("aria-valuemax", (data.clip.duration_ms / 1000).toFixed(1));
    showError("");
    showProgress(data.progress);
    setLease(data.lease_expires_at);
    showPanel("task");
    draw();
    say(interpolate(gettext("Clip ready (%s s). Press Play or K to listen."), [(data.clip.duration_ms / 1000).toFixed(1)]));
    window.__workspace.readyAt = performance.now();
    $("play").focus();
    // Fetch this lease's audio now, while the reviewer reads the page: the first play then
    // starts from memory. It is the one fetch this lease needs; replays cost nothing.
    ensureAudio();
    if (queuedPlay) { queuedPlay = false; togglePlay(); }
  }

  async function next() {
    transition = true;
    say(gettext("Loading your next clip…"));
    const r = await api("POST", root.dataset.nextUrl);
    if (r.status === 201) return show(r.data);
    transition = false;
    queuedPlay = false;
    assignment = null;
    setLease(null);
    stopAudio();
    if (r.status === 204) { showPanel("empty"); say(gettext("No clips waiting.")); return; }
    if (r.status === 429) {
      const paused = r.data && r.data.code === "reviewer_paused";  // issue 11: paused on gold accuracy
      $("quota-title").textContent = paused ? gettext("Your work is paused") : gettext("That's all for now");
      $("quota-detail").textContent = detail(r, gettext("You have reached a limit for now."));
      const resets = r.data && r.data.resets_at ? new Date(r.data.resets_at) : null;
      $("quota-reset").textContent = resets ? interpolate(gettext("You can continue from %s."), [resets.toLocaleString()]) : "";
      showPanel("quota");
      say(detail(r, gettext("Limit reached.")));
      return;
    }
    showPanel("none");
    say(detail(r, gettext("Could not load a clip. Try again in a moment.")));
  }

  // The clip is leaving: stop it, close its listening count, and let keys wait for the next one.
  function leave() {
    transition = true;
    clearTimeout(saveTimer);
    audio.pause();
    listenTick();
    listenKeep();
    $("text").readOnly = true;
    return Math.round(listening.ms);
  }

  // A fetch still on its way would reach the server after the lease ended, be refused and
  // audited as a play after the lease: let it land first (it is usually done already).
  async function audioSettled() {
    await player.settled();
  }

  function stay() {
    transition = false;
    queuedPlay = false;
    $("text").readOnly = false;
  }

  async function submit(event) {
    if (event) event.preventDefault();
    if (!live() || $("submit").disabled) return;
    const labels = chosenLabels();
    if (missingLabels(labels)) return;
    $("submit").disabled = true;
    window.__workspace.submittedAt = performance.now();  // the reviewer's press, not the server's answer
    const current = assignment;
    const listenedMs = leave();
    try {
      await audioSettled();
      const r = await api("POST", current.urls.submit,
        {text: $("text").value, labels, segments: segmentsToSend(current), listened_ms: listenedMs});
      if (r.ok) {
        sessionStorage.removeItem("listened:" + current.id);
        say(gettext("Submitted."));
        return next();
      }
      stay();
      if (r.status === 409) return leaseEnded(r.data && r.data.code === "assignment_withdrawn");
      explainRefusal(r);
    } finally {
      $("submit").disabled = false;
    }
  }

  // --- Dialogs: Enter confirms, Esc cancels ---------------------------------------------
  function ask(dialog, prepare, read) {
    const form = dialog.querySelector("form");
    const error = dialog.querySelector(".error");
    error.hidden = true;
    prepare();
    return new Promise((resolve) => {
      const onSubmit = (event) => {
        if (event.submitter && event.submitter.value === "cancel") return;
        const value = read();
        if (!value) {
          event.preventDefault();
          error.hidden = false;
        }
      };
      form.addEventListener("submit", onSubmit);
      dialog.addEventListener("close", () => {
        form.removeEventListener("submit", onSubmit);
        resolve(dialog.returnValue === "confirm" ? read() : null);
      }, {once: true});
      dialog.returnValue = "";
      dialog.showModal();
      (dialog.querySelector("[autofocus]") || dialog.querySelector("input, textarea")).focus();
    });
  }

  function confirmOnEnter(dialog) {
    dialog.addEventListener("keydown", (event) => {
      if (event.key !== "Enter" || event.shiftKey || event.isComposing) return;
      if (event.target.tagName === "BUTTON") return;  // a focused button does its own thing
      event.preventDefault();
      dialog.querySelector("form").requestSubmit(dialog.querySelector('button[value="confirm"]'));
    });
  }

  function buildSkipReasons(presets) {
    const host = $("skip-choices");
    host.replaceChildren();
    const reasons = presets.concat([gettext("Other")]);
    reasons.forEach((reason, index) => {
      const input = document.createElement("input");
      input.type = "radio";
      input.name = "skip-reason";
      input.id = "skip-reason-" + index;
      input.value = index === reasons.length - 1 ? "" : reason;
      input.dataset.shortcut = String(index + 1);
      input.setAttribute("aria-keyshortcuts", String(index + 1));
      const label = document.createElement("label");
      label.htmlFor = input.id;
      label.textContent = reason + " [" + (index + 1) + "]";
      const row = document.createElement("div");
      row.className = "choice block";
      row.append(input, label);
      host.append(row);
    });
    host.querySelector("input").autofocus = true;
  }

  function skipReason() {
    const chosen = $("skip-choices").querySelector("input:checked");
    if (!chosen) return "";
    return chosen.value || $("skip-other").value.trim();
  }

  async function skip() {
    if (!live()) return;
    const reason = await ask($("skip-dialog"), () => {
      buildSkipReasons(assignment.skip_reasons || []);
      $("skip-other").value = "";
    }, skipReason);
    if (!reason || !live()) return live() && $("play").focus();
    const current = assignment;
    const listenedMs = leave();
    await audioSettled();
    const r = await api("POST", current.urls.skip, {reason, listened_ms: listenedMs});
    if (r.ok) { sessionStorage.removeItem("listened:" + current.id); return next(); }
    stay();
    if (r.status === 409) return leaseEnded(r.data && r.data.code === "assignment_withdrawn");
    showError(detail(r, gettext("Could not skip.")));
  }

  async function flag() {
    if (!live()) return;
    const reason = await ask($("flag-dialog"), () => { $("flag-text").value = ""; }, () => $("flag-text").value.trim());
    if (!reason || !live()) return live() && $("play").focus();
    const current = assignment;
    leave();
    await audioSettled();
    const r = await api("POST", current.urls.flag, {reason});
    if (!r.ok) { stay(); return showError(detail(r, gettext("Could not flag the clip."))); }
    transition = false;
    assignment = null;
    setLease(null);
    stopAudio();
    $("flagged-detail").textContent = r.data.detail;
    showPanel("flagged");
    say(gettext("Clip flagged."));
  }

  // --- Keyboard ------------------------------------------------------------------------
  function onKey(event) {
    if (document.querySelector("dialog[open]")) return;  // dialogs keep their own keys
    const target = event.target;
    if (target.closest && target.closest("#segment-editor")) return;  // the editor keeps its own keys
    const typing = target.matches && target.matches("textarea, input[type=text], input:not([type])");
    const key = event.key.toLowerCase();
    if (transition) {
      // The clip is on its way out: a play waits for the next clip, nothing else reaches the server.
      const play = (event.altKey && event.code === "KeyK") || (!typing && !event.ctrlKey && !event.metaKey &&
                                                               !event.altKey && PLAY_KEYS.has(key));
      if (play) { event.preventDefault(); togglePlay(); return; }
      if (!typing || event.altKey || event.ctrlKey || event.metaKey) event.preventDefault();
      return;
    }
    if (!assignment) return;
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
    // A focused label (e.g. after "choose a Speaker label") takes Space and arrows as usual.
    if (target.matches && target.matches("input[type=radio], input[type=checkbox]") &&
        (event.key === " " || event.key.startsWith("Arrow"))) return;
    if (target === canvas) {
      const step = {ArrowLeft: -1, ArrowRight: 1}[event.key];
      if (step) { event.preventDefault(); seekBy(step); return; }
      if (event.key === "Escape" && region) { event.preventDefault(); setRegion(0, 0); return; }
    }
    const action = {" ": togglePlay, k: togglePlay, j: () => seekBy(-3), l: () => seekBy(3), "[": () => setSpeed(-1),
      "]": () => setSpeed(1), "=": () => setZoom(1), "+": () => setZoom(1), "-": () => setZoom(-1),
      s: skip, f: flag, t: () => $("text").focus(), g: toggleGuidelines, "?": openHelp, v: toggleSpectrogram,
      n: () => openSegmentEditor(-1)}[key];
    if (action) { event.preventDefault(); action(); return; }
    if (/^[1-9]$/.test(event.key)) { event.preventDefault(); toggleLabel(event.key); }
  }

  function openHelp() { $("help").showModal(); }

  document.addEventListener("keydown", (event) => {
    if (event.key === "?" && !transition && !document.querySelector("dialog[open]") &&
        !(event.target.matches && event.target.matches("textarea, input"))) {
      event.preventDefault();
      openHelp();
      return;
    }
    onKey(event);
  });
  // Digits pick a skip reason; typing in "Other" picks Other.
  $("skip-dialog").addEventListener("keydown", (event) => {
    if (event.target === $("skip-other") || !/^[1-9]$/.test(event.key)) return;
    const input = $("skip-choices").querySelector('input[data-shortcut="' + event.key + '"]');
    if (!input) return;
    event.preventDefault();
    input.checked = true;
    input.focus();
    if (!input.value) $("skip-other").focus();
  });
  $("skip-other").addEventListener("input", () => {
    const other = [...$("skip-choices").querySelectorAll("input")].pop();
    if (other) other.checked = true;
  });
  confirmOnEnter($("skip-dialog"));
  confirmOnEnter($("flag-dialog"));
  $("help-open").addEventListener("click", openHelp);
  $("guidelines-open").addEventListener("click", toggleGuidelines);
  $("guidelines-close").addEventListener("click", () => closeGuidelines());
  // Esc anywhere in the panel closes it (before the page's own Esc handling sees the key).
  $("guidelines").addEventListener("keydown", (event) => {
    if (event.key !== "Escape" || document.querySelector("dialog[open]")) return;
    event.preventDefault();
    event.stopPropagation();
    closeGuidelines();
  });
  $("spectrogram-toggle").addEventListener("click", toggleSpectrogram);
  $("segment-new").addEventListener("click", () => openSegmentEditor(-1));
  $("segment-save").addEventListener("click", saveSegment);
  $("segment-cancel").addEventListener("click", () => closeSegmentEditor($("segment-new")));
  // In the segment editor Enter saves and Esc cancels; other keys are the fields' own.
  $("segment-editor").addEventListener("keydown", (event) => {
    if (event.isComposing || document.querySelector("dialog[open]")) return;
    if (event.key === "Escape") { event.preventDefault(); closeSegmentEditor($("segment-new")); return; }
    if (event.key === "Enter" && !event.shiftKey && event.target.tagName !== "BUTTON") {
      event.preventDefault();
      if (event.ctrlKey || event.metaKey) return;  // no submit from a half-made segment
      saveSegment();
    }
  });
  $("play").addEventListener("click", togglePlay);
  $("back").addEventListener("click", () => seekBy(-3));
  $("forward").addEventListener("click", () => seekBy(3));
  $("slower").addEventListener("click", () => setSpeed(-1));
  $("faster").addEventListener("click", () => setSpeed(1));
  $("zoom-out").addEventListener("click", () => setZoom(-1));
  $("zoom-in").addEventListener("click", () => setZoom(1));
  $("clear-region").addEventListener("click", () => { setRegion(0, 0); canvas.focus(); });
  // Click to seek; drag to select a region that then plays in a loop.
  let dragFrom = null;
  canvas.addEventListener("pointerdown", (event) => {
    if (!live()) return;
    dragFrom = {x: event.clientX, t: timeAt(event.clientX)};
    canvas.setPointerCapture(event.pointerId);
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!dragFrom || Math.abs(event.clientX - dragFrom.x) < 4) return;
    const t = timeAt(event.clientX);
    region = {start: Math.min(dragFrom.t, t), end: Math.max(dragFrom.t, t)};
    draw();
  });
  canvas.addEventListener("pointerup", (event) => {
    if (!dragFrom) return;
    const from = dragFrom;
    dragFrom = null;
    if (Math.abs(event.clientX - from.x) < 4) { seekToTime(from.t); return; }
    const t = timeAt(event.clientX);
    setRegion(Math.min(from.t, t), Math.max(from.t, t));
    seekToTime(region ? region.start : t);
  });
  // Wheel over the waveform zooms around the pointer (the page scrolls elsewhere).
  canvas.addEventListener("wheel", (event) => {
    if (!assignment || event.deltaY === 0) return;
    event.preventDefault();
    setZoom(event.deltaY < 0 ? 1 : -1, timeAt(event.clientX));
  }, {passive: false});
  $("task").addEventListener("submit", submit);
  $("text").addEventListener("input", scheduleSave);
  $("text").addEventListener("input", showAsrState);
  $("skip").addEventListener("click", skip);
  $("flag").addEventListener("click", flag);
  $("reload-draft").addEventListener("click", reloadDraft);
  $("take-break").addEventListener("click", () => { showPanel("break"); say(gettext("On a break.")); });
  for (const button of root.querySelectorAll(".next-button")) button.addEventListener("click", next);
  audio.addEventListener("play", () => { listening.last = audio.currentTime; animate(); });
  audio.addEventListener("playing", () => {
    if (measured.playPressedAt) {
      window.__workspace.firstPlayMs.push(performance.now() - measured.playPressedAt);
      measured.playPressedAt = 0;
    }
  });
  audio.addEventListener("pause", () => { listenTick(); listenKeep(); draw(); });
  audio.addEventListener("seeking", () => { listening.last = null; });
  audio.addEventListener("seeked", () => { listening.last = audio.currentTime; draw(); });
  audio.addEventListener("timeupdate", listenTick);
  // The bytes stay for the whole lease: a replay after the end starts from memory.
  audio.addEventListener("ended", () => {
    listenTick();
    listenKeep();
    if (region) { audio.currentTime = region.start; audio.play(); return; }
    draw();
  });
  matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => {
    colours = null;
    spectrogramPicture = null;
    draw();
  });
  window.addEventListener("resize", draw);
  window.addEventListener("beforeunload", () => { listenTick(); listenKeep(); if (saveTimer) saveDraft(); });

  const savedSpeed = SPEEDS.indexOf(Number(pref("speed", "1")));
  if (savedSpeed >= 0) speedIndex = savedSpeed;
  const savedZoom = ZOOMS.indexOf(Number(pref("zoom", "1")));
  if (savedZoom >= 0) zoomIndex = savedZoom;
  spectrogramShown = pref("spectrogram", "0") === "1";
  applySpeed();
  next();
})();
