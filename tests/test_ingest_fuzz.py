"""POST /api/v1/clips/ under arbitrary multipart bodies (Hypothesis).

Whatever is sent (odd field names and values, missing or repeated fields, impossible
dates, non-UTF-8 bytes, binary junk or several files as audio, a broken body), the
answer is a success or a JSON error with a stable ``code``, never a 5xx, and an error
leaves no row and no file behind.

``make test`` runs a fixed, derandomized set of examples. To search longer with fresh
random examples each run:

    INGEST_FUZZ_EXAMPLES=2000 make test PYTEST_ARGS=tests/test_ingest_fuzz.py
"""

import os
import subprocess

from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from reviews.models import AuditEvent, Clip
from tests.helpers import speech_bytes, tone_bytes

URL = "/api/v1/clips/"
BOUNDARY = b"fuzz-7MA4YWxkTrZu0gW"
SECRET_ACCOUNT = "ACCT-FUZZ-SECRET-71"
# Codes clip_ingest answers with; each of these refusals is audited as one denied clip.ingest.
INGEST_CODES = {"invalid_metadata", "unknown_project", "subject_opted_out", "file_too_large", "unsupported_codec",
                "not_audio", "empty_audio", "audio_too_long", "corrupt_audio", "audio_timeout", "encode_failed"}

_longer = int(os.environ.get("INGEST_FUZZ_EXAMPLES", "0"))
# Fixed in make test (the same ~60 examples every run, nothing stored between runs); with
# INGEST_FUZZ_EXAMPLES set, fresh random examples each run.
FUZZ = settings(
    max_examples=_longer or 60,
    derandomize=not _longer,
    deadline=None,
    database=None,
    # The client, project and media folder are per test, not per example: each example
    # measures its own effect (counts before and after) instead of relying on a fresh world.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _ffmpeg(args: list[str], data: bytes = b"") -> bytes:
    return subprocess.run(["ffmpeg", "-v", "error", *args], input=data, capture_output=True, check=True).stdout


def _audio_pool() -> dict[str, bytes]:
    short = _ffmpeg(["-i", "pipe:0", "-t", "1.5", "-f", "flac", "pipe:1"], speech_bytes())
    wav = tone_bytes(1.0)
    return {
        "speech": short,
        "truncated-wav": wav[: len(wav) // 3],
        "riff-junk": b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(256)) * 4,
        "png": _ffmpeg(["-f", "lavfi", "-i", "color=c=red:s=16x16:d=1", "-frames:v", "1", "-f", "image2",
                        "-c:v", "png", "pipe:1"]),
        "mp3-sync-junk": b"\xff\xfb\x90\x00" * 300,
        "text": b"this is not audio\n" * 40,
    }


AUDIO = _audio_pool()
VALID = {"project": "demo", "account_id": SECRET_ACCOUNT, "first_name": "Ann", "device_serial": "SN-FUZZ-1",
         "recorded_at": "2026-11-20T08:15:02Z", "locale": "en-US"}

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60)
AUDIO_CONTENT = st.one_of(st.sampled_from(sorted(AUDIO)).map(AUDIO.get), st.binary(max_size=2048))
FILENAMES = st.sampled_from([b"a.flac", b"x", b"..\\..\\etc", b"\xff\xfe.wav"])


@st.composite
def odd_moments(draw) -> str:
    """ISO-8601-shaped strings with any number in any slot: 13th months, hour 24, +25:00, year 0."""
    year = draw(st.integers(0, 10000))
    month, day = draw(st.integers(0, 14)), draw(st.integers(0, 33))
    hour, minute, second = draw(st.integers(0, 25)), draw(st.integers(0, 61)), draw(st.integers(0, 61))
    zone = draw(st.one_of(st.just("Z"), st.just(""), st.builds(
        lambda sign, h, m: f"{sign}{h:02d}:{m:02d}", st.sampled_from("+-"), st.integers(0, 30), st.integers(0, 70))))
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}{zone}"


JUNK = {
    "project": st.one_of(st.sampled_from(["", "nope", " demo ", "DEMO", "demo\x00"]), text),
    "account_id": st.one_of(st.sampled_from(["", "   ", "x" * 129, "a\x00b"]), text),
    "first_name": st.one_of(st.just("y" * 101), text),
    "device_serial": st.one_of(st.just("z" * 101), text),
    "recorded_at": st.one_of(
        st.sampled_from(["2026-13-01T08:15:02Z", "2026-02-30T08:15:02Z", "2026-11-20T24:00:00Z",
                         "2026-11-20T08:15:02+25:00", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00",
                         "1999-12-31T23:59:59Z", "2099-01-01T00:00:00Z", "2026-11-20T08:15:02", "2026-11-20",
                         "yesterday", ""]),
        odd_moments(), text),
    "locale": st.one_of(st.sampled_from(["", "english please", "en_US", "en-US\n", "x" * 17]), text),
}


