"""Privacy benchmark of the voice-disguise presets: linkage, intelligibility, speed.

Every clip goes through the app's real ingest function (``reviews.audio.
clip_audio_process``: ffprobe, ffmpeg decode + disguise, loudness, MP3) and is then
decoded again, as a reviewer would hear it. For each preset it prints:

- speaker-verification EER (Resemblyzer, cosine scoring) and closed-set
  identification top-1 (the trial's best-scoring enrolment among all corpus
  speakers; chance is 1/N) for five attackers: ignorant (original enrolment vs
  disguised trial), lazy (runs the preset on the enrolment, own draw), both (runs
  the preset on the enrolment and once more on the disguised trial, so both sides
  went through the same normalisation), and informed (knows the algorithm and the
  parameter ranges: a forward grid, which disguises the enrolment with every grid
  point and keeps the best-matching score, and a normalization attack, which moves
  every clip to the same median pitch and flattens its long-term spectrum). The
  worst case is the lowest EER and the highest top-1 over all of them;
- word error rate (pocketsphinx en-us, jiwer) on every voice pocketsphinx can read
  (undisguised WER at most READABLE_WER);
- speed: audio seconds per CPU second of the disguise (marginal over ingest without
  disguise) on 2-5 s clips one at a time, overall and for the slowest clip, and of
  the whole ingest.

``--wer-only`` leaves out the linkage part (no speaker embeddings, no attackers): it
measures WER and speed only, for presets whose linkage an earlier run measured.

Run it with ``make bench-privacy`` (see docs/privacy-benchmark.md).
"""

import argparse
import io
import itertools
import json
import math
import os
import random
import resource
import subprocess
import sys
import time
import wave
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[3]
OUT = ROOT / "tests" / "bench" / "out"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
# Only settings are needed (reviews.audio reads them lazily), not the app registry,
# so the benchmark does not depend on the web stack's optional apps.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotator.settings")

from corpus import ENROLLMENT_COUNT, corpus_build  # noqa: E402

from reviews import audio, disguise  # noqa: E402

RATE = 16000
GRID_BUDGET = 16  # forward-grid points per preset (per speaker enrollment)
READABLE_WER = 50.0  # a voice whose undisguised WER is above this is one pocketsphinx cannot read
SPEED_CLIPS = 24  # clips of 2-5 s timed one by one for the speed figures
NORMALIZED_PITCH_HZ = 140.0
SEED = "bench-privacy-1"

# Reference row: the same ingest path with no disguise at all.
IDENTITY = disguise.Preset(name="none", description="No disguise (reference).", draw=lambda rng: {})


# --- Audio helpers (the benchmark may call ffmpeg itself; the app may not) -----

def wav_bytes(samples: np.ndarray, rate: int = RATE) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(np.clip(np.round(samples * 32767), -32768, 32767).astype("<i2").tobytes())
    return buffer.getvalue()


def decode(data: bytes, audio_filter: str | None = None) -> np.ndarray:
    args = ["ffmpeg", "-v", "error", "-i", "pipe:0", "-ac", "1", "-ar", str(RATE)]
    if audio_filter:
        args += ["-af", audio_filter]
    raw = subprocess.run(args + ["-f", "s16le", "pipe:1"], input=data, capture_output=True, check=True,
                         timeout=120).stdout
    return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def median_pitch(samples: np.ndarray) -> float | None:
    """Median F0 of voiced 40 ms frames by normalized autocorrelation (60-450 Hz)."""
    size, hop = int(0.04 * RATE), int(0.01 * RATE)
    if len(samples) < size:
        return None
    frames = np.lib.stride_tricks.sliding_window_view(samples.astype(np.float64), size)[::hop]
    frames = frames - frames.mean(axis=1, keepdims=True)
    energy = np.sum(frames**2, axis=1)
    frames = frames[energy > 0.05 * energy.max()]
    spectrum = np.fft.rfft(frames, n=2 * size, axis=1)
    corr = np.fft.irfft(np.abs(spectrum) ** 2, axis=1)[:, :size]
    corr = corr / np.maximum(corr[:, :1], 1e-12)
    low, high = int(RATE / 450), int(RATE / 60)
    lags = low + np.argmax(corr[:, low:high], axis=1)
    voiced = corr[np.arange(len(lags)), lags] > 0.5
    if voiced.sum() < 5:
        return None
    return float(np.median(RATE / lags[voiced]))


