"""Decode, validate, disguise and encode audio. Pure functions: bytes in, bytes out.

This is the only module that imports pydub or PyAV or runs ffmpeg. An upload is
parsed, decoded, filtered and re-encoded in-process by FFmpeg's own libraries (PyAV)
from memory, so the original never touches disk. ``clip_audio_process`` does all of
that in a forked child process that it kills at the time limit: hostile input costs
at most FFMPEG_TIMEOUT_SECONDS and a crash in a decoder takes down only that child.
Starting three ffmpeg/ffprobe programs per clip cost more CPU than everything else
(about 170 ms of a 2.5 s clip's 190 ms); a fork costs a few. A preset's filter chain
that the wheel's FFmpeg cannot run (rubberband is not in it) runs in one ffmpeg
process with an argument list (never a shell string), fed from a pipe.
"""

import contextlib
import io
import json
import math
import os
import random
import re
import signal
import socket
import subprocess
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

import av
import av.filter
import av.logging
import numpy as np
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from pydub import AudioSegment

from . import disguise
from .spectrogram import spectrogram_check, spectrogram_compute

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
    spectrogram: dict  # issue 12: see reviews/spectrogram.py; {} when none



def _run(args: list[str], data: bytes) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(  # noqa: S603 - fixed argument list, no shell
            args, input=data, capture_output=True, timeout=settings.FFMPEG_TIMEOUT_SECONDS, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise AudioRejected("audio_timeout", "The audio took too long to process.") from exc


# What FFmpeg's libraries raise on input they cannot parse (PyAV maps errors onto these).
_PARSE_ERRORS = (av.FFmpegError, ValueError, OSError, EOFError, UnicodeError)


class _Unseekable:
    """Bytes read front to back, like ffprobe's and ffmpeg's pipe:0.

    Demuxers trust what a stream can seek to: a WAV cut short and read from a seekable
    buffer declares only the length that is left, and the truncation goes unnoticed.
    """

    def __init__(self, data: bytes):
        self._buffer = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self._buffer.read(size)


def _container_open(data: bytes) -> av.container.InputContainer:
    """Open an upload from memory; anything FFmpeg cannot open is not audio."""
    try:
        return av.open(_Unseekable(data), mode="r", metadata_errors="ignore")
    except _PARSE_ERRORS as exc:
        raise AudioRejected("not_audio", "The file is not audio or is corrupt.") from exc


def _stream_probe(container: av.container.InputContainer) -> tuple[av.audio.stream.AudioStream, dict]:
    """Return the first audio stream and its codec and declared duration; refuse anything holding video."""
    streams = container.streams
    if not streams.audio:
        raise AudioRejected("not_audio", "The file is not audio or is corrupt.")
    # Audio only: a video with a sound track is refused, and so is cover art (a video stream
    # marked attached_pic). A voice recording has no reason to carry pictures, and one rule
    # without exceptions leaves nothing to dress a video up as.
    if streams.video:
        raise AudioRejected("not_audio", "The file contains video or pictures; send audio only.")
    stream = streams.audio[0]
    context = stream.codec_context
    # The canonical name is ffprobe's codec_name ("mp3", not the decoder's "mp3float").
    codec = context.codec.canonical_name if context is not None else ""
    if codec not in ACCEPTED_CODECS:
        raise AudioRejected("unsupported_codec", f"Audio codec '{codec[:20]}' is not supported.")
    if stream.duration is not None and stream.time_base:
        declared_seconds = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        declared_seconds = container.duration / av.time_base
    else:
        declared_seconds = None
    return stream, {"codec": codec, "declared_seconds": declared_seconds}


def audio_probe(data: bytes) -> dict:
    """Return the codec and declared duration of the first audio stream; refuse anything holding video."""
    with _container_open(data) as container:
        return _stream_probe(container)[1]


_FILTER = re.compile(r"([A-Za-z0-9_]+)(?:=(.+))?\Z")


def _filter_chain(chain: str) -> list[tuple[str, str | None]] | None:
    """Split a plain filter chain into (filter, arguments); None if PyAV's FFmpeg cannot run it.

    Labels, several chains, quoting and escapes are left to the ffmpeg program, whose
    parser knows them; so is any filter the wheel was built without.
    """
    if any(mark in chain for mark in "[];'\"\\"):
        return None
    parts = []
    for part in chain.split(","):
        match = _FILTER.match(part.strip())
        if match is None or match.group(1) not in av.filter.filters_available:
            return None
        parts.append((match.group(1), match.group(2)))
    return parts


def _graph_drain(graph: av.filter.Graph, chunks: list[np.ndarray]) -> int:
    """Move every frame the graph has ready into ``chunks``; return how many samples that was."""
    count = 0
    while True:
        try:
            frame = graph.pull()
        except (av.error.BlockingIOError, av.error.EOFError):
            return count
        samples = frame.to_ndarray().reshape(-1)
        chunks.append(samples)
        count += len(samples)


@contextlib.contextmanager
def _log_level_restored(level):
    try:
        yield
    finally:
        av.logging.set_level(level)


def _frames_decode(container: av.container.InputContainer, stream: av.audio.stream.AudioStream):
    """Yield the stream's decoded frames; a packet the demuxer marks corrupt (cut short) refuses the upload."""
    for packet in container.demux(stream):
        if packet.is_corrupt:
            raise AudioRejected("corrupt_audio", "The audio is truncated or corrupt.")
        yield from packet.decode()


def _decode_in_process(data: bytes, chain: list[tuple[str, str | None]], rate: int, limit_seconds: float) -> bytes:
    """Decode the first audio stream through ``chain`` to mono s16 PCM at ``rate`` with PyAV."""
    limit = int(limit_seconds * rate)
    chunks: list[np.ndarray] = []
    total = 0
    graph = None
    # Like ffmpeg's -xerror with -v error: any error FFmpeg reports while decoding (a damaged
    # frame it would conceal) refuses the upload instead of passing on a repaired guess.
    level = av.logging.get_level()
    av.logging.set_level(av.logging.ERROR)
    with _log_level_restored(level), av.logging.Capture() as logged, _container_open(data) as container:
        stream = _stream_probe(container)[0]
        try:
            for frame in _frames_decode(container, stream):
                if graph is None:
                    # Built from the first frame: a stream's header may not name its layout yet.
                    graph = av.filter.Graph()
                    nodes = [graph.add_abuffer(format=frame.format.name, layout=frame.layout.name,
                                               sample_rate=frame.sample_rate, time_base=frame.time_base)]
                    nodes += [graph.add(name, args) for name, args in chain]
                    nodes.append(graph.add("aformat", f"sample_fmts=s16:sample_rates={rate}:channel_layouts=mono"))
                    nodes.append(graph.add("abuffersink"))
                    graph.link_nodes(*nodes).configure()
                graph.push(frame)
                total += _graph_drain(graph, chunks)
                # Decode at most a little past the limit so a huge file cannot make us work long.
                if total > limit:
                    break
            if graph is not None:
                graph.push(None)
                _graph_drain(graph, chunks)
        except _PARSE_ERRORS as exc:
            raise AudioRejected("corrupt_audio", "The audio is truncated or corrupt.") from exc
    if any(level <= av.logging.ERROR for level, _name, _message in logged):
        raise AudioRejected("corrupt_audio", "The audio is truncated or corrupt.")
    pcm = np.concatenate(chunks)[:limit] if chunks else np.zeros(0, dtype=np.int16)
    return pcm.astype("<i2", copy=False).tobytes()


def _decode_with_ffmpeg(data: bytes, chain: str, rate: int, limit_seconds: float) -> bytes:
    """Decode through a filter chain PyAV's FFmpeg lacks, in one ffmpeg process."""
    result = _run(
        [settings.FFMPEG_BINARY, "-nostdin", "-hide_banner", "-v", "error", "-xerror", "-i", "pipe:0",
         "-map", "0:a:0", "-t", f"{limit_seconds:.3f}", "-af", chain, "-ac", "1", "-ar", str(rate), "-f", "s16le",
         "-acodec", "pcm_s16le", "pipe:1"],
        data,
    )
    if result.returncode != 0 or result.stderr.strip():
        raise AudioRejected("corrupt_audio", "The audio is truncated or corrupt.")
    return result.stdout


def audio_decode(data: bytes, *, audio_filter: str | None = None) -> AudioSegment:
    """Decode to 16 kHz mono 16-bit PCM, optionally through an ffmpeg filter chain."""
    rate = settings.AUDIO_SAMPLE_RATE
    chain = f"aresample={rate}" + (f",{audio_filter}" if audio_filter else "")
    limit_seconds = settings.INGEST_MAX_SECONDS + 1
    parts = _filter_chain(chain)
    if parts is None:
        pcm = _decode_with_ffmpeg(data, chain, rate, limit_seconds)
    else:
        pcm = _decode_in_process(data, parts, rate, limit_seconds)
    return AudioSegment(data=pcm, sample_width=2, frame_rate=rate, channels=1)


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
    samples = np.asarray(segment.get_array_of_samples(), dtype=np.int64)
    if not len(samples):
        return []
    count = min(buckets, len(samples))
    step = len(samples) / count
    # The slices touch (step >= 1), so each peak runs from one slice start to the next.
    starts = (np.arange(count) * step).astype(np.int64)
    loudest = np.maximum.reduceat(np.abs(samples), starts)
    full_scale = float(1 << (8 * segment.sample_width - 1))
    return [min(100, round(100 * int(level) / full_scale)) for level in loudest]


def clip_spectrogram(segment: AudioSegment) -> dict:
    """The workspace's small log-mel picture of this (disguised) audio."""
    mono = segment.set_channels(1)
    full_scale = float(1 << (8 * mono.sample_width - 1))
    return spectrogram_compute(np.asarray(mono.get_array_of_samples(), dtype=np.float32) / full_scale, mono.frame_rate)


# Our MP3s carry no gapless header (no Xing/LAME tag), so a decoder returns libmp3lame's
# priming samples first: its encoder delay plus the decoder's (576 + 529), measured at 16 kHz.
MP3_PRIMING_SAMPLES = 1105


def clip_spectrogram_from_stored(data: bytes, *, duration_ms: int) -> dict:
    """Recompute the spectrogram of a clip ingested before it existed, from its stored audio
    (already disguised: the original is long gone), aligned with the clip's own duration.
    Used by ``manage.py spectrogram_backfill``."""
    decoded = audio_decode(data)
    width = decoded.sample_width * decoded.channels
    start = MP3_PRIMING_SAMPLES * width
    end = start + int(duration_ms * decoded.frame_rate / 1000) * width
    return clip_spectrogram(decoded._spawn(decoded.raw_data[start:end]))


def audio_encode(segment: AudioSegment) -> bytes:
    """Encode to constant-bitrate MP3 with no tags, no encoder string, no Xing header.

    The same libmp3lame settings as ``ffmpeg -c:a libmp3lame -b:a ... -fflags +bitexact
    -flags:a +bitexact -id3v2_version 0 -write_id3v1 0 -write_xing 0``: byte for byte the same file.
    """
    if segment.sample_width != 2 or segment.channels != 1:
        segment = segment.set_sample_width(2).set_channels(1)
    pcm = np.frombuffer(segment.raw_data, dtype="<i2")
    output = io.BytesIO()
    try:
        with av.open(output, mode="w", format="mp3",
                     container_options={"id3v2_version": "0", "write_id3v1": "0", "write_xing": "0",
                                        "fflags": "+bitexact"}) as container:
            stream = container.add_stream("libmp3lame", rate=segment.frame_rate, layout="mono",
                                          options={"b": settings.AUDIO_BITRATE})
            stream.codec_context.flags |= av.codec.context.Flags.bitexact
            if len(pcm):
                frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
                frame.sample_rate = segment.frame_rate
                frame.pts = 0
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
    except (av.FFmpegError, ValueError) as exc:
        raise AudioRejected("encode_failed", "The audio could not be encoded.") from exc
    if not output.getvalue():
        raise AudioRejected("encode_failed", "The audio could not be encoded.")
    return output.getvalue()


def _clip_audio_work(data: bytes, chosen: disguise.Preset, rng: random.Random) -> ProcessedAudio:
    """Probe, decode and disguise, check, normalize, encode: the whole path, in the caller's process."""
    info = audio_probe(data)
    max_seconds = settings.INGEST_MAX_SECONDS
    if info["declared_seconds"] is not None and info["declared_seconds"] > max_seconds + 0.05:
        raise AudioRejected("audio_too_long", f"The audio is longer than {max_seconds:g} seconds.")

    # Decode and disguise in one pass (plus the preset's sample transform, if any).
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
        spectrogram=clip_spectrogram(disguised),
    )


