"""reviews/audio.py: validation, disguise and encoding on real ffmpeg."""

import io
import os
import random
import signal
import subprocess
import threading
import time

import pytest
from pydub import AudioSegment

from reviews import audio
from tests.helpers import export_bytes, speech_bytes, tone_bytes


def decode_mp3(data: bytes) -> AudioSegment:
    return AudioSegment.from_file(io.BytesIO(data), format="mp3")


def ffmpeg_bytes(args: list[str], data: bytes = b"") -> bytes:
    return subprocess.run(["ffmpeg", "-v", "error", *args], input=data, capture_output=True, check=True).stdout


def test_speech_becomes_tagless_mp3_of_the_same_length():
    original = AudioSegment.from_file(io.BytesIO(speech_bytes("clip02.flac")))
    result = audio.clip_audio_process(speech_bytes("clip02.flac"))
    assert result.data[:3] != b"ID3"  # no ID3v2 tag
    assert b"TAG" not in result.data[-128:][:3]  # no ID3v1 tag
    decoded = decode_mp3(result.data)
    assert abs(len(decoded) - len(original)) < 150
    assert abs(result.duration_ms - len(original)) < 60
    # Speech normalized to -20 dBFS RMS peaks well above -14 dBFS (20% of full scale),
    # whatever the random disguise drew (a fixed 50% threshold failed on some draws).
    assert len(result.peaks) == 800 and max(result.peaks) > 20


def test_container_metadata_of_the_upload_is_not_carried_over():
    tagged = ffmpeg_bytes(["-i", "pipe:0", "-metadata", "title=CANARY-TITLE-314", "-metadata",
                           "artist=CANARY-ARTIST", "-f", "flac", "pipe:1"], speech_bytes())
    assert b"CANARY-TITLE-314" in tagged
    result = audio.clip_audio_process(tagged)
    assert b"CANARY" not in result.data


def test_pitch_factor_is_never_almost_one(settings):
    rng = random.Random(7)
    factors = [audio.pitch_factor_draw(rng) for _ in range(2000)]
    low, high = settings.DISGUISE_PITCH_RANGE
    assert all(abs(f - 1) >= settings.DISGUISE_PITCH_DEAD_BAND for f in factors)
    assert all(low <= f <= high for f in factors)
    assert min(factors) < 0.85 and max(factors) > 1.2  # both directions are used


def test_disguise_moves_the_pitch():
    # A pure tone makes the shift measurable: the dominant frequency must move.
    import numpy as np

    tone = tone_bytes(2.0)
    result = audio.clip_audio_process(tone, rng=random.Random(1))
    shifted = decode_mp3(result.data).set_frame_rate(16000)
    samples = np.array(shifted.get_array_of_samples(), dtype=float)
    spectrum = np.abs(np.fft.rfft(samples))
    peak_hz = np.argmax(spectrum) * 16000 / len(samples)
    assert abs(peak_hz - 220) > 220 * 0.07


def test_loudness_is_normalized():
    quiet = AudioSegment.from_file(io.BytesIO(speech_bytes())).apply_gain(-25)
    result = audio.clip_audio_process(export_bytes(quiet))
    assert abs(decode_mp3(result.data).dBFS - (-20)) < 3


