// Supervisor console: listen to an escalated clip through the protected audio path
// (player.js). A fresh token for every play; the bytes arrive over fetch and play from a
// blob: URL, so no reusable audio address exists. Framework-free.
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
  const UNREACHABLE = gettext("The server could not be reached. Check your connection.");

  async function play() {
    button.disabled = true;
    say(gettext("Loading the clip…"));
    try {
      const result = await ClipAudio.fetchClip({audio_token: root.dataset.tokenUrl, audio: root.dataset.audioUrl},
                                               root.dataset.csrf, null, {gone: gettext("This clip cannot be played now."),
                                                                         offline: UNREACHABLE});
      if (!result.blob) {
        say(result.message);
        return;
      }
      if (blobUrl) URL.revokeObjectURL(blobUrl);
      blobUrl = URL.createObjectURL(result.blob);
      audio.src = blobUrl;
      await audio.play().catch(() => say(gettext("Press play on the player to start the audio.")));
      window.__console.plays += 1;
      say(gettext("Playing. This play is recorded in the audit trail."));
    } catch (err) {
      say(UNREACHABLE);
    } finally {
      button.disabled = false;
    }
  }

  button.addEventListener("click", play);
  button.disabled = false;  // the page renders it disabled until this script listens
  audio.addEventListener("ended", () => {
    // Drop the bytes once heard: the next play fetches (and audits) them again.
    audio.removeAttribute("src");
    audio.load();
    if (blobUrl) { URL.revokeObjectURL(blobUrl); blobUrl = null; }
    say(gettext("Finished."));
  });
  audio.addEventListener("contextmenu", (event) => event.preventDefault());
})();