class AudioWorkFailed(RuntimeError):
    """The child process hit a bug (not a property of the upload); carries its traceback."""


def _result_pack(work: Callable[[], ProcessedAudio]) -> bytes:
    """Run ``work`` and return its outcome as a JSON header line plus the encoded audio.

    JSON and raw bytes rather than pickle: the parent must not execute what a child that
    parsed hostile input sends back.
    """
    try:
        result = work()
    except AudioRejected as exc:
        return json.dumps({"rejected": exc.code, "detail": exc.detail}).encode() + b"\n"
    except Exception:  # noqa: BLE001 - reported to the parent, which raises it there
        return json.dumps({"failed": traceback.format_exc()}).encode() + b"\n"
    header = {"duration_ms": result.duration_ms, "peaks": result.peaks, "spectrogram": result.spectrogram}
    return json.dumps(header).encode() + b"\n" + result.data


def _result_unpack(message: bytes) -> ProcessedAudio:
    header_line, _, data = message.partition(b"\n")
    try:
        header = json.loads(header_line)
    except ValueError:
        header = None
    if not isinstance(header, dict):
        # The child died without a word (killed, or a decoder crashed on this input).
        raise AudioRejected("corrupt_audio", "The audio is truncated or corrupt.")
    if "rejected" in header:
        raise AudioRejected(str(header["rejected"]), str(header["detail"]))
    if "failed" in header:
        raise AudioWorkFailed(f"Audio processing failed in its child process:\n{header['failed']}")
    return ProcessedAudio(data=data, duration_ms=int(header["duration_ms"]), peaks=[int(p) for p in header["peaks"]],
                          spectrogram=spectrogram_check(header.get("spectrogram")))