@pytest.mark.parametrize(
    "make, code",
    [
        (lambda: b"", "empty_audio"),
        (lambda: b"this is a text file, not audio at all" * 20, "not_audio"),
        (lambda: ffmpeg_bytes(["-f", "lavfi", "-i", "color=c=red:s=32x32:d=1", "-frames:v", "1", "-f", "image2",
                               "-c:v", "png", "pipe:1"]), "not_audio"),
        (lambda: tone_bytes(2.0)[: len(tone_bytes(2.0)) // 3], "corrupt_audio"),
        (lambda: ffmpeg_bytes(["-f", "lavfi", "-i", "sine=d=1", "-c:a", "adpcm_ms", "-f", "wav", "pipe:1"]),
         "unsupported_codec"),
        (lambda: export_bytes(AudioSegment.silent(duration=2000, frame_rate=16000)), "empty_audio"),
        (lambda: export_bytes(AudioSegment.silent(duration=50, frame_rate=16000)), "empty_audio"),
        (lambda: tone_bytes(61.0, "flac"), "audio_too_long"),
    ],
    ids=["empty-file", "text", "png", "truncated-wav", "adpcm", "silence", "too-short", "too-long"],
)
def test_bad_audio_is_refused_with_a_stable_code(make, code):
    with pytest.raises(audio.AudioRejected) as refused:
        audio.clip_audio_process(make())
    assert refused.value.code == code


def test_file_over_the_size_limit_is_refused_before_decoding(settings):
    settings.INGEST_MAX_BYTES = 1000
    with pytest.raises(audio.AudioRejected) as refused:
        audio.clip_audio_process(speech_bytes())
    assert refused.value.code == "file_too_large"


def test_ffmpeg_has_a_time_limit(settings):
    settings.FFMPEG_TIMEOUT_SECONDS = 0.001
    with pytest.raises(audio.AudioRejected) as refused:
        audio.clip_audio_process(speech_bytes())
    assert refused.value.code == "audio_timeout"


# --- The worker process: time limit, crashes, settings --------------------------------------

def this_threads_worker() -> "audio._AudioWorker | None":
    return audio._workers.get(threading.get_ident())


def test_a_hanging_decode_is_killed_at_the_time_limit_and_the_next_clip_gets_a_new_worker(settings, monkeypatch):
    # In-process decoding cannot be interrupted: the limit must hold even when the work never returns.
    audio.audio_workers_stop()
    monkeypatch.setattr(audio, "_clip_audio_work", lambda *args: time.sleep(120))
    settings.FFMPEG_TIMEOUT_SECONDS = 1.0
    started = time.monotonic()
    with pytest.raises(audio.AudioRejected) as refused:
        audio.clip_audio_process(speech_bytes())
    assert refused.value.code == "audio_timeout"
    assert time.monotonic() - started < 10
    assert this_threads_worker() is None  # killed and reaped, not kept
    monkeypatch.undo()
    assert audio.clip_audio_process(speech_bytes()).duration_ms > 500


def test_a_worker_that_dies_on_an_upload_refuses_it_and_the_next_clip_gets_a_new_one(monkeypatch):
    audio.audio_workers_stop()
    monkeypatch.setattr(audio, "_clip_audio_work", lambda *args: os.kill(os.getpid(), signal.SIGKILL))
    with pytest.raises(audio.AudioRejected) as refused:
        audio.clip_audio_process(speech_bytes())
    assert refused.value.code == "corrupt_audio"
    assert this_threads_worker() is None
    monkeypatch.undo()
    assert audio.clip_audio_process(speech_bytes()).duration_ms > 500


def test_the_worker_is_kept_between_clips_and_stopped_on_request():
    audio.clip_audio_process(speech_bytes())
    worker = this_threads_worker()
    audio.clip_audio_process(speech_bytes())
    assert this_threads_worker() is worker
    audio.audio_workers_stop()
    assert this_threads_worker() is None
    with pytest.raises(ChildProcessError):
        os.waitpid(worker.pid, os.WNOHANG)  # reaped: no zombie left behind


def test_a_settings_change_reaches_a_running_worker(settings):
    audio.clip_audio_process(speech_bytes())  # a worker started under the old settings
    settings.INGEST_MAX_SECONDS = 0.5
    with pytest.raises(audio.AudioRejected) as refused:
        audio.clip_audio_process(speech_bytes())
    assert refused.value.code == "audio_too_long"


def test_a_bug_in_the_worker_is_an_error_not_a_refusal(monkeypatch):
    audio.audio_workers_stop()
    monkeypatch.setattr(audio, "_clip_audio_work", lambda *args: 1 / 0)
    with pytest.raises(audio.AudioWorkFailed, match="ZeroDivisionError"):
        audio.clip_audio_process(speech_bytes())
    monkeypatch.undo()
    audio.audio_workers_stop()


def test_the_mp3_is_constant_bitrate_16_khz_mono_without_tags_or_xing():
    result = audio.clip_audio_process(speech_bytes())
    [stream] = probe_streams(result.data)
    assert (stream["codec_name"], stream["sample_rate"], stream["channels"]) == ("mp3", "16000", 1)
    assert stream["bit_rate"] == "48000"
    first_frame = result.data[:200]
    assert not result.data.startswith(b"ID3") and b"Xing" not in first_frame and b"Info" not in first_frame
    # Nothing before the first frame, and every frame of the same 216 bytes (48 kbit/s at 16 kHz,
    # MPEG-2 layer III) with the same header: constant bitrate.
    assert result.data[:3] == b"\xff\xf3\x68" and len(result.data) % 216 == 0
    assert {result.data[i:i + 3] for i in range(0, len(result.data), 216)} == {b"\xff\xf3\x68"}


def test_the_mp3_is_the_file_ffmpeg_writes_with_the_same_options():
    segment = AudioSegment.from_file(io.BytesIO(speech_bytes())).set_frame_rate(16000).set_channels(1)
    theirs = ffmpeg_bytes(["-f", "s16le", "-ar", "16000", "-ac", "1", "-i", "pipe:0", "-map_metadata", "-1",
                           "-fflags", "+bitexact", "-flags:a", "+bitexact", "-c:a", "libmp3lame", "-b:a", "48k",
                           "-id3v2_version", "0", "-write_id3v1", "0", "-write_xing", "0", "-f", "mp3", "pipe:1"],
                          segment.raw_data)
    if b"LAME3.100" not in theirs:
        pytest.skip("the system ffmpeg has another LAME than the PyAV wheel")
    assert audio.audio_encode(segment) == theirs


# --- Audio only: a container with any video stream is refused ----------------------------

def video_with_audio_bytes(tmp_path, *, video_codec: str | None = None) -> bytes:
    """An MP4 with an H.264 picture (MPEG-4 part 2 where libx264 is missing) and an AAC sound track."""
    codec = video_codec or ("libx264" if b"libx264" in subprocess.run(
        ["ffmpeg", "-hide_banner", "-encoders"], capture_output=True, check=True).stdout else "mpeg4")
    target = tmp_path / "video.mp4"
    # A file, not a pipe: the MP4 muxer seeks back to write its index (faststart puts it first).
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=duration=2:size=160x120:rate=10",
                    "-f", "lavfi", "-i", "sine=frequency=220:duration=2", "-c:v", codec, "-pix_fmt", "yuv420p",
                    "-c:a", "aac", "-shortest", "-movflags", "+faststart", str(target)],
                   capture_output=True, check=True)
    return target.read_bytes()