def normalize_attack(samples: np.ndarray) -> np.ndarray:
    """Attacker's undo: same median pitch for everyone (formants kept), flat long-term spectrum."""
    f0 = median_pitch(samples)
    if f0:
        factor = min(max(NORMALIZED_PITCH_HZ / f0, 0.5), 2.0)
        samples = decode(wav_bytes(samples), f"rubberband=pitch={factor:.4f}:formant=preserved:pitchq=quality")
    spectrum = disguise.stft(samples)
    envelope = disguise.log_envelope(spectrum, RATE)
    loud = np.sum(np.abs(spectrum) ** 2, axis=1)
    average = envelope[loud > 0.01 * loud.max()].mean(axis=0)
    gain = np.clip(-(average - average.mean()), -3.0, 3.0)  # natural log: about +-26 dB
    return disguise.istft(spectrum * np.exp(gain)[None, :], len(samples)).astype(np.float32)


# --- Scoring -------------------------------------------------------------------

def eer(target: list[float], nontarget: list[float]) -> float:
    """Equal error rate in percent (threshold sweep, linear interpolation at the crossing)."""
    scores = np.concatenate([target, nontarget])
    labels = np.concatenate([np.ones(len(target)), np.zeros(len(nontarget))])
    order = np.argsort(-scores, kind="mergesort")
    labels = labels[order]
    false_reject = 1.0 - np.concatenate([[0.0], np.cumsum(labels) / len(target)])
    false_accept = np.concatenate([[0.0], np.cumsum(1 - labels) / len(nontarget)])
    diff = false_reject - false_accept
    index = int(np.argmax(diff <= 0))
    if index == 0:
        return 100.0 * false_reject[0]
    d0, d1 = diff[index - 1], diff[index]
    weight = d0 / (d0 - d1) if d0 != d1 else 0.5
    value = false_reject[index - 1] + weight * (false_reject[index] - false_reject[index - 1])
    return 100.0 * float(value)


def verification(enroll: dict[str, np.ndarray], trials: list[tuple[str, np.ndarray]]) -> tuple[float, float]:
    """EER (%) of every trial against every speaker's enrollment, and closed-set top-1 (%).

    Enroll values may stack candidates (the forward grid): a speaker scores its best one.
    Top-1: the share of trials whose best-scoring enrollment is their own speaker's.
    """
    target, nontarget = [], []
    speakers = list(enroll)
    scores = np.zeros((len(trials), len(speakers)))
    for column, speaker in enumerate(speakers):
        model = enroll[speaker] if enroll[speaker].ndim == 2 else enroll[speaker][None, :]
        for row, (trial_speaker, embedding) in enumerate(trials):
            score = float(np.max(model @ embedding))
            scores[row, column] = score
            (target if trial_speaker == speaker else nontarget).append(score)
    picked = [speakers[i] for i in np.argmax(scores, axis=1)]
    top1 = 100.0 * float(np.mean([p == t for p, (t, _) in zip(picked, trials)]))
    return eer(target, nontarget), top1


