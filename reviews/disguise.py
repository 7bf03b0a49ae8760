"""Voice-disguise presets: pure signal processing on numpy arrays.

A preset draws fresh parameters for every clip, turns part of them into an ffmpeg
filter (run by ``reviews.audio``, the only module that runs ffmpeg) and applies the
rest to the decoded samples here. The drawn parameters live only inside one call of
``reviews.audio.clip_audio_process``: never stored, logged or returned.

The figures attached to each preset come from ``make bench-privacy`` (see
docs/privacy-benchmark.md). They describe the parameter ranges written here; change
a range and the figures no longer apply until the benchmark is run again.
"""

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings
from scipy.signal import lfilter

Params = dict[str, float]

# Short-time Fourier analysis for the envelope presets: 32 ms frames, 75% overlap.
STFT_SIZE = 512
STFT_HOP = 128
# Cepstral lifter length for the spectral envelope, in seconds of quefrency: keeps
# the vocal-tract shape and drops the harmonics of any voice below ~500 Hz pitch.
ENVELOPE_QUEFRENCY = 0.0018
# Limit of the per-bin gain of an envelope change, so a formant moved onto a
# spectral valley does not turn faint noise into a loud whistle.
ENVELOPE_GAIN_LIMIT_DB = 18.0
# How often time-varying parameters take a new random value (they glide between).
DRIFT_ANCHOR_SECONDS = 0.7


@dataclass(frozen=True)
class Measured:
    """What ``make bench-privacy`` measured for a preset: the worst case over every attacker.

    Percentages; speed as x real time per core of the disguise step on 2-5 s clips.
    """

    eer_worst: float         # lowest speaker-verification EER over the attackers (50% = no linkage)
    eer_worst_by: str        # the attacker that got it
    wer: float | None        # None: not measured in the run these linkage figures come from (see note)
    wer_undisguised: float | None
    x_realtime: float
    top1_worst: float | None = None   # highest closed-set identification top-1 over the attackers
    top1_chance: float | None = None  # 100 / number of corpus speakers
    note: str = ""

    def summary(self) -> str:
        """One line for people: the worst case, what it costs and how fast it runs."""
        top1 = (f", top-1 {self.top1_worst:.0f}% (chance {self.top1_chance:.0f}%)"
                if self.top1_worst is not None else ", top-1 not measured")
        wer = (f"WER {self.wer:.1f}% (undisguised {self.wer_undisguised:.1f}%)" if self.wer is not None
               else "WER not measured in this run")
        return (f"worst-case EER {self.eer_worst:.1f}% ({self.eer_worst_by}){top1}, {wer}, "
                f"{self.x_realtime:.0f}x real time")


@dataclass(frozen=True)
class Preset:
    """A named disguise: how to draw per-clip parameters and how to apply them."""

    name: str
    description: str
    draw: Callable[[random.Random], Params]
    ffmpeg_filter: Callable[[Params], str | None] = lambda params: None
    transform: Callable[[np.ndarray, int, Params], np.ndarray] | None = None
    # Parameter ranges an informed attacker is assumed to know (the benchmark uses them).
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    measured: Measured | None = None

    def apply(self, samples: np.ndarray, rate: int, rng: random.Random) -> np.ndarray:
        """Disguise float samples in [-1, 1] with the numpy part only (tests, benchmark)."""
        params = self.draw(rng)
        if self.transform is None:
            return samples.astype(np.float32, copy=True)
        return self.transform(samples, rate, params)


# --- Drawing parameters --------------------------------------------------------

def factor_draw(rng: random.Random, low: float, high: float, dead_band: float = 0.0) -> float:
    """Draw a factor in [low, high], uniform in log scale, at least ``dead_band`` away from 1."""
    while True:
        factor = math.exp(rng.uniform(math.log(low), math.log(high)))
        if abs(factor - 1.0) >= dead_band:
            return factor


