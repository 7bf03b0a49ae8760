// Supervisor console: listen to an escalated clip through the protected audio path.
// A fresh token for every play; the bytes arrive over fetch and play from a blob: URL,
// so no reusable audio address exists. Framework-free.
(function () {
  "use strict";
  const root = document.getElementById("listen");
  if (!root) return;
  const audio = document.getElementById("listen-audio");
  const button = document.getElementById("listen-play");
  const status = document.getElementById("listen-status");
  let blobUrl = null;
  window.__console = {plays: 0};  // for the browser tests

  const say = (text) => { status.textContent = text; };

  async function detailOf(response, fallback) {
    try { return (await response.json()).detail || fallback; } catch (err) { return fallback; }
  }

  async function play() {
    button.disabled = true;
    say(gettext("Loading the clip…"));
    try {
      const tokenResponse = await fetch(root.dataset.tokenUrl, {
        method: "POST", credentials: "same-origin", cache: "no-store",
        headers: {"X-CSRFToken": root.dataset.csrf, "Accept": "application/json"},
      });
      if (tokenResponse.status !== 201) {
        say(await detailOf(tokenResponse, gettext("This clip cannot be played now.")));
        return;
      }
      const token = (await tokenResponse.json()).token;
      const audioResponse = await fetch(root.dataset.audioUrl, {
        credentials: "same-origin", cache: "no-store", headers: {"X-Audio-Token": token},
      });
      if (!audioResponse.ok) {
        say(await detailOf(audioResponse, gettext("This clip cannot be played now.")));
        return;
      }
      const blob = await audioResponse.blob();
      if (blobUrl) URL.revokeObjectURL(blobUrl);
      blobUrl = URL.createObjectURL(blob);
      audio.src = blobUrl;
      await audio.play().catch(() => say(gettext("Press play on the player to start the audio.")));
      window.__console.plays += 1;
      say(gettext("Playing. This play is recorded in the audit trail."));
    } catch (err) {
      say(gettext("The server could not be reached. Check your connection."));
    } finally {
      button.disabled = false;
    }
  }

  button.addEventListener("click", play);
  audio.addEventListener("ended", () => {
    // Drop the bytes once heard: the next play fetches (and audits) them again.
    audio.removeAttribute("src");
    audio.load();
    if (blobUrl) { URL.revokeObjectURL(blobUrl); blobUrl = null; }
    say(gettext("Finished."));
  });
  audio.addEventListener("contextmenu", (event) => event.preventDefault());
})();
