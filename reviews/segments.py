"""Segments of a transcription (issue 12): start and end times, a speaker from the project's
schema, optional text. Validated here, for drafts and submissions alike, before anything is
written: a bad segment refuses the whole request with a 400 naming the field, and nothing
is stored. Segment text is content, like the transcript: it never goes to a log or an audit
event."""

import math

from django.utils.translation import gettext

from .errors import InvalidInput

SEGMENTS_MAX = 200
SEGMENT_TEXT_MAX = 1000
FIELDS = {"start_ms", "end_ms", "speaker", "text"}


def _refuse(field: str, problem: str):
    detail = gettext("A segment is not valid (%(field)s: %(problem)s)") % {"field": field, "problem": problem}
    raise InvalidInput(detail, code="invalid_segments", fields={field: problem})


def _milliseconds(value, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        _refuse(field, gettext("A number of milliseconds."))
    return int(round(value))


def segments_validate(segments, *, speakers: list[str], duration_ms: int) -> list[dict]:
    """Return the segments checked and sorted by start then end, or raise InvalidInput.

    Each is ``{start_ms, end_ms, speaker, text}`` with 0 <= start_ms < end_ms <= duration_ms,
    a speaker from ``speakers`` and at most SEGMENT_TEXT_MAX characters of text. Segments
    may overlap (people talk over each other)."""
    if segments in (None, ""):
        segments = []
    if not isinstance(segments, list):
        _refuse("segments", gettext("A list of segments."))
    if segments and not speakers:
        _refuse("segments", gettext("This project does not use segments."))
    if len(segments) > SEGMENTS_MAX:
        _refuse("segments", gettext("At most %(count)d segments.") % {"count": SEGMENTS_MAX})
    clean = []
    for index, segment in enumerate(segments):
        at = f"segments[{index}]"
        if not isinstance(segment, dict):
            _refuse(at, gettext("An object with start_ms, end_ms, speaker and text."))
        unknown = sorted(str(key)[:30] for key in segment if key not in FIELDS)
        if unknown:
            _refuse(f"{at}.{unknown[0]}", gettext("Unknown field."))
        for name in ("start_ms", "end_ms", "speaker"):
            if name not in segment:
                _refuse(f"{at}.{name}", gettext("Required."))
        start = _milliseconds(segment["start_ms"], f"{at}.start_ms")
        end = _milliseconds(segment["end_ms"], f"{at}.end_ms")
        if start < 0:
            _refuse(f"{at}.start_ms", gettext("At least 0."))
        if end > duration_ms:
            _refuse(f"{at}.end_ms", gettext("At most the clip's length (%(length)d ms).") % {"length": duration_ms})
        if end <= start:
            _refuse(f"{at}.end_ms", gettext("After start_ms."))
        speaker = segment["speaker"]
        if not isinstance(speaker, str) or speaker not in speakers:
            _refuse(f"{at}.speaker",
                    gettext("One of the project's speakers: %(speakers)s.") % {"speakers": ", ".join(speakers)})
        text = segment.get("text", "")
        if text is None:
            text = ""
        if not isinstance(text, str):
            _refuse(f"{at}.text", gettext("Text."))
        if len(text) > SEGMENT_TEXT_MAX:
            _refuse(f"{at}.text", gettext("At most %(count)d characters.") % {"count": SEGMENT_TEXT_MAX})
        clean.append({"start_ms": start, "end_ms": end, "speaker": speaker, "text": text.strip()})
    return sorted(clean, key=lambda s: (s["start_ms"], s["end_ms"], speakers.index(s["speaker"])))