def _frame_send(sock: socket.socket, message: bytes) -> None:
    sock.sendall(len(message).to_bytes(8, "big") + message)


def _frame_receive(sock: socket.socket) -> bytes | None:
    """Return one length-prefixed message, or None at end of stream."""
    header = _exactly(sock, 8)
    return None if header is None else _exactly(sock, int.from_bytes(header, "big"))


def _exactly(sock: socket.socket, size: int) -> bytes | None:
    buffer = bytearray()
    while len(buffer) < size:
        chunk = sock.recv(min(size - len(buffer), 1 << 20))
        if not chunk:
            return None
        buffer += chunk
    return bytes(buffer)


def _worker_serve(sock: socket.socket) -> None:
    """The worker's loop: one upload in, one outcome out, until the parent goes away."""
    while True:
        request = _frame_receive(sock)
        if request is None:
            return
        header, _, data = request.partition(b"\n")
        job = json.loads(header)
        chosen = disguise.PRESETS[job["preset"]]
        rng = random.SystemRandom()
        if job["rng_state"] is not None:
            version, state, gauss = job["rng_state"]
            rng = random.Random()  # noqa: S311 - a test's seeded generator, replayed in the worker
            rng.setstate((version, tuple(state), gauss))
        _frame_send(sock, _result_pack(lambda: _clip_audio_work(data, chosen, rng)))  # noqa: B023 - called at once


