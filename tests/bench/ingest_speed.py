"""Ingest speed: clips per second and real-time factor of the de-identification path
(``reviews.audio.clip_audio_process``: probe, decode + disguise, normalize, encode, peaks, spectrogram),
per core, and of the whole ``ingest.clip_ingest`` (plus storage, database and audit).

    .venv/bin/python tests/bench/ingest_speed.py                 # 20 s per measurement
    .venv/bin/python tests/bench/ingest_speed.py --seconds 5 --no-db --presets pitch   # quick

Input: the ten demo clips (1.8-2.9 s of synthetic speech, FLAC/Ogg) and the same speech
concatenated into 10 s and 30 s FLAC files, since per-clip overhead weighs less on longer
clips. "x real time per core" is audio seconds per CPU second (this process plus its
audio worker process, stopped and reaped at the end of each measurement so its CPU time
is counted): the figure that does not depend on what else runs on this shared machine.
Wall-clock figures with 1 and 2 processes are printed beside it.
"""

import argparse
import io
import multiprocessing
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from harness import say  # noqa: E402

TARGET = 50.0  # x real time per core


def inputs() -> dict[str, list[tuple[bytes, float]]]:
    """{label: [(file bytes, seconds)]}: the demo clips, and 10 s / 30 s concatenations."""
    from pydub import AudioSegment

    names = sorted(p for p in harness.FIXTURE_CLIPS.iterdir() if p.suffix in {".flac", ".ogg"})
    demo = [(p.read_bytes(), len(AudioSegment.from_file(p)) / 1000) for p in names]
    speech = sum((AudioSegment.from_file(p) for p in names), AudioSegment.empty())
    sets = {"demo clips (~2.5 s)": demo}
    for seconds in (10, 30):
        piece = (speech * (1 + int(seconds * 1000 // len(speech))))[: seconds * 1000]
        buffer = io.BytesIO()
        piece.export(buffer, format="flac")
        sets[f"{seconds} s FLAC"] = [(buffer.getvalue(), len(piece) / 1000)]
    return sets


def cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def work(job) -> tuple[int, float, float, float]:
    """Process clips round-robin for ``seconds``; return (clips, audio s, wall s, cpu s)."""
    kind, files, seconds, preset = job
    from reviews import audio, ingest

    if kind == "ingest":
        from django.contrib.auth import get_user_model
        from django.db import connections

        connections.close_all()
        actor = get_user_model().objects.get(username="bench-ingest")
    count, audio_seconds = 0, 0.0
    cpu_start, started = cpu_seconds(), time.monotonic()
    while time.monotonic() - started < seconds:
        data, length = files[count % len(files)]
        if kind == "process":
            audio.clip_audio_process(data, preset=preset)
        else:
            ingest.clip_ingest(actor=actor, data={"project": harness.PROJECT, "audio": data,
                                                  "account_id": f"ACCT-{count}",
                                                  "recorded_at": "2026-11-20T08:15:02Z", "locale": "en-US"})
        count += 1
        audio_seconds += length
    # The worker process's CPU time reaches RUSAGE_CHILDREN only once it is reaped.
    audio.audio_workers_stop()
    return count, audio_seconds, time.monotonic() - started, cpu_seconds() - cpu_start


def measure(kind: str, files, seconds: float, processes: int, preset: str | None) -> dict:
    from django.db import connections

    connections.close_all()
    jobs = [(kind, files, seconds, preset)] * processes
    if processes == 1:
        results = [work(jobs[0])]
    else:
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            results = pool.map(work, jobs)
    clips = sum(r[0] for r in results)
    audio_seconds = sum(r[1] for r in results)
    wall = max(r[2] for r in results)
    cpu = sum(r[3] for r in results)
    return {"clips": clips, "clips_per_s": clips / wall, "rt_wall": audio_seconds / wall,
            "rt_cpu": audio_seconds / cpu if cpu else float("nan"), "cpu_per_clip_ms": 1000 * cpu / clips}


def stages(files, preset: str | None, repeat: int = 10) -> None:
    """Time each stage of clip_audio_process once per file, ``repeat`` rounds, in this process.

    Then the whole clip_audio_process on the same files: what it costs beyond the stages is
    the worker process (its start, amortized, and passing the upload and result).
    """
    import random

    import numpy as np

    from reviews import audio

    chosen = audio.disguise_preset(preset)
    rng = random.Random(3)
    totals: dict[str, float] = {}

    def timed(name, call):
        before = cpu_seconds()
        result = call()
        totals[name] = totals.get(name, 0.0) + cpu_seconds() - before
        return result

    audio_seconds = 0.0
    for _ in range(repeat):
        for data, length in files:
            timed("probe (audio_probe, PyAV)", lambda: audio.audio_probe(data))
            if chosen.transform is None:
                segment = timed("decode + disguise filter (PyAV or ffmpeg)",
                                lambda: audio.audio_disguise_decode(data, chosen, rng))
            else:
                params = chosen.draw(rng)
                segment = timed("decode + disguise filter (PyAV or ffmpeg)",
                                lambda: audio.audio_decode(data, audio_filter=chosen.ffmpeg_filter(params)))
                samples = np.frombuffer(segment.raw_data, dtype=np.int16).astype(np.float32) / 32768.0
                timed("disguise transform (numpy)", lambda: chosen.transform(samples, segment.frame_rate, params))
            segment = timed("loudness_normalize (pydub)", lambda: audio.loudness_normalize(segment))
            timed("MP3 encode (audio_encode, PyAV libmp3lame)", lambda: audio.audio_encode(segment))
            timed("waveform_peaks (numpy)", lambda: audio.waveform_peaks(segment, 800))
            timed("spectrogram (numpy, issue 12)", lambda: audio.clip_spectrogram(segment))
            audio_seconds += length
    before = cpu_seconds()
    for _ in range(repeat):
        for data, _length in files:
            audio.clip_audio_process(data, preset=preset)
    audio.audio_workers_stop()
    whole = cpu_seconds() - before
    # Can come out slightly negative on a busy machine: the stages and the whole are timed apart.
    totals["worker process: start, upload in, result out (whole minus stages)"] = whole - sum(totals.values())
    total = sum(totals.values())
    for name, seconds in sorted(totals.items(), key=lambda kv: -kv[1]):
        say(f"    {100 * seconds / total:5.1f}%  {1000 * seconds / (repeat * len(files)):7.1f} ms/clip  {name}")
    say(f"    = {audio_seconds / total:.1f}x real time per CPU second (clip_audio_process, worker included)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20, help="seconds per measurement")
    parser.add_argument("--processes", default="1,2", help="process counts for the wall-clock figures")
    parser.add_argument("--presets", default="", help="disguise presets, comma-separated (default: the "
                                                       "configured one, DISGUISE_PRESET)")
    parser.add_argument("--no-db", action="store_true", help="skip ingest.clip_ingest (no PostgreSQL)")
    args = parser.parse_args()
    processes = [int(x) for x in args.processes.split(",") if x.strip()]
    workspace = harness.Workspace("ingest")
    try:
        if args.no_db:
            env = workspace.app_env(f"sqlite:///{workspace.path / 'unused.sqlite3'}")
        else:
            pg = workspace.postgres()
            env = workspace.app_env(pg.url())
            harness.app_prepare(env)
        harness.django_setup(env)
        from django.conf import settings

        if not args.no_db:
            harness.world_create(reviewers=1, clips=0)
        presets = [p for p in args.presets.split(",") if p] or [settings.DISGUISE_PRESET]
        sets = inputs()
        say(f"Machine: {os.cpu_count()} cores (shared), load average {os.getloadavg()[0]:.2f}; "
            f"audio in one worker process per ingesting thread (PyAV, in memory); {args.seconds:g} s per measurement")
        say(f"\n{'input':<20} {'path':<28} {'preset':<8} {'procs':>5} {'clips':>6} {'clips/s':>8} "
            f"{'CPU ms/clip':>11} {'xRT wall':>9} {'xRT/core (CPU)':>15}")
        verdict = []
        for preset in presets:
            for label, files in sets.items():
                for count in processes:
                    row = measure("process", files, args.seconds, count, preset)
                    say(f"{label:<20} {'clip_audio_process':<28} {preset:<8} {count:>5} {row['clips']:>6} "
                        f"{row['clips_per_s']:>8.2f} {row['cpu_per_clip_ms']:>11.0f} {row['rt_wall']:>9.1f} "
                        f"{row['rt_cpu']:>15.1f}")
                    if count == 1:
                        verdict.append((label, preset, row["rt_cpu"], row["rt_wall"]))
            if not args.no_db and preset == settings.DISGUISE_PRESET:
                for label in list(sets)[:1]:
                    row = measure("ingest", sets[label], args.seconds, 1, None)
                    say(f"{label:<20} {'ingest.clip_ingest (+DB)':<28} {preset:<8} {1:>5} {row['clips']:>6} "
                        f"{row['clips_per_s']:>8.2f} {row['cpu_per_clip_ms']:>11.0f} {row['rt_wall']:>9.1f} "
                        f"{row['rt_cpu']:>15.1f}")
            say(f"\n  Where the CPU goes ({preset}, demo clips, stage by stage, worker and ffmpeg included):")
            stages(sets["demo clips (~2.5 s)"], preset)
        say(f"\nTarget: at least {TARGET:g}x real time per core (audio seconds per CPU second, one process):")
        for label, preset, rt_cpu, rt_wall in verdict:
            say(f"  {label:<20} {preset:<8} {rt_cpu:6.1f}x per CPU second, {rt_wall:6.1f}x wall (1 process)  "
                f"{'OK' if rt_cpu >= TARGET else 'MISSED'}")
        return 0
    finally:
        workspace.cleanup()


if __name__ == "__main__":
    sys.exit(main())
