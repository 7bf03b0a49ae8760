// Issue 12 aids shared by the workspace and the checker's page: the spectrogram picture (a
// small log-mel array computed at ingest, never audio) and segments shown as a list.
// Framework-free; loaded before the page's own script.
window.ReviewAids = (function () {
  "use strict";

  function rgb(colour, fallback) {
    const hex = /^#([0-9a-f]{6})$/i.exec((colour || "").trim());
    const value = parseInt(hex ? hex[1] : fallback.slice(1), 16);
    return [(value >> 16) & 255, (value >> 8) & 255, value & 255];
  }

  // The theme's three stops (quiet, middle, loud) from CSS custom properties on ``element``.
  function spectrogramColours(element) {
    const style = getComputedStyle(element);
    return [rgb(style.getPropertyValue("--spec-low"), "#eef1f6"), rgb(style.getPropertyValue("--spec-mid"), "#6d8fd0"),
            rgb(style.getPropertyValue("--spec-high"), "#0b1f4d")];
  }

  // One pixel per cell (columns wide, bands high, lowest band at the bottom), on an offscreen
  // canvas the page then scales into its view. Returns null for a missing or malformed picture.
  function spectrogramImage(spec, stops) {
    if (!spec || !spec.columns || !spec.bands || !spec.data) return null;
    let raw;
    try { raw = atob(spec.data); } catch (err) { return null; }
    if (raw.length !== spec.columns * spec.bands) return null;
    const ramp = new Uint8ClampedArray(256 * 3);
    for (let level = 0; level < 256; level++) {
      const share = level / 255;
      const [from, to, t] = share < 0.5 ? [stops[0], stops[1], share * 2] : [stops[1], stops[2], share * 2 - 1];
      for (let c = 0; c < 3; c++) ramp[level * 3 + c] = from[c] + (to[c] - from[c]) * t;
    }
    const image = document.createElement("canvas");
    image.width = spec.columns;
    image.height = spec.bands;
    const ctx = image.getContext("2d");
    const pixels = ctx.createImageData(spec.columns, spec.bands);
    for (let column = 0; column < spec.columns; column++) {
      for (let band = 0; band < spec.bands; band++) {
        const level = raw.charCodeAt(column * spec.bands + band);
        const at = ((spec.bands - 1 - band) * spec.columns + column) * 4;
        pixels.data[at] = ramp[level * 3];
        pixels.data[at + 1] = ramp[level * 3 + 1];
        pixels.data[at + 2] = ramp[level * 3 + 2];
        pixels.data[at + 3] = 255;
      }
    }
    ctx.putImageData(pixels, 0, 0);
    return image;
  }

  const seconds = (ms) => (ms / 1000).toFixed(2);
  const segmentTime = (segment) => interpolate(gettext("%(start)s–%(end)s s"),
                                               {start: seconds(segment.start_ms), end: seconds(segment.end_ms)}, true);

  // A segment as list content: time, speaker, text (the text's direction from itself).
  function segmentContent(segment) {
    const time = document.createElement("span");
    time.className = "segment-time";
    time.textContent = segmentTime(segment);
    const speaker = document.createElement("span");
    speaker.className = "segment-speaker";
    speaker.textContent = segment.speaker;
    const text = document.createElement("span");
    text.className = "segment-text";
    text.dir = "auto";
    text.textContent = segment.text || "";
    return [time, " ", speaker, " ", text, " "];  // spaces, so it reads as words, not one run
  }

  // Read-only list (the checker's page).
  function segmentsShow(host, segments) {
    host.replaceChildren();
    for (const segment of segments || []) {
      const item = document.createElement("li");
      item.append(...segmentContent(segment));
      host.append(item);
    }
  }

  return {spectrogramColours, spectrogramImage, segmentContent, segmentsShow, segmentTime};
})();