@st.composite
def field_parts(draw, name: str) -> list[tuple[bytes, bytes]]:
    """The parts one field contributes: mostly its valid value, else junk, none or several."""
    choice = draw(st.integers(0, 9))
    if choice <= 5:
        values = [VALID[name].encode()]
    elif choice <= 7:
        values = [draw(JUNK[name]).encode()]
    elif choice == 8:
        values = []
    else:
        values = [VALID[name].encode(), draw(st.one_of(JUNK[name].map(str.encode), st.binary(max_size=40)))]
    return [(name.encode(), value) for value in values]


@st.composite
def audio_parts(draw) -> list[tuple[bytes, bytes, bytes]]:
    """File parts named audio (or not): none, one, several, empty, junk or real audio."""
    count = draw(st.sampled_from([1, 1, 1, 0, 2]))
    names = st.one_of(st.just(b"audio"), st.just(b"audio"), st.just(b"Audio"), text.map(str.encode))
    return [(draw(names), draw(AUDIO_CONTENT), draw(FILENAMES))
            for _ in range(count)]


def multipart(text_parts: list[tuple[bytes, bytes]], file_parts: list[tuple[bytes, bytes, bytes]]) -> bytes:
    body = []
    for name, value in text_parts:
        body += [b"--" + BOUNDARY, b'Content-Disposition: form-data; name="' + name + b'"', b"", value]
    for name, content, filename in file_parts:
        body += [b"--" + BOUNDARY,
                 b'Content-Disposition: form-data; name="' + name + b'"; filename="' + filename + b'"',
                 b"Content-Type: application/octet-stream", b"", content]
    body += [b"--" + BOUNDARY + b"--", b""]
    return b"\r\n".join(body)


@st.composite
def submissions(draw) -> tuple[bytes, str]:
    if draw(st.integers(0, 2)) == 0:
        # Valid metadata, so the audio itself (real, cut off or junk) reaches ffprobe and ffmpeg.
        text_parts = [(name.encode(), value.encode()) for name, value in VALID.items()]
        body = multipart(text_parts, [(b"audio", draw(AUDIO_CONTENT), b"a.flac")])
        return body, f"multipart/form-data; boundary={BOUNDARY.decode()}"
    text_parts = []
    for name in VALID:
        text_parts += draw(field_parts(name))
    # Fields nobody asked for, including a text field named audio.
    extra_names = st.one_of(st.sampled_from([b"audio", b"subject_key", b"id", b"recorded_on"]),
                            text.map(str.encode), st.binary(min_size=1, max_size=12))
    text_parts += draw(st.lists(st.tuples(extra_names, st.one_of(text.map(str.encode), st.binary(max_size=64))),
                                max_size=3))
    text_parts = draw(st.permutations(text_parts))
    body = multipart(text_parts, draw(audio_parts()))
    content_type = f"multipart/form-data; boundary={BOUNDARY.decode()}"
    damage = draw(st.integers(0, 19))
    if damage == 0:
        body = body[: draw(st.integers(0, len(body)))]  # cut off mid-upload
    elif damage == 1:
        content_type = "multipart/form-data; boundary=somethingelse"
    elif damage == 2:
        content_type = draw(st.sampled_from(["multipart/form-data", "application/octet-stream", "text/plain"]))
    return body, content_type


def media_files(media) -> set:
    return {p for p in media.rglob("*") if p.is_file()}


def _valid(audio: str = "speech") -> tuple[bytes, str]:
    return (multipart([(k.encode(), v.encode()) for k, v in VALID.items()], [(b"audio", AUDIO[audio], b"a.flac")]),
            f"multipart/form-data; boundary={BOUNDARY.decode()}")


@FUZZ
@given(submission=submissions())
@example(submission=_valid("speech"))
@example(submission=_valid("truncated-wav"))
@example(submission=_valid("png"))
def test_ingest_never_fails_on_the_server_and_never_leaves_anything_behind(ingest_client, project, _isolated_media,
                                                                            submission):
    body, content_type = submission
    clips, files = Clip.objects.count(), media_files(_isolated_media)
    denied = AuditEvent.objects.filter(action="clip.ingest", outcome=AuditEvent.Outcome.DENIED).count()

    response = ingest_client.generic("POST", URL, body, content_type=content_type)

    assert response.status_code < 500, response.content
    # --hypothesis-show-statistics shows how far the examples got (most stop at validation).
    event(f"{response.status_code} {response.json().get('code', '')}")
    assert response["Content-Type"].startswith("application/json")
    payload = response.json()
    assert SECRET_ACCOUNT.encode() not in response.content
    if response.status_code == 201:
        assert set(payload) == {"id", "duration_ms"}
        assert Clip.objects.count() == clips + 1 and len(media_files(_isolated_media) - files) == 1
        return
    assert 400 <= response.status_code < 500
    assert isinstance(payload.get("code"), str) and payload["code"] and isinstance(payload.get("detail"), str)
    assert Clip.objects.count() == clips
    assert media_files(_isolated_media) == files
    if payload["code"] in INGEST_CODES:
        now_denied = AuditEvent.objects.filter(action="clip.ingest", outcome=AuditEvent.Outcome.DENIED).count()
        assert now_denied == denied + 1
