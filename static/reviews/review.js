// Checker's page: lease a submission (or a clip to adjudicate), fetch its audio once through
// the protected endpoint with a single-use token, replay from memory, then accept (edited or
// not), reject with feedback, or write the final text. Framework-free, like the workspace.
(function () {
  "use strict";
  const root = document.getElementById("review");
  if (!root) return;
  const csrf = root.dataset.csrf;
  const $ = (id) => document.getElementById(id);
  const audio = $("audio");
  let item = null;     // the live review shown on the page
  // This lease's audio, fetched once (player.js).
  const player = ClipAudio.leasePlayer(audio, {csrf, onToken: (iso) => setLease(iso)});

  async function api(method, url, body, extraHeaders) {
    const headers = Object.assign({"X-CSRFToken": csrf, "Accept": "application/json"}, extraHeaders || {});
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(url, {method, headers, credentials: "same-origin", cache: "no-store",
                                   body: body === undefined ? undefined : JSON.stringify(body)});
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

  function show(id) {
    for (const name of ["empty", "done", "task"]) $(name).hidden = name !== id;
  }

  function setLease(iso) {
    if (!iso) return;
    const at = new Date(iso);
    $("lease").textContent = interpolate(gettext("Held until %s"), [at.toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"})]);
  }

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
        const input = document.createElement("input");
        input.type = group.kind === "single" ? "radio" : "checkbox";
        input.name = "group-" + group.key;
        input.value = label.key;
        input.id = "label-" + group.key + "-" + label.key;
        input.checked = ((chosen || {})[group.key] || []).includes(label.key);
        const text = document.createElement("label");
        text.htmlFor = input.id;
        text.textContent = label.name;
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

  function renderReasons(presets) {
    const host = $("reject-choices");
    host.replaceChildren();
    presets.concat(["Other"]).forEach((reason, index) => {
      const input = document.createElement("input");
      input.type = "radio";
      input.name = "reject-reason";
      input.id = "reject-reason-" + index;
      input.value = reason;
      const label = document.createElement("label");
      label.htmlFor = input.id;
      label.textContent = index === presets.length ? gettext("Other") : reason;  // the value stays "Other"
      const row = document.createElement("div");
      row.className = "choice block";
      row.append(input, label);
      host.append(row);
    });
  }

  function renderCandidates(current) {
    const list = $("candidate-list");
    list.replaceChildren();
    current.candidates.forEach((candidate, index) => {
      const entry = document.createElement("li");
      const text = document.createElement("span");
      text.dir = "auto";
      text.textContent = candidate.text || gettext("(no text)");
      const use = document.createElement("button");
      use.type = "button";
      use.textContent = interpolate(gettext("Use transcription %s"), [index + 1]);
      use.addEventListener("click", () => {
        $("text").value = candidate.text;
        renderLabels(current.label_schema, candidate.labels);
        $("text").focus();
      });
      entry.append(text, " ", use);
      list.append(entry);
    });
    const figures = current.agreement;
    $("agreement-figures").textContent = figures
      ? interpolate(gettext("Agreement %(score)s (mean WER %(wer)s, CER %(cer)s), below the project's %(threshold)s."),
        {score: Math.round(figures.score * 100) + " %", wer: figures.wer, cer: figures.cer,
         threshold: Math.round(figures.threshold * 100) + " %"}, true)
      : "";
  }

  function audioFor(current) {
    const promise = player.load(current.id, current.urls, current.carried);
    promise.then((url) => {
      if (item !== current) return;  // the review left the page meanwhile
      say(url ? gettext("Clip ready. Listen, then decide.") : player.failure());
    });
    return promise;
  }

  async function togglePlay() {
    if (!item) return;
    const current = item;
    const url = await player.load(current.id, current.urls, current.carried);
    if (!url || current !== item) return;
    player.attach(current.id);
    if (audio.paused) await audio.play().catch(() => say(gettext("Press Play again to start the audio.")));
    else audio.pause();
  }

  function tick() {
    const total = item ? item.clip.duration_ms / 1000 : 0;
    $("clock").textContent = interpolate(gettext("%(now)s / %(length)s s"),
      {now: (audio.currentTime || 0).toFixed(1), length: total.toFixed(1)}, true);
    $("play").textContent = audio.paused ? gettext("Play") : gettext("Pause");
  }

  function present(current) {
    item = current;
    current.carried = ClipAudio.carriedToken(current.audio_token);  // next's token: the first fetch needs no request
    player.forget();
    const adjudicate = current.kind === "adjudicate";
    $("task-title").textContent = adjudicate ? gettext("Decide the final text") : gettext("Check this transcription");
    $("candidates").hidden = !adjudicate;
    $("original-block").hidden = adjudicate;
    // .actions is a flex row in app.css, which would override the hidden attribute.
    $("check-actions").style.display = adjudicate ? "none" : "";
    $("adjudicate-actions").style.display = adjudicate ? "" : "none";
    $("reject-box").hidden = true;
    $("form-error").textContent = "";
    $("text-label").textContent = adjudicate ? gettext("Final text") : gettext("Text (edit to correct it before accepting)");
    const start = adjudicate ? (current.candidates[0] || {text: "", labels: {}}) : current.transcription;
    $("original").textContent = adjudicate ? "" : (current.transcription.text || gettext("(no text)"));
    // Issue 12: the transcriber's segments, shown as submitted (a checker's edit keeps them).
    const parts = adjudicate ? [] : (current.transcription.segments || []);
    $("segments-block").hidden = !parts.length;
    window.ReviewAids.segmentsShow($("segment-list"), parts);
    $("text").value = start.text;
    renderLabels(current.label_schema, start.labels);
    renderReasons(current.reject_reasons);
    if (adjudicate) renderCandidates(current);
    setLease(current.lease_expires_at);
    show("task");
    tick();
    say(gettext("Loading the clip…"));
    audioFor(current);  // fetch now, while the checker reads the text
    $("play").focus();
  }

  async function next() {
    say(gettext("Loading the next review…"));
    const r = await api("POST", root.dataset.nextUrl);
    if (r.status === 204) { item = null; player.forget(); show("empty"); say(gettext("Nothing to review.")); return; }
    if (r.status !== 201) { say(detail(r, gettext("Could not get a review."))); return; }
    present(r.data);
  }

  async function decide(path, body, message) {
    if (!item) return;
    const r = await api("POST", item.urls[path], body);
    if (!r.ok) {
      const fields = (r.data && r.data.fields) ? " " + Object.values(r.data.fields).join(" ") : "";
      $("form-error").textContent = detail(r, gettext("That did not work.")) + fields;
      return;
    }
    item = null;
    player.forget();
    $("done-detail").textContent = message(r.data);
    show("done");
    say(gettext("Saved."));
    $("done").querySelector(".next-button").focus();
  }

  $("play").addEventListener("click", togglePlay);
  $("back").addEventListener("click", () => { audio.currentTime = Math.max(0, (audio.currentTime || 0) - 3); tick(); });
  audio.addEventListener("timeupdate", tick);
  audio.addEventListener("play", tick);
  audio.addEventListener("pause", tick);
  $("accept").addEventListener("click", () => decide("accept", {text: $("text").value, labels: chosenLabels()},
    (data) => data.status === "edited" ? gettext("Accepted with your corrections; the transcriber sees the changes.")
                                       : gettext("Accepted as submitted.")));
  $("reject-open").addEventListener("click", () => {
    $("reject-box").hidden = false;
    const first = $("reject-choices").querySelector("input");
    if (first) first.focus();
  });
  $("reject-cancel").addEventListener("click", () => { $("reject-box").hidden = true; });
  $("reject").addEventListener("click", () => {
    const chosen = $("reject-choices").querySelector("input:checked");
    if (!chosen) { $("form-error").textContent = gettext("Choose a reason."); return; }
    decide("reject", {reason: chosen.value, detail: $("reject-detail").value},
           () => gettext("Sent back. The clip goes to a different transcriber, and yours reads your feedback."));
  });
  $("adjudicate").addEventListener("click", () => decide("adjudicate", {text: $("text").value, labels: chosenLabels()},
    () => gettext("The clip's final text is saved.")));
  for (const button of document.querySelectorAll(".next-button")) button.addEventListener("click", next);
  $("task").addEventListener("submit", (event) => event.preventDefault());
  next();
})();