# --- Short-time Fourier transform ----------------------------------------------

def _window(size: int) -> np.ndarray:
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(size) / size)).astype(np.float64)


def stft(samples: np.ndarray, size: int = STFT_SIZE, hop: int = STFT_HOP) -> np.ndarray:
    """Return the complex spectrogram (frames x bins) of ``samples``, padded at both ends."""
    padded = np.pad(samples.astype(np.float64), (size, size + hop))
    count = 1 + (len(padded) - size) // hop
    frames = np.lib.stride_tricks.sliding_window_view(padded, size)[::hop][:count]
    return np.fft.rfft(frames * _window(size), axis=1)


def istft(spectrum: np.ndarray, length: int, size: int = STFT_SIZE, hop: int = STFT_HOP) -> np.ndarray:
    """Invert ``stft`` by weighted overlap-add and return ``length`` samples."""
    window = _window(size)
    frames = np.fft.irfft(spectrum, n=size, axis=1) * window
    count = frames.shape[0]
    total = (count - 1) * hop + size
    out = np.zeros(total + size)
    weight = np.zeros(total + size)
    parts = size // hop
    frames = frames.reshape(count, parts, hop)
    squared = (window**2).reshape(parts, hop)
    for part in range(parts):
        start = part * hop
        out[start:start + count * hop] += frames[:, part, :].reshape(-1)
        weight[start:start + count * hop] += np.tile(squared[part], count)
    out = out[size:size + length]
    weight = weight[size:size + length]
    return out / np.maximum(weight, 1e-3)


def log_envelope(spectrum: np.ndarray, rate: int) -> np.ndarray:
    """Return the cepstrally smoothed log-magnitude envelope of each frame."""
    size = (spectrum.shape[1] - 1) * 2
    magnitude = np.abs(spectrum)
    floor = max(float(magnitude.max()), 1e-9) * 1e-5
    cepstrum = np.fft.irfft(np.log(magnitude + floor), n=size, axis=1)
    keep = max(4, int(rate * ENVELOPE_QUEFRENCY))
    cepstrum[:, keep:size - keep + 1] = 0.0
    return np.fft.rfft(cepstrum, axis=1).real