class Bench:
    def __init__(self, speakers: list[str] | None, save_audio: bool, trials: int | None = None,
                 skip: frozenset[str] = frozenset(), readable: list[str] | None = None):
        import torch
        from pocketsphinx import Decoder
        from resemblyzer import VoiceEncoder, preprocess_wav

        # One thread: on a loaded 2-core machine, two OpenMP threads burned about 25x the CPU per
        # embedding (1 s against 0.04 s for 3 s of audio) waiting for each other.
        torch.set_num_threads(1)
        self.encoder = VoiceEncoder("cpu", verbose=False)
        self.preprocess = preprocess_wav
        self.asr = Decoder(logfn=os.devnull)
        manifest = corpus_build()
        # Quick runs: the enrolment commands and only the first ``trials`` trial commands of each voice.
        self.clips = [c for c in manifest["clips"] if (speakers is None or c["speaker"] in speakers)
                      and (trials is None or c["enrollment"] or c["index"] < ENROLLMENT_COUNT + trials)]
        self.skip = skip
        self.speakers = [s for s in manifest["speakers"] if speakers is None or s in speakers]
        corpus = OUT / "corpus"
        self.sources = {(c["speaker"], c["index"]): (corpus / c["path"]).read_bytes() for c in self.clips}
        self.save_audio = save_audio
        self.cache: dict[str, dict] = {}
        # Voices known to be readable (a previous run's list): the others are not transcribed.
        self.readable_given = [s for s in readable if s in self.speakers] if readable else None
        self.readable: list[str] = []
        self.no_wer = False
        self.wer_only = False  # WER and speed only: no embeddings, no attackers (linkage shown as '-')
        self.hyps: dict[str, tuple] = {}

    # ingest through the app
    def ingest(self, preset: disguise.Preset, data: bytes, seed: str) -> bytes:
        # Registered under its own name for the call: the ingest worker looks presets up by name.
        previous = disguise.PRESETS.get(preset.name)
        disguise.PRESETS[preset.name] = preset
        try:
            return audio.clip_audio_process(data, rng=random.Random(seed), preset=preset.name).data
        finally:
            if previous is None:
                del disguise.PRESETS[preset.name]
            else:
                disguise.PRESETS[preset.name] = previous

    def ingest_all(self, preset: disguise.Preset) -> tuple[dict, float, float]:
        """Disguise every clip once; return decoded audio, CPU seconds of ingest and audio seconds."""
        encoded, cpu, seconds = {}, 0.0, 0.0
        for (speaker, index), data in self.sources.items():
            start = cpu_seconds()
            mp3 = self.ingest(preset, data, f"{SEED}:{preset.name}:{speaker}:{index}")
            cpu += cpu_seconds() - start
            encoded[(speaker, index)] = mp3
            if self.save_audio:
                path = OUT / "disguised" / preset.name / speaker / f"{index:02d}.mp3"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(mp3)
        decoded = {key: decode(mp3) for key, mp3 in encoded.items()}
        seconds = sum(len(x) for x in decoded.values()) / RATE
        return decoded, cpu, seconds

    def speed(self, preset: disguise.Preset, rounds: int = 2) -> tuple[float, float]:
        """Audio seconds per CPU second of the disguise step alone, clip by clip (2-5 s clips).

        For each clip: CPU seconds (own process plus ffmpeg) of decoding it with the disguise
        minus without it. Returns (all clips together, slowest clip).
        """
        clips = []
        for _, data in sorted(self.sources.items()):
            samples = decode(data)
            if 2.0 <= len(samples) / RATE <= 5.0:
                clips.append((wav_bytes(samples), len(samples) / RATE))
        clips = clips[:: max(1, len(clips) // SPEED_CLIPS)][:SPEED_CLIPS]
        rng = random.Random(SEED)
        audio.audio_disguise_decode(clips[0][0], preset, rng)  # warm-up: imports, codebook
        total_seconds = total_cpu = 0.0
        slowest = math.inf
        for data, seconds in clips:
            plain = disguised = 0.0
            for _ in range(rounds):
                start = cpu_seconds()
                audio.audio_decode(data)
                plain += cpu_seconds() - start
                start = cpu_seconds()
                audio.audio_disguise_decode(data, preset, rng)
                disguised += cpu_seconds() - start
            cost = max(disguised - plain, 1e-9) / rounds
            total_seconds += seconds
            total_cpu += cost
            slowest = min(slowest, seconds / cost)
        return total_seconds / total_cpu, slowest

    def embed(self, samples: np.ndarray) -> np.ndarray:
        return self.encoder.embed_utterance(self.preprocess(samples, source_sr=RATE))

    def enrollment(self, clips: dict, speaker: str) -> np.ndarray:
        parts = [clips[(c["speaker"], c["index"])] for c in self.clips if c["speaker"] == speaker and c["enrollment"]]
        gap = np.zeros(int(0.3 * RATE), dtype=np.float32)
        return np.concatenate([x for part in parts for x in (part, gap)])

    def trial_keys(self) -> list[tuple[str, int]]:
        return [(c["speaker"], c["index"]) for c in self.clips if not c["enrollment"]]

    def transcribe(self, samples: np.ndarray) -> str:
        pcm = np.clip(np.round(samples * 32767), -32768, 32767).astype("<i2").tobytes()
        self.asr.start_utt()
        self.asr.process_raw(pcm, full_utt=True)
        self.asr.end_utt()
        hyp = self.asr.hyp()
        return hyp.hypstr if hyp else ""

    def wer_per_voice(self, clips: dict, speakers: list[str]) -> dict[str, float]:
        """WER (%) of each of ``speakers``; their hypotheses are kept in self.hyps."""
        import jiwer

        out = {}
        for speaker in speakers:
            keys = [(c["index"], c["text"]) for c in self.clips if c["speaker"] == speaker]
            hyps = [self.transcribe(clips[(speaker, i)]) or "<empty>" for i, _ in keys]
            out[speaker] = 100.0 * jiwer.wer([t for _, t in keys], hyps)
            self.hyps[speaker] = (keys, hyps)
        return out

    def pooled_wer(self) -> float:
        """WER (%) pooled over the readable voices, from the hypotheses wer_per_voice kept."""
        import jiwer

        refs = [t for s in self.readable for _, t in self.hyps[s][0]]
        hyps = [h for s in self.readable for h in self.hyps[s][1]]
        return 100.0 * jiwer.wer(refs, hyps) if refs else float("nan")

    def wer(self, clips: dict, speakers: list[str] | None = None) -> float:
        """WER (%) over the readable voices (or ``speakers``)."""
        import jiwer

        chosen = self.readable if speakers is None else speakers
        if self.no_wer:
            return float("nan")
        keys = [(c["speaker"], c["index"], c["text"]) for c in self.clips if c["speaker"] in chosen]
        if not keys:
            return float("nan")
        refs = [text for _, _, text in keys]
        hyps = [self.transcribe(clips[(s, i)]) or "<empty>" for s, i, _ in keys]
        return 100.0 * jiwer.wer(refs, hyps)

    def grid(self, preset: disguise.Preset) -> list[dict]:
        names = list(preset.ranges)
        if not names:
            return [{}]
        per_axis = max(3, round(GRID_BUDGET ** (1 / len(names))))
        axes = []
        for name in names:
            low, high = preset.ranges[name]
            if low > 0 and high / low > 1.2:  # factors: even steps in log scale
                axes.append(np.exp(np.linspace(math.log(low), math.log(high), per_axis)))
            else:
                axes.append(np.linspace(low, high, per_axis))
        defaults = preset.draw(random.Random(0))
        return [{**defaults, **{k: 0.0 for k in defaults if k.startswith("drift_")},
                 **{k: 0.0 for k in defaults if k.startswith("eq_")},
                 **dict(zip(names, map(float, point)))} for point in itertools.product(*axes)]

    def reference(self) -> dict:
        if "none" not in self.cache:
            clips, cpu, seconds = self.ingest_all(IDENTITY)
            embeddings = {} if self.wer_only else {key: self.embed(x) for key, x in clips.items()}
            enroll_audio = {} if self.wer_only else {s: self.enrollment(clips, s) for s in self.speakers}
            per_voice = self.wer_per_voice(clips, [] if self.no_wer else self.readable_given or self.speakers)
            self.readable = [s for s in per_voice if per_voice[s] <= READABLE_WER]
            self.cache["none"] = {
                "clips": clips, "cpu": cpu, "seconds": seconds, "embeddings": embeddings,
                "enroll_audio": enroll_audio, "enroll": {s: self.embed(x) for s, x in enroll_audio.items()},
                "wer_per_voice": per_voice, "wer": self.pooled_wer(),
            }
        return self.cache["none"]

    def evaluate(self, preset: disguise.Preset, informed: bool = True) -> dict:
        ref = self.reference()
        started = time.monotonic()
        trials_keys = self.trial_keys()
        attackers: dict[str, tuple[float, float] | None] = {}
        if self.wer_only:
            if preset.name == "none":
                result = {"wer": ref["wer"], "cpu": ref["cpu"], "seconds": ref["seconds"]}
            else:
                clips, cpu, seconds = self.ingest_all(preset)
                result = {"wer": self.wer(clips), "cpu": cpu, "seconds": seconds}
            attackers = dict.fromkeys(ATTACKERS)
        elif preset.name == "none":
            trials = [(k[0], ref["embeddings"][k]) for k in trials_keys]
            base = verification(ref["enroll"], trials)
            attackers = {"ignorant": base, "lazy": base, "both": base, "forward": base if informed else None,
                         "normalize": None}
            result = {"wer": ref["wer"], "cpu": ref["cpu"], "seconds": ref["seconds"]}
        else:
            clips, cpu, seconds = self.ingest_all(preset)
            embeddings = {k: self.embed(clips[k]) for k in trials_keys}
            trials = [(k[0], embeddings[k]) for k in trials_keys]
            disguised_enroll = {s: self.embed(self.enrollment(clips, s)) for s in self.speakers}
            attackers["ignorant"] = verification(ref["enroll"], trials)
            attackers["lazy"] = verification(disguised_enroll, trials)
            attackers["both"] = attackers["forward"] = attackers["normalize"] = None
            if "both" not in self.skip:
                # Both sides through the preset: the enrolment once, the (already disguised) trial again.
                again = [(k[0], self.embed(decode(self.ingest(preset, wav_bytes(clips[k]), f"{SEED}:again:{k}"))))
                         for k in trials_keys]
                attackers["both"] = verification(disguised_enroll, again)
            result = {"wer": self.wer(clips), "cpu": cpu, "seconds": seconds}
            if informed and "forward" not in self.skip:
                forward = {}
                for speaker in self.speakers:
                    data = wav_bytes(ref["enroll_audio"][speaker])
                    candidates = []
                    for point in self.grid(preset):
                        fixed = replace(preset, name=preset.name, draw=lambda rng, p=point: dict(p))
                        candidates.append(self.embed(decode(self.ingest(fixed, data, "grid"))))
                    forward[speaker] = np.stack(candidates)
                attackers["forward"] = verification(forward, trials)
            if informed and "normalize" not in self.skip:
                normal_enroll = {s: self.embed(normalize_attack(ref["enroll_audio"][s])) for s in self.speakers}
                normal_trials = [(k[0], self.embed(normalize_attack(clips[k]))) for k in trials_keys]
                attackers["normalize"] = verification(normal_enroll, normal_trials)
        for name, value in attackers.items():
            result[f"eer_{name}"], result[f"top1_{name}"] = value if value else (None, None)
        measured = [v for v in attackers.values() if v]
        result["worst_eer"] = min((v[0] for v in measured), default=None)
        result["worst_top1"] = max((v[1] for v in measured), default=None)
        result["worst_eer_by"] = min(((v[0], k) for k, v in attackers.items() if v), default=(None, None))[1]
        result["chance_top1"] = 100.0 / len(self.speakers)
        result["x_disguise"], result["x_disguise_slowest"] = (
            self.speed(preset) if preset.name != "none" else (float("inf"), float("inf")))
        result["x_ingest"] = result["seconds"] / result["cpu"]
        result["wall"] = time.monotonic() - started
        return result


def fmt(value, spec=".1f") -> str:
    if value is None or (isinstance(value, float) and (math.isnan(value) or math.isinf(value))):
        return "-"
    return format(value, spec)


ATTACKERS = ["ignorant", "lazy", "both", "forward", "normalize"]


def table(results: dict[str, dict], wer_reference: float) -> str:
    lines = [
        "| preset | EER ignorant / lazy / both / forward / normalize | **worst EER** | top-1 ignorant / lazy / both "
        "/ forward / normalize | **worst top-1** | WER | WER change | disguise x RT/core (slowest clip) | "
        "ingest x RT/core |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        eers = " / ".join(fmt(r[f"eer_{a}"]) for a in ATTACKERS)
        tops = " / ".join(fmt(r[f"top1_{a}"], ".0f") for a in ATTACKERS)
        lines.append(
            f"| {name} | {eers} | **{fmt(r['worst_eer'])}%** | {tops} | **{fmt(r['worst_top1'], '.0f')}%** | "
            f"{fmt(r['wer'])}% | {fmt(r['wer'] - wer_reference, '+.1f')} | {fmt(r['x_disguise'], '.0f')} "
            f"({fmt(r['x_disguise_slowest'], '.0f')}) | {fmt(r['x_ingest'], '.0f')} |"
        )
    return "\n".join(lines)


def preset_variant(spec: str) -> disguise.Preset:
    """A registered preset, or a variant for experiments: ``target+timing=1+flatten=0.5`` fixes parameters."""
    name, *fixed = spec.split("+")
    base = disguise.PRESETS[name]
    if not fixed:
        return base
    overrides = {key: float(value) for key, value in (item.split("=", 1) for item in fixed)}
    return replace(base, name=spec, draw=lambda rng: {**base.draw(rng), **overrides})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default=",".join(["none", *disguise.PRESETS]),
                        help="comma-separated preset names ('none' is the undisguised reference)")
    parser.add_argument("--speakers", default="", help="comma-separated subset of speakers (quick runs)")
    parser.add_argument("--no-informed", action="store_true", help="skip the (slow) informed attacker")
    parser.add_argument("--skip-attackers", default="",
                        help="comma-separated attackers not to run (both, forward, normalize): only where they are "
                             "known to be weaker for these presets; the worst case is then over the others")
    parser.add_argument("--trials", type=int, default=None,
                        help="quick runs: only the first N trial commands of each voice (enrolment unchanged)")
    parser.add_argument("--readable", default="",
                        help="comma-separated voices pocketsphinx reads, from an earlier run's header: the "
                             "reference row then transcribes only those (the list must be re-derived when the "
                             "corpus or the ingest path changes)")
    parser.add_argument("--no-wer", action="store_true",
                        help="linkage only (screening experiments): no transcription, WER shown as '-'")
    parser.add_argument("--wer-only", action="store_true",
                        help="WER and speed only, for presets whose linkage an earlier run measured: no speaker "
                             "embeddings, no attackers, linkage columns shown as '-'")
    parser.add_argument("--save-audio", action="store_true", help="keep the disguised MP3s under tests/bench/out")
    parser.add_argument("--json", default=str(OUT / "privacy-results.json"))
    args = parser.parse_args()

    if args.wer_only and args.no_wer:
        parser.error("--wer-only and --no-wer leave nothing to measure")
    skip = frozenset(filter(None, args.skip_attackers.split(",")))
    unknown = skip - {"both", "forward", "normalize"}
    if unknown:
        parser.error(f"unknown attackers to skip: {', '.join(sorted(unknown))}")
    bench = Bench(args.speakers.split(",") if args.speakers else None, args.save_audio, args.trials, skip,
                  args.readable.split(",") if args.readable else None)
    bench.no_wer = args.no_wer
    bench.wer_only = args.wer_only
    started = time.monotonic()
    ref = bench.reference()
    print(f"{time.strftime('%Y-%m-%d')} on {os.cpu_count()} cores; corpus: {len(bench.speakers)} voices, "
          f"{len(bench.clips)} clips, {len(bench.trial_keys())} trials x {len(bench.speakers)} enrollments "
          f"(top-1 chance {100.0 / len(bench.speakers):.1f}%); WER on {len(bench.readable)} voices pocketsphinx "
          f"reads (undisguised WER <= {READABLE_WER:.0f}%): "
          + ", ".join(f"{s} {ref['wer_per_voice'][s]:.0f}%" for s in bench.readable)
          + ("; linkage not measured (--wer-only)" if args.wer_only
             else f"; attackers skipped: {', '.join(sorted(skip))}" if skip else ""), flush=True)
    results = {}
    for name in args.presets.split(","):
        preset = IDENTITY if name == "none" else preset_variant(name)
        results[name] = bench.evaluate(preset, informed=not args.no_informed)
        r = results[name]
        print(f"{name}: EER " + " ".join(f"{a} {fmt(r[f'eer_{a}'])}" for a in ATTACKERS)
              + " | top-1 " + " ".join(f"{a} {fmt(r[f'top1_{a}'], '.0f')}" for a in ATTACKERS)
              + f" | WER {fmt(r['wer'])} x{fmt(r['x_disguise'], '.0f')} disguise (slowest clip "
              f"x{fmt(r['x_disguise_slowest'], '.0f')}), x{fmt(r['x_ingest'], '.0f')} ingest [{r['wall']:.0f}s]",
              flush=True)
    print()
    print(table(results, ref["wer"]))
    print(f"\nwhole run: {time.monotonic() - started:.0f}s wall")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"readable": bench.readable, "wer_per_voice": ref["wer_per_voice"],
                                           "speakers": bench.speakers, "results": results}, indent=1))


if __name__ == "__main__":
    main()
