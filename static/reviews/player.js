// The protected audio path, written once for every page that plays a clip: ask for a fresh
// single-use token, fetch the bytes with it (X-Audio-Token), and keep them as a blob in page
// memory, so no reusable audio address exists. Pages hand in the URLs the server gave them.
// Framework-free; exposes window.ClipAudio. Its words come from Django's JavaScript catalogue,
// which every page loads before this script.
(function () {
  "use strict";
  const GONE = gettext("This clip can no longer be played.");
  const OFFLINE = gettext("The audio could not be loaded. Check your connection.");
  const UNREACHABLE = gettext("The server could not be reached. Check your connection.");

  async function detailOf(response, fallback) {
    try { return (await response.json()).detail || fallback; } catch (err) { return fallback; }
  }

  // A token the server handed out with the lease (next's audio_token), usable once while
  // fresh: {token, until} on the performance.now() clock, ten seconds short of its expiry.
  function carriedToken(grant) {
    return grant ? {token: grant.token, until: performance.now() + (grant.expires_in - 10) * 1000} : null;
  }

  // One token, one fetch. Resolves {blob} or {message, retry}; never rejects for network
  // trouble. onToken(lease_expires_at) runs once the token is granted; `messages` may replace
  // the texts of GONE and OFFLINE; a fresh `carried` token (carriedToken) spares the request.
  async function fetchClip(urls, csrf, onToken, messages, carried) {
    const gone = (messages && messages.gone) || GONE;
    const offline = (messages && messages.offline) || OFFLINE;
    const token = carried && performance.now() < carried.until ? carried.token : await tokenAsk();
    if (typeof token !== "string") return token;
    let response;
    try {
      response = await fetch(urls.audio, {
        credentials: "same-origin", cache: "no-store", headers: {"X-Audio-Token": token},
      });
    } catch (err) {
      return {message: offline, retry: true};
    }
    if (!response.ok) {
      return {message: await detailOf(response, gone), retry: response.status >= 500};
    }
    return {blob: await response.blob()};

    // The token, or the failure to give back.
    async function tokenAsk() {
      let tokenResponse;
      try {
        tokenResponse = await fetch(urls.audio_token, {
          method: "POST", credentials: "same-origin", cache: "no-store",
          headers: {"X-CSRFToken": csrf, "Accept": "application/json"},
        });
      } catch (err) {
        return {message: (messages && messages.offline) || UNREACHABLE, retry: true};
      }
      if (tokenResponse.status !== 201) {
        const json = (tokenResponse.headers.get("Content-Type") || "").includes("json");
        return {message: json ? await detailOf(tokenResponse, gone) : gone, retry: false};
      }
      const grant = await tokenResponse.json();
      if (onToken) onToken(grant.lease_expires_at);
      return grant.token;
    }
  }

  // One fetch per lease, replays from memory: the blob lives exactly as long as the lease on
  // the page. options: csrf; onToken(lease_expires_at) once the token is granted; retry: fetch
  // again after a failure that may pass (network, 5xx) instead of keeping the failure.
  // load(id, urls, carried): `carried` (carriedToken) serves the first fetch only; a retry
  // asks for a fresh token, since the first may have been spent.
  function leasePlayer(audio, options) {
    let loaded = null;  // {id, promise, url, failed}: this lease's audio, fetched once

    function load(id, urls, carried) {
      if (loaded && loaded.id === id && !(options.retry && loaded.failed && loaded.failed.retry)) {
        return loaded.promise;
      }
      const first = !loaded || loaded.id !== id;
      const entry = {id, url: null, failed: null};
      entry.promise = fetchClip(urls, options.csrf, options.onToken, null, first ? carried : null).then((result) => {
        if (loaded !== entry) return null;  // the clip left the page meanwhile
        if (result.blob) entry.url = URL.createObjectURL(result.blob);
        else entry.failed = result;
        return entry.url;
      }).catch(() => {
        entry.failed = {message: OFFLINE, retry: true};
        return null;
      });
      loaded = entry;
      return entry.promise;
    }

    return {
      load,
      // The failure's message when the last load gave no audio ("" otherwise).
      failure: () => (loaded && loaded.failed ? loaded.failed.message : ""),
      // Point the element at this lease's bytes; true when that changed its source.
      attach(id) {
        if (!loaded || loaded.id !== id || !loaded.url || audio.dataset.for === id) return false;
        audio.src = loaded.url;
        audio.dataset.for = id;
        return true;
      },
      // A fetch still on its way: let it land (the page ends the lease after it).
      settled: () => (loaded ? loaded.promise : Promise.resolve(null)),
      // The lease is over: the bytes leave the page with it.
      forget() {
        audio.pause();
        audio.removeAttribute("src");
        delete audio.dataset.for;
        if (loaded && loaded.url) URL.revokeObjectURL(loaded.url);
        loaded = null;
        audio.load();
      },
    };
  }

  window.ClipAudio = {carriedToken, fetchClip, leasePlayer};
})();