def _interpolate_rows(values: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Read each row of ``values`` at fractional column ``positions`` (same shape)."""
    last = values.shape[1] - 1
    positions = np.clip(positions, 0.0, last)
    lower = np.minimum(positions.astype(np.int64), last - 1)
    fraction = positions - lower
    rows = np.arange(values.shape[0])[:, None]
    return values[rows, lower] * (1.0 - fraction) + values[rows, lower + 1] * fraction


def drift(rng_values: list[float], frames: int, hop_seconds: float) -> np.ndarray:
    """Glide smoothly (raised cosine) between anchor values spaced DRIFT_ANCHOR_SECONDS apart, cyclically."""
    times = np.arange(frames) * hop_seconds / DRIFT_ANCHOR_SECONDS
    index = times.astype(np.int64)
    smooth = 0.5 - 0.5 * np.cos(np.pi * (times - index))
    anchors = np.asarray(rng_values)
    # Past the last anchor, start again from the first: long clips keep drifting.
    return anchors[index % len(anchors)] * (1.0 - smooth) + anchors[(index + 1) % len(anchors)] * smooth


# --- Frequency warps (output frequency in Hz -> where its envelope comes from) ---

def vtln_source(freqs: np.ndarray, factor: np.ndarray, nyquist: float) -> np.ndarray:
    """Piecewise-linear vocal-tract-length warp: formants move by ``factor`` up to 85% of Nyquist."""
    knee = 0.85 * nyquist * np.minimum(1.0, 1.0 / factor)
    below = freqs / factor
    # Above the knee, map linearly so Nyquist stays Nyquist.
    above = knee / factor + (freqs - knee) * (nyquist - knee / factor) / (nyquist - knee)
    return np.where(freqs <= knee, below, above)


def mcadams_source(freqs: np.ndarray, alpha: np.ndarray, nyquist: float) -> np.ndarray:
    """McAdams warp of the envelope: a formant at angle phi moves to phi ** alpha (radians)."""
    angle = np.pi * freqs / nyquist
    return np.clip(angle ** (1.0 / alpha), 0.0, np.pi) * nyquist / np.pi


def envelope_warp(samples: np.ndarray, rate: int, params: Params) -> np.ndarray:
    """Move the spectral envelope (formants) and tilt it, keeping the harmonics.

    ``params``: ``vtln`` (formant factor), ``mcadams`` (coefficient), optional
    ``drift_<i>`` anchors (log-factor offsets gliding over time) and ``eq_<i>``
    (dB of smooth cosine ripples over the mel scale).
    """
    length = len(samples)
    if length == 0:
        return samples.astype(np.float32)
    spectrum = stft(samples)
    frames, bins = spectrum.shape
    nyquist = rate / 2.0
    freqs = np.linspace(0.0, nyquist, bins)[None, :]
    drifts = [params[key] for key in sorted(params, key=_numbered) if key.startswith("drift_")]
    offsets = drift(drifts, frames, STFT_HOP / rate) if len(drifts) >= 2 else np.zeros(frames)
    vtln = params.get("vtln", 1.0) * np.exp(offsets)[:, None]
    source = vtln_source(freqs, vtln, nyquist)
    alpha = params.get("mcadams", 1.0)
    if alpha != 1.0:
        source = mcadams_source(source, np.asarray(alpha), nyquist)
    envelope = log_envelope(spectrum, rate)
    gain = _interpolate_rows(envelope, source * (bins - 1) / nyquist) - envelope
    eq = [params[key] for key in sorted(params, key=_numbered) if key.startswith("eq_")]
    if eq:
        mel = np.log1p(freqs[0] / 700.0) / np.log1p(nyquist / 700.0)
        ripple_db = sum(depth * np.cos(np.pi * (order + 1) * mel) for order, depth in enumerate(eq))
        gain = gain + ripple_db[None, :] * (np.log(10.0) / 20.0)
    limit = ENVELOPE_GAIN_LIMIT_DB * np.log(10.0) / 20.0
    out = istft(spectrum * np.exp(np.clip(gain, -limit, limit)), length)
    return _fit_level(out, samples)


def _numbered(key: str) -> tuple[str, int]:
    stem, _, number = key.rpartition("_")
    return (stem, int(number)) if number.isdigit() else (key, 0)


def _fit_level(out: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Keep the input's RMS level and stay inside [-1, 1]."""
    ref_rms = float(np.sqrt(np.mean(np.square(reference, dtype=np.float64))))
    out_rms = float(np.sqrt(np.mean(np.square(out))))
    if out_rms > 0:
        out = out * (ref_rms / out_rms)
    peak = float(np.max(np.abs(out))) if len(out) else 0.0
    if peak > 0.99:
        out = out * (0.99 / peak)
    return out.astype(np.float32)


# --- McAdams LPC pole warping (VoicePrivacy Challenge baseline B2) ---------------

def _lpc(frames: np.ndarray, order: int) -> np.ndarray:
    """Return LPC polynomials (frames x order+1) by Levinson-Durbin, all frames at once."""
    size = frames.shape[1]
    power = np.abs(np.fft.rfft(frames, n=2 * size, axis=1)) ** 2
    autocorr = np.fft.irfft(power, axis=1)[:, :order + 1]
    autocorr[:, 0] = autocorr[:, 0] * (1.0 + 1e-9) + 1e-12  # white-noise floor for silent frames
    coeffs = np.zeros((frames.shape[0], order + 1))
    coeffs[:, 0] = 1.0
    error = autocorr[:, 0].copy()
    for i in range(1, order + 1):
        acc = autocorr[:, i] + np.sum(coeffs[:, 1:i] * autocorr[:, i - 1:0:-1], axis=1)
        reflection = -acc / error
        previous = coeffs.copy()
        coeffs[:, 1:i] = previous[:, 1:i] + reflection[:, None] * previous[:, i - 1:0:-1]
        coeffs[:, i] = reflection
        error = error * (1.0 - reflection**2)
    return coeffs


def mcadams_lpc(samples: np.ndarray, rate: int, params: Params) -> np.ndarray:
    """Raise the angle of every complex LPC pole to the power ``params['mcadams']``."""
    alpha = params["mcadams"]
    order = 20
    size = int(rate * 0.02)
    hop = size // 2
    length = len(samples)
    padded = np.pad(samples.astype(np.float64), (size, size + hop))
    count = 1 + (len(padded) - size) // hop
    window = _window(size)
    frames = np.lib.stride_tricks.sliding_window_view(padded, size)[::hop][:count] * window
    coeffs = _lpc(frames, order)
    companion = np.zeros((count, order, order))
    companion[:, 0, :] = -coeffs[:, 1:]
    companion[:, np.arange(1, order), np.arange(order - 1)] = 1.0
    poles = np.linalg.eigvals(companion)
    angle = np.angle(poles)
    complex_pole = np.abs(poles.imag) > 1e-8
    new_angle = np.where(complex_pole, np.sign(angle) * np.abs(angle) ** alpha, angle)
    new_poles = np.abs(poles) * np.exp(1j * new_angle)
    new_coeffs = np.ones((count, 1), dtype=complex)
    for k in range(order):  # multiply out prod(1 - p z^-1), all frames at once
        shifted = np.pad(new_coeffs, ((0, 0), (0, 1)))
        shifted[:, 1:] -= new_poles[:, k:k + 1] * new_coeffs
        new_coeffs = shifted
    new_coeffs = new_coeffs.real
    out = np.zeros(len(padded))
    for index in range(count):
        residual = lfilter(coeffs[index], [1.0], frames[index])
        start = index * hop
        out[start:start + size] += lfilter([1.0], new_coeffs[index], residual)
    return _fit_level(out[size:size + length], samples)


# --- Presets -------------------------------------------------------------------

def pitch_factor_draw(rng: random.Random, low: float, high: float, dead_band: float) -> float:
    """Draw a pitch factor uniformly in [low, high], at least ``dead_band`` away from 1."""
    while True:
        factor = rng.uniform(low, high)
        if abs(factor - 1.0) >= dead_band:
            return factor


def _pitch_draw(rng: random.Random) -> Params:
    low, high = settings.DISGUISE_PITCH_RANGE
    return {"pitch": pitch_factor_draw(rng, low, high, settings.DISGUISE_PITCH_DEAD_BAND)}


def _mcadams_draw(rng: random.Random) -> Params:
    return {"pitch": factor_draw(rng, 0.78, 1.28, 0.08), "mcadams": rng.uniform(0.7, 0.9)}


def resample_pitch_filter(pitch: float, rate: int) -> str:
    """Return the ffmpeg chain that scales pitch and formants by ``pitch``, duration kept.

    Resampling then WSOLA time-stretching (atempo) keeps speech cleaner for
    recognizers than a phase-vocoder pitch shift; ``voice_transform`` then puts the
    formants back (or where it wants them).
    """
    return f"asetrate={rate * pitch:.1f},aresample={rate},atempo={1.0 / pitch:.6f}"


def voice_transform(samples: np.ndarray, rate: int, params: Params) -> np.ndarray:
    """Undo the formant move of the resampling step and apply the drawn envelope changes."""
    warp = dict(params)
    warp["vtln"] = params.get("vtln", 1.0) / params.get("pitch", 1.0)
    return envelope_warp(samples, rate, warp)


def voice_draw(rng: random.Random, *, pitch: tuple[float, float], vtln: tuple[float, float], drift: float,
               eq_db: float, mcadams: tuple[float, float] | None = None) -> Params:
    """Draw pitch, formant factor, formant drift anchors and spectral ripples for one clip."""
    params = {"pitch": factor_draw(rng, *pitch, dead_band=0.08), "vtln": factor_draw(rng, *vtln, dead_band=0.03)}
    if mcadams:
        params["mcadams"] = rng.uniform(*mcadams)
    params.update({f"drift_{i}": rng.uniform(-drift, drift) for i in range(DRIFT_ANCHORS)})
    params.update({f"eq_{i}": rng.uniform(-eq_db, eq_db) for i in range(EQ_RIPPLES)})
    return params


DRIFT_ANCHORS = 12
# Figures of the issue 13 run (docs/privacy-benchmark.md).
NEWNOTE = "make bench-privacy 2026-12-01: 24 TTS voices, WER on the 11 voices pocketsphinx reads"
# Figures of the second issue 13 run (same corpus and method: linkage and speed), and the WER of a
# third, --wer-only run of the same presets with the same seeds and readable voices.
LINKNOTE = ("make bench-privacy 2026-12-02: 24 TTS voices, attackers ignorant, lazy, both and forward grid "
            "(normalize left out: never the worst case in earlier runs); WER from a WER-only run the same "
            "day (same corpus and seeds, the 11 voices pocketsphinx reads)")
EQ_RIPPLES = 4
VOICE_RANGES = {"pitch": (0.8, 1.3), "vtln": (0.9, 1.12)}
VOICE_STRONG_RANGES = {"pitch": (0.72, 1.4), "vtln": (0.86, 1.17)}

PRESETS: dict[str, Preset] = {}


def preset_register(preset: Preset) -> Preset:
    """Add a preset to the registry under its name."""
    PRESETS[preset.name] = preset
    return preset


preset_register(Preset(
    name="pitch",
    description="Random pitch shift per clip (formants move with it). Reversible by an attacker who "
                "tries the shifts in the range: weak privacy, best intelligibility.",
    draw=_pitch_draw,
    # Resampling + WSOLA, in process: PyAV's FFmpeg has no rubberband, and an ffmpeg process per
    # clip cost four times the pitch shift itself.
    ffmpeg_filter=lambda p: resample_pitch_filter(p["pitch"], settings.AUDIO_SAMPLE_RATE),
    ranges={"pitch": (0.78, 1.28)},
    measured=Measured(eer_worst=4.5, eer_worst_by="forward grid", wer=46.4, wer_undisguised=22.3, x_realtime=539,
                      top1_worst=92, top1_chance=4.2, note=LINKNOTE),
))

preset_register(Preset(
    name="mcadams",
    description="Random McAdams LPC pole warping (coefficient 0.7-0.9) plus a random pitch shift.",
    draw=_mcadams_draw,
    ffmpeg_filter=lambda p: resample_pitch_filter(p["pitch"], settings.AUDIO_SAMPLE_RATE),
    transform=mcadams_lpc,
    ranges={"pitch": (0.78, 1.28), "mcadams": (0.7, 0.9)},
    measured=Measured(eer_worst=9.4, eer_worst_by="forward grid", wer=67.1, wer_undisguised=22.3, x_realtime=44,
                      top1_worst=73, top1_chance=4.2, note=LINKNOTE),
))

preset_register(Preset(
    name="voice",
    description="Random pitch (0.8-1.3) with formants kept, random formant factor (0.9-1.12) that drifts "
                "+-5% over time, random +-6 dB spectral ripples. Balanced privacy and intelligibility.",
    draw=lambda rng: voice_draw(rng, **VOICE_RANGES, drift=0.05, eq_db=6.0),
    ffmpeg_filter=lambda p: resample_pitch_filter(p["pitch"], settings.AUDIO_SAMPLE_RATE),
    transform=voice_transform,
    ranges=VOICE_RANGES,
    measured=Measured(eer_worst=9.7, eer_worst_by="forward grid", wer=29.5, wer_undisguised=22.3, x_realtime=178,
                      top1_worst=82, top1_chance=4.2, note=LINKNOTE),
))

preset_register(Preset(
    name="voice-strong",
    description="As 'voice' with wider ranges: pitch 0.72-1.4, formants 0.86-1.17 drifting +-8%, "
                "+-8 dB ripples. More privacy, less intelligibility.",
    draw=lambda rng: voice_draw(rng, **VOICE_STRONG_RANGES, drift=0.08, eq_db=8.0),
    ffmpeg_filter=lambda p: resample_pitch_filter(p["pitch"], settings.AUDIO_SAMPLE_RATE),
    transform=voice_transform,
    ranges=VOICE_STRONG_RANGES,
    measured=Measured(eer_worst=13.9, eer_worst_by="forward grid", wer=42.3, wer_undisguised=22.3, x_realtime=144,
                      top1_worst=68, top1_chance=4.2, note=LINKNOTE),
))


# --- Many-to-one: every voice towards one synthetic target voice (issue 13) -----

TARGET_RANGES = {"f0_shift": (0.95, 1.05), "f0_range": (0.9, 1.1)}


def target_draw(rng: random.Random, *, knn: float, warp: float) -> Params:
    """Fixed mapping strengths plus a small per-clip jitter of the target pitch median and spread."""
    return {"knn": knn, "warp": warp, "f0_shift": rng.uniform(*TARGET_RANGES["f0_shift"]),
            "f0_range": rng.uniform(*TARGET_RANGES["f0_range"])}


def target_transform(samples: np.ndarray, rate: int, params: Params) -> np.ndarray:
    """Resynthesise towards the target voice (reviews.disguise_world) at the input's level."""
    from . import disguise_world

    return _fit_level(disguise_world.target_voice(samples, rate, params), samples)



preset_register(Preset(
    name="target-light",
    description="Many-to-one, averages only: WORLD vocoder resynthesis with the pitch moved to a fixed target "
                "median and spread (stylised, +-5% jitter) and the long-term spectrum of the target voice; the "
                "frame-by-frame envelope stays the speaker's.",
    draw=lambda rng: target_draw(rng, knn=0.0, warp=0.0),
    transform=target_transform,
    ranges=TARGET_RANGES,
    measured=Measured(eer_worst=8.7, eer_worst_by="lazy", wer=33.8, wer_undisguised=22.3, x_realtime=71,
                      top1_worst=82, top1_chance=4.2, note=NEWNOTE),
))

preset_register(Preset(
    name="target",
    description="Many-to-one: as 'target-light', and every 10 ms frame's envelope is 30% replaced by its nearest "
                "neighbours in a codebook of a synthetic target voice (kNN in WORLD parameter space); "
                "aperiodicity from the target.",
    draw=lambda rng: target_draw(rng, knn=0.3, warp=0.0),
    transform=target_transform,
    ranges=TARGET_RANGES,
    measured=Measured(eer_worst=8.3, eer_worst_by="lazy", wer=30.4, wer_undisguised=22.3, x_realtime=80,
                      top1_worst=84, top1_chance=4.2, note=NEWNOTE),
))

preset_register(Preset(
    name="target-strong",
    description="Many-to-one, full replacement: every frame's envelope is the mean of its nearest neighbours in "
                "the target voice's codebook; nothing of the speaker's envelope is left. Most private, hard to "
                "understand.",
    draw=lambda rng: target_draw(rng, knn=1.0, warp=0.0),
    transform=target_transform,
    ranges=TARGET_RANGES,
    measured=Measured(eer_worst=19.5, eer_worst_by="lazy", wer=79.1, wer_undisguised=22.3, x_realtime=76,
                      top1_worst=54, top1_chance=4.2, note=NEWNOTE),
))