def cover_art_bytes(tmp_path, fmt: str = "mp3") -> bytes:
    """A song with an embedded cover picture (ID3 APIC, FLAC PICTURE): a video stream marked attached_pic."""
    cover = tmp_path / "cover.png"
    song = tmp_path / f"song.{fmt}"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "color=c=red:s=32x32:d=1", "-frames:v", "1",
                    str(cover)], capture_output=True, check=True)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", "pipe:0", "-i", str(cover), "-map", "0:a", "-map", "1:v",
                    "-c:a", {"mp3": "libmp3lame", "flac": "flac"}[fmt], "-c:v", "copy",
                    "-disposition:v", "attached_pic", str(song)], input=speech_bytes(), capture_output=True, check=True)
    return song.read_bytes()


def probe_streams(data: bytes) -> list[dict]:
    import json

    result = subprocess.run(["ffprobe", "-v", "error", "-print_format", "json", "-show_streams", "-i", "pipe:0"],
                            input=data, capture_output=True, check=True)
    return json.loads(result.stdout)["streams"]


def test_a_video_with_a_sound_track_is_not_audio(tmp_path):
    video = video_with_audio_bytes(tmp_path)
    kinds = sorted(stream["codec_type"] for stream in probe_streams(video))
    assert kinds == ["audio", "video"]  # the file is what the test means: AAC sound plus a picture
    with pytest.raises(audio.AudioRejected) as refused:
        audio.clip_audio_process(video)
    assert refused.value.code == "not_audio"


@pytest.mark.parametrize("codec", ["mpeg4", "mjpeg"])
def test_a_video_is_refused_whatever_its_video_codec(tmp_path, codec):
    with pytest.raises(audio.AudioRejected) as refused:
        audio.audio_probe(video_with_audio_bytes(tmp_path, video_codec=codec))
    assert refused.value.code == "not_audio"


@pytest.mark.parametrize("fmt", ["mp3", "flac"])
def test_cover_art_counts_as_video_and_is_refused(tmp_path, fmt):
    # Deliberate: a voice recording has no reason to carry a picture, and refusing every
    # video stream is one rule with no exception an attacker could dress a video up as.
    song = cover_art_bytes(tmp_path, fmt)
    [picture] = [s for s in probe_streams(song) if s["codec_type"] == "video"]
    assert picture["disposition"]["attached_pic"] == 1
    with pytest.raises(audio.AudioRejected) as refused:
        audio.audio_probe(song)
    assert refused.value.code == "not_audio"


def test_the_same_sound_without_a_picture_is_accepted():
    aac = ffmpeg_bytes(["-i", "pipe:0", "-c:a", "aac", "-f", "adts", "pipe:1"], speech_bytes())
    assert audio.audio_probe(aac)["codec"] == "aac"
    assert audio.clip_audio_process(aac).duration_ms > 500


def test_a_thread_that_ended_leaves_no_worker_behind():
    thread = threading.Thread(target=lambda: audio.clip_audio_process(speech_bytes()))
    thread.start()
    thread.join()
    left = audio._workers[thread.ident]
    mine = audio._workers.pop(threading.get_ident(), None)
    if mine is not None:
        mine.stop()
    audio.clip_audio_process(speech_bytes())  # a worker starts for this thread: ended threads' go
    assert thread.ident not in audio._workers
    with pytest.raises(ChildProcessError):
        os.waitpid(left.pid, os.WNOHANG)


def test_the_worker_keeps_none_of_the_parents_descriptors():
    # A pipe the parent opened before the worker started must see its end when the parent
    # closes its copy (a browser driver's stdin, a client's socket), not when the worker exits.
    audio.audio_workers_stop()
    read_end, write_end = os.pipe()
    try:
        audio.clip_audio_process(speech_bytes())  # the worker forks while the pipe is open
        os.close(write_end)
        os.set_blocking(read_end, False)
        assert os.read(read_end, 1) == b""  # end of file, not "would block": no writer is left
    finally:
        os.close(read_end)
        audio.audio_workers_stop()