# Settings a test (or anything) changes after a worker started would not reach it: such a
# change retires every worker, and the next clip starts a fresh one.
_generation = 0


@receiver(setting_changed)
def _workers_outdate(**kwargs) -> None:
    global _generation
    _generation += 1


_FD_LIMIT = os.sysconf("SC_OPEN_MAX") if hasattr(os, "sysconf") else 65536


@dataclass
class _AudioWorker:
    """A forked process that does the audio work of one thread's clips, one at a time."""

    pid: int
    sock: socket.socket
    generation: int
    presets: dict

    @classmethod
    def start(cls) -> "_AudioWorker":
        parent_end, child_end = socket.socketpair()
        presets = dict(disguise.PRESETS)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the worker; coverage cannot follow os._exit
            status = 1
            try:
                parent_end.close()
                # Every other descriptor the parent had open at the fork (a request's client socket,
                # a pipe to a browser driver, the database) would otherwise stay open as long as the
                # worker lives: a client or a pipe reader would wait for an end that never comes.
                keep = child_end.fileno()
                os.closerange(3, keep)
                os.closerange(keep + 1, _FD_LIMIT)
                # Its own process group: Ctrl-C on the command reaches the parent, which ends the
                # worker, and killing the group takes the fallback ffmpeg with it.
                os.setpgid(0, 0)
                _worker_serve(child_end)
                status = 0
            finally:
                # No atexit handlers, no flushing of the parent's buffers, no closing of its database connections.
                os._exit(status)
        child_end.close()
        try:
            os.setpgid(pid, pid)
        except OSError:
            pass  # the worker did it first
        return cls(pid=pid, sock=parent_end, generation=_generation, presets=presets)

    def current(self, chosen: disguise.Preset) -> bool:
        """Whether this worker still matches the parent: same settings, same preset object."""
        return self.generation == _generation and self.presets.get(chosen.name) is chosen

    def run(self, data: bytes, chosen: disguise.Preset, rng: random.Random | None, deadline: float) -> bytes:
        """Send one upload and return the worker's answer; raise TimeoutError past the deadline."""
        # The preset by name (presets hold lambdas); a seeded generator by its state.
        seeded = rng is not None and not isinstance(rng, random.SystemRandom)
        job = {"preset": chosen.name, "rng_state": rng.getstate() if seeded else None}
        request = json.dumps(job).encode() + b"\n" + data
        self.sock.settimeout(max(deadline - time.monotonic(), 0.0001))
        _frame_send(self.sock, request)
        self.sock.settimeout(max(deadline - time.monotonic(), 0.0001))
        return _frame_receive(self.sock) or b""

    def stop(self) -> None:
        """Kill the worker (and any ffmpeg it started) and reap it, so its CPU time is counted."""
        self.sock.close()
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except OSError:
            pass  # already gone
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass


_workers: dict[int, _AudioWorker] = {}  # this process's workers, by thread
_workers_lock = threading.Lock()


def _workers_forget() -> None:
    # A forked process must not use (or keep alive) its parent's workers: close its copies only.
    for worker in _workers.values():
        worker.sock.close()
    _workers.clear()


os.register_at_fork(after_in_child=_workers_forget)


def audio_workers_stop() -> None:
    """Stop this process's audio workers (they restart on demand); for commands and benchmarks."""
    with _workers_lock:
        workers = list(_workers.values())
        _workers.clear()
    for worker in workers:
        worker.stop()


def _workers_of_ended_threads_stop() -> None:
    # A server that starts a thread per request (runserver) would otherwise leave one idle
    # worker behind per request; checked only when a worker starts, so it costs nothing per clip.
    alive = {thread.ident for thread in threading.enumerate()}
    with _workers_lock:
        ended = [_workers.pop(ident) for ident in list(_workers) if ident not in alive]
    for worker in ended:
        worker.stop()


def _in_worker(data: bytes, chosen: disguise.Preset, rng: random.Random | None) -> ProcessedAudio:
    """Process an upload in this thread's worker process, killing it at the time limit.

    PyAV has no timeout of its own and a decoder loop cannot be interrupted from Python,
    so the limit is a process boundary; a crash in a decoder also ends only the worker.
    The worker is kept between clips: forking one per clip cost about 20 ms of a 2.5 s
    clip's 55 (the fork plus the child's copy-on-write faults).
    """
    deadline = time.monotonic() + settings.FFMPEG_TIMEOUT_SECONDS
    thread = threading.get_ident()
    with _workers_lock:
        worker = _workers.pop(thread, None)
    if worker is not None and not worker.current(chosen):
        worker.stop()
        worker = None
    if worker is None:
        _workers_of_ended_threads_stop()
        worker = _AudioWorker.start()
    try:
        answer = worker.run(data, chosen, rng, deadline)
    except TimeoutError as exc:
        worker.stop()
        raise AudioRejected("audio_timeout", "The audio took too long to process.") from exc
    except BaseException:
        worker.stop()  # interrupted mid-clip: its answer would be read as the next clip's
        raise
    if not answer:
        worker.stop()  # it died on this input
    else:
        with _workers_lock:
            _workers[thread] = worker
    return _result_unpack(answer)


def clip_audio_process(data: bytes, *, rng: random.Random | None = None,
                       preset: str | None = None) -> ProcessedAudio:
    """Validate an upload and return its disguised, normalized, re-encoded audio.

    ``preset`` names an entry of ``reviews.disguise.PRESETS`` (None: settings.DISGUISE_PRESET).
    The disguise parameters are drawn here and forgotten: never returned or stored. The work
    runs in a worker process (see ``_in_worker``): a seeded ``rng`` is copied into it, so the
    caller's copy does not advance.
    """
    chosen = disguise_preset(preset)
    if not data:
        raise AudioRejected("empty_audio", "The audio file is empty.")
    if len(data) > settings.INGEST_MAX_BYTES:
        raise AudioRejected("file_too_large", f"The file is larger than {settings.INGEST_MAX_BYTES} bytes.")
    return _in_worker(data, chosen, rng)
