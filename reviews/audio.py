"""Decode, validate, disguise and encode audio. Pure functions: bytes in, bytes out.

This is the only module that imports pydub or runs ffmpeg. ffmpeg always runs with
an argument list (never a shell string), reads the upload from a pipe (the
original never touches disk) and has a time limit.
"""

import json
import math
import random
import subprocess
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from pydub import AudioSegment

from . import disguise

# Audio codecs we accept at ingest. Anything else (video, images, odd codecs) is
# refused before decoding.
ACCEPTED_CODECS = frozenset(
    {"pcm_s16le", "pcm_s24le", "pcm_s32le", "pcm_f32le", "pcm_u8", "pcm_mulaw", "pcm_alaw",
     "flac", "vorbis", "opus", "mp3", "aac"}
)
OUTPUT_CONTENT_TYPE = "audio/mpeg"
OUTPUT_EXTENSION = "mp3"


class AudioRejected(Exception):
    """The upload is not audio we can take; ``code`` is stable, ``detail`` is for people."""

    def __init__(self, code: str, detail: str):
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class ProcessedAudio:
    data: bytes
    duration_ms: int
    peaks: list[int]


def _run(args: list[str], data: bytes) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(  # noqa: S603 - fixed argument list, no shell
            args, input=data, capture_output=True, timeout=settings.FFMPEG_TIMEOUT_SECONDS, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise AudioRejected("audio_timeout", "The audio took too long to process.") from exc


def audio_probe(data: bytes) -> dict:
    """Return the codec and declared duration of the first audio stream; refuse anything holding video."""
    result = _run(
        [settings.FFPROBE_BINARY, "-v", "error", "-print_format", "json", "-show_streams", "-show_format",
         "-i", "pipe:0"],
        data,
    )
    try:
        info = json.loads(result.stdout or b"{}")
    except ValueError:
        info = {}
    every_stream = info.get("streams", [])
    streams = [s for s in every_stream if s.get("codec_type") == "audio"]
    if result.returncode != 0 or not streams:
        raise AudioRejected("not_audio", "The file is not audio or is corrupt.")
    # Audio only: a video with a sound track is refused, and so is cover art (a video stream
    # marked attached_pic). A voice recording has no reason to carry pictures, and one rule
    # without exceptions leaves nothing to dress a video up as.
    if any(s.get("codec_type") == "video" for s in every_stream):
        raise AudioRejected("not_audio", "The file contains video or pictures; send audio only.")
    stream = streams[0]
    codec = stream.get("codec_name", "")
    if codec not in ACCEPTED_CODECS:
        raise AudioRejected("unsupported_codec", f"Audio codec '{codec[:20]}' is not supported.")
    declared = stream.get("duration") or info.get("format", {}).get("duration")
    try:
        declared_seconds = float(declared) if declared not in (None, "N/A") else None
    except ValueError:
        declared_seconds = None
    return {"codec": codec, "declared_seconds": declared_seconds}


def audio_decode(data: bytes, *, audio_filter: str | None = None) -> AudioSegment:
    """Decode to 16 kHz mono 16-bit PCM, optionally through an ffmpeg filter chain."""
    rate = settings.AUDIO_SAMPLE_RATE
    chain = f"aresample={rate}" + (f",{audio_filter}" if audio_filter else "")
    # Decode at most a little past the limit so a huge file cannot make us work long.
    limit = f"{settings.INGEST_MAX_SECONDS + 1:.3f}"
    result = _run(
        [settings.FFMPEG_BINARY, "-nostdin", "-hide_banner", "-v", "error", "-xerror", "-i", "pipe:0",
         "-map", "0:a:0", "-t", limit, "-af", chain, "-ac", "1", "-ar", str(rate), "-f", "s16le",
         "-acodec", "pcm_s16le", "pipe:1"],
        data,
    )
    if result.returncode != 0 or result.stderr.strip():
        raise AudioRejected("corrupt_audio", "The audio is truncated or corrupt.")
    return AudioSegment(data=result.stdout, sample_width=2, frame_rate=rate, channels=1)


def pitch_factor_draw(rng: random.Random) -> float:
    """Draw a pitch factor from the configured range, outside the no-change band."""
    low, high = settings.DISGUISE_PITCH_RANGE
    return disguise.pitch_factor_draw(rng, low, high, settings.DISGUISE_PITCH_DEAD_BAND)


def disguise_preset(name: str | None) -> disguise.Preset:
    """Return the named disguise preset (None: the configured default); unknown names raise ValueError."""
    name = settings.DISGUISE_PRESET if name is None else name
    try:
        return disguise.PRESETS[name]
    except KeyError:
        raise ValueError(f"Unknown disguise preset {name!r}.") from None


def audio_disguise_decode(data: bytes, preset: disguise.Preset, rng: random.Random) -> AudioSegment:
    """Decode through the preset's ffmpeg filter, then apply its sample transform.

    The parameters are drawn here and dropped on return: never stored, logged or returned.
    """
    params = preset.draw(rng)
    segment = audio_decode(data, audio_filter=preset.ffmpeg_filter(params))
    if preset.transform is None or not segment.raw_data:
        return segment
    samples = np.frombuffer(segment.raw_data, dtype=np.int16).astype(np.float32) / 32768.0
    changed = preset.transform(samples, segment.frame_rate, params)
    pcm = np.clip(np.round(changed * 32767.0), -32768, 32767).astype("<i2")
    return AudioSegment(data=pcm.tobytes(), sample_width=2, frame_rate=segment.frame_rate, channels=1)


def loudness_normalize(segment: AudioSegment) -> AudioSegment:
    """Bring speech to the target loudness without clipping."""
    if segment.rms == 0:
        return segment
    gain = settings.AUDIO_TARGET_DBFS - segment.dBFS
    headroom = -1.0 - segment.max_dBFS
    return segment.apply_gain(min(gain, headroom))


def waveform_peaks(segment: AudioSegment, buckets: int) -> list[int]:
    """Return the peak level (0-100) of each of up to ``buckets`` equal slices."""
    samples = segment.get_array_of_samples()
    if not samples:
        return []
    count = min(buckets, len(samples))
    step = len(samples) / count
    full_scale = float(1 << (8 * segment.sample_width - 1))
    peaks = []
    for i in range(count):
        chunk = samples[int(i * step): max(int((i + 1) * step), int(i * step) + 1)]
        peaks.append(min(100, round(100 * max(abs(min(chunk)), abs(max(chunk))) / full_scale)))
    return peaks


def audio_encode(segment: AudioSegment) -> bytes:
    """Encode to constant-bitrate MP3 with no tags, no encoder string, no Xing header."""
    result = _run(
        [settings.FFMPEG_BINARY, "-nostdin", "-hide_banner", "-v", "error", "-f", "s16le", "-ar",
         str(segment.frame_rate), "-ac", "1", "-i", "pipe:0", "-map_metadata", "-1", "-fflags", "+bitexact",
         "-flags:a", "+bitexact", "-c:a", "libmp3lame", "-b:a", settings.AUDIO_BITRATE, "-id3v2_version", "0",
         "-write_id3v1", "0", "-write_xing", "0", "-f", "mp3", "pipe:1"],
        segment.raw_data,
    )
    if result.returncode != 0 or not result.stdout:
        raise AudioRejected("encode_failed", "The audio could not be encoded.")
    return result.stdout


def clip_audio_process(data: bytes, *, rng: random.Random | None = None,
                       preset: str | None = None) -> ProcessedAudio:
    """Validate an upload and return its disguised, normalized, re-encoded audio.

    ``preset`` names an entry of ``reviews.disguise.PRESETS`` (None: settings.DISGUISE_PRESET).
    The disguise parameters are drawn here and forgotten: never returned or stored.
    """
    chosen = disguise_preset(preset)
    if not data:
        raise AudioRejected("empty_audio", "The audio file is empty.")
    if len(data) > settings.INGEST_MAX_BYTES:
        raise AudioRejected("file_too_large", f"The file is larger than {settings.INGEST_MAX_BYTES} bytes.")
    info = audio_probe(data)
    max_seconds = settings.INGEST_MAX_SECONDS
    if info["declared_seconds"] is not None and info["declared_seconds"] > max_seconds + 0.05:
        raise AudioRejected("audio_too_long", f"The audio is longer than {max_seconds:g} seconds.")

    # Decode and disguise in one ffmpeg run (plus the preset's sample transform, if any).
    rng = rng or random.SystemRandom()
    disguised = audio_disguise_decode(data, chosen, rng)
    seconds = len(disguised) / 1000.0
    if seconds > max_seconds + 0.05:
        raise AudioRejected("audio_too_long", f"The audio is longer than {max_seconds:g} seconds.")
    if seconds < settings.INGEST_MIN_SECONDS or disguised.rms == 0:
        raise AudioRejected("empty_audio", "The audio has no sound in it.")
    declared = info["declared_seconds"]
    if declared is not None and seconds < 0.9 * declared - 0.1:
        # The container promised more audio than it holds: a cut-off upload.
        raise AudioRejected("corrupt_audio", "The audio is truncated or corrupt.")
    disguised = loudness_normalize(disguised)
    encoded = audio_encode(disguised)
    return ProcessedAudio(
        data=encoded,
        duration_ms=int(math.floor(len(disguised))),
        peaks=waveform_peaks(disguised, settings.WAVEFORM_PEAKS),
    )
