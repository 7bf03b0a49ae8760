"""Many-to-one speaker normalisation with the WORLD vocoder (pyworld): the 'target' presets.

Every clip is analysed with WORLD (DIO + StoneMask pitch, CheapTrick spectral
envelope, 10 ms frames) and resynthesised with

- the *envelope of a target voice*: each frame's envelope is replaced by the mean of
  its nearest neighbours in a codebook of frames of one synthetic voice (kNN-VC
  style, in vocoder-parameter space), matched on speaker-normalised mel-cepstra
  (the clip's own vocal-tract scale warped to the target's, then per-clip mean and
  variance normalisation). Nothing of the input's envelope reaches the output but
  which codebook frames were picked and the frame energy;
- the *target's aperiodicity*, taken from the same neighbours;
- a *stylised pitch contour*: the clip's log-F0 moved to the target's median and
  spread, then smoothed, so micro-prosody and the speaker's pitch statistics go.

The codebook (reviews/disguise_codebook.npz) is made by
tests/bench/privacy/make_codebook.py from flite's kal16 voice reading sentences
that are not in the benchmark; no recording of a person goes into it.
"""

import functools
import importlib.machinery
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CODEBOOK_PATH = Path(__file__).with_name("disguise_codebook.npz")
FRAME_PERIOD_MS = 10.0
FFT_SIZE = 512
F0_FLOOR = 60.0
F0_CEIL = 450.0
# Matching features: coded envelope coefficients 1..MATCH_DIMS (0 is the level) of
# each frame and of MATCH_CONTEXT frames either side.
MATCH_DIMS = 14
MATCH_CONTEXT = 2
# kNN: mean of this many nearest codebook frames, then a moving average over
# ENVELOPE_SMOOTH frames.
NEIGHBOURS = 4
ENVELOPE_SMOOTH = 3
# Stored target envelopes: coded with this many coefficients.
ENVELOPE_DIMS = 40
# Frames quieter than this (dB below the clip's loudest frame) do not count for the
# clip's statistics.
SPEECH_FLOOR_DB = 35.0
# Vocal-tract scale search for the matching features (input -> target).
WARP_FACTORS = np.exp(np.linspace(np.log(0.8), np.log(1.25), 19))
# Stylised pitch: moving average of log-F0 over this many seconds.
F0_SMOOTH_SECONDS = 0.15
# Timing normalisation: every clip's speech is time-stretched to this many syllable
# nuclei per second of speech (pauses left out), within TEMPO_LIMITS; pauses inside a
# clip are cut to PAUSE_SECONDS and the silence at either end to EDGE_SECONDS.
TARGET_SYLLABLE_RATE = 6.0
TEMPO_LIMITS = (0.6, 1.7)
PAUSE_SECONDS = 0.15
EDGE_SECONDS = 0.1
# Syllable nuclei: peaks of the voiced frames' log energy (smoothed over NUCLEUS_SMOOTH
# frames) standing out by NUCLEUS_PROMINENCE_DB, at least NUCLEUS_GAP_SECONDS apart.
NUCLEUS_SMOOTH = 3
NUCLEUS_PROMINENCE_DB = 1.0
NUCLEUS_GAP_SECONDS = 0.08


@dataclass(frozen=True)
class Codebook:
    features: np.ndarray      # (frames, MATCH_DIMS) float32, normalised
    features_sq: np.ndarray   # squared norms, for fast distances
    envelope: np.ndarray      # (frames, ENVELOPE_DIMS) float32, coded log envelope of the target
    aperiodicity: np.ndarray  # (frames, bands) float32, coded aperiodicity of the target
    mean_envelope: np.ndarray  # (bins,) long-term log envelope of the target (warp search)
    f0_median: float          # target median F0 in Hz
    f0_spread: float          # target spread of log-F0 (robust standard deviation)


@functools.cache
def _world():
    """Return pyworld's compiled module (imported late: this module loads without it).

    pyworld 0.3.5's package ``__init__`` only reads its own version through
    ``pkg_resources``, which setuptools 81 and later no longer ship; where that import
    fails, the compiled module is loaded directly (it needs nothing else).
    """
    try:
        import pyworld
    except ModuleNotFoundError as exc:
        if exc.name != "pkg_resources":
            raise
    else:
        return pyworld
    spec = importlib.util.find_spec("pyworld")  # finds the package without running it
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = Path(spec.submodule_search_locations[0]) / f"pyworld{suffix}"
        if path.exists():
            loader = importlib.machinery.ExtensionFileLoader("pyworld.pyworld", str(path))
            module = importlib.util.module_from_spec(importlib.util.spec_from_loader("pyworld.pyworld", loader))
            loader.exec_module(module)
            return module
    raise ModuleNotFoundError("pyworld's compiled module is missing", name="pyworld")


@functools.cache
def codebook_load(path: Path = CODEBOOK_PATH) -> Codebook:
    with np.load(path) as data:
        features = data["features"].astype(np.float32)
        return Codebook(
            features=features, features_sq=np.sum(features**2, axis=1),
            envelope=data["envelope"].astype(np.float32), aperiodicity=data["aperiodicity"].astype(np.float32),
            mean_envelope=data["mean_envelope"].astype(np.float64),
            f0_median=float(data["f0_median"]), f0_spread=float(data["f0_spread"]),
        )


@dataclass
class Analysis:
    f0: np.ndarray        # Hz per frame, 0 unvoiced
    envelope: np.ndarray  # CheapTrick power envelope (frames, FFT_SIZE // 2 + 1)
    speech: np.ndarray    # bool per frame: loud enough to count


def analyse(samples: np.ndarray, rate: int) -> Analysis:
    """WORLD analysis at 10 ms frames: pitch (DIO + StoneMask) and spectral envelope (CheapTrick)."""
    world = _world()
    x = np.ascontiguousarray(samples, dtype=np.float64)
    f0, times = world.dio(x, rate, f0_floor=F0_FLOOR, f0_ceil=F0_CEIL, frame_period=FRAME_PERIOD_MS)
    f0 = world.stonemask(x, f0, times, rate)
    envelope = world.cheaptrick(x, f0, times, rate, f0_floor=3.0 * rate / FFT_SIZE, fft_size=FFT_SIZE)
    level = 10 * np.log10(envelope.sum(axis=1) + 1e-20)
    speech = level > level.max() - SPEECH_FLOOR_DB
    return Analysis(f0=f0, envelope=envelope, speech=speech)


def warp_bins(log_envelope: np.ndarray, factor: float) -> np.ndarray:
    """Scale the frequency axis of log envelopes (..., bins): a formant at f moves to f * factor."""
    bins = log_envelope.shape[-1]
    source = np.clip(np.arange(bins) / factor, 0, bins - 1)
    lower = np.minimum(source.astype(np.int64), bins - 2)
    fraction = source - lower
    return log_envelope[..., lower] * (1 - fraction) + log_envelope[..., lower + 1] * fraction


def long_term_log_envelope(analysis: Analysis) -> np.ndarray:
    frames = analysis.envelope[analysis.speech] if analysis.speech.any() else analysis.envelope
    log_env = np.log(frames + 1e-20)
    return (log_env - log_env.mean(axis=1, keepdims=True)).mean(axis=0)


def warp_estimate(analysis: Analysis, target_mean: np.ndarray) -> float:
    """The frequency scale that brings this clip's long-term envelope closest to the target's (0-5 kHz)."""
    mean = long_term_log_envelope(analysis)
    band = slice(4, int(len(mean) * 5000 / 8000))
    best, best_error = 1.0, np.inf
    for factor in WARP_FACTORS:
        warped = warp_bins(mean, factor)[band]
        error = float(np.mean((warped - warped.mean() - (target_mean[band] - target_mean[band].mean())) ** 2))
        if error < best_error:
            best, best_error = float(factor), error
    return best


def match_features(analysis: Analysis, rate: int, warp: float) -> np.ndarray:
    """Speaker-normalised matching features of every frame.

    The envelope is warped to the target's vocal-tract scale, coded as low-order
    mel-cepstra, mean- and variance-normalised over the clip's speech, and stacked with
    its MATCH_CONTEXT neighbours on each side (so a match is a short trajectory).
    """
    world = _world()
    envelope = analysis.envelope
    if warp != 1.0:
        envelope = np.exp(warp_bins(np.log(envelope + 1e-20), warp))
    coded = world.code_spectral_envelope(np.ascontiguousarray(envelope), rate, MATCH_DIMS + 1)[:, 1:]
    speech = coded[analysis.speech] if analysis.speech.sum() >= 10 else coded
    coded = (coded - speech.mean(axis=0)) / (speech.std(axis=0) + 1e-6)
    padded = np.pad(coded, ((MATCH_CONTEXT, MATCH_CONTEXT), (0, 0)), mode="edge")
    stacked = [padded[offset:offset + len(coded)] for offset in range(2 * MATCH_CONTEXT + 1)]
    return np.concatenate(stacked, axis=1).astype(np.float32)


def log_f0_stats(f0: np.ndarray) -> tuple[float, float] | None:
    """Median and robust spread (IQR / 1.349) of log-F0 over voiced frames, or None."""
    voiced = np.log(f0[f0 > 0])
    if len(voiced) < 5:
        return None
    low, median, high = np.percentile(voiced, [25, 50, 75])
    return float(median), max(float(high - low) / 1.349, 0.02)


def f0_stylise(f0: np.ndarray, target_hz: float, target_spread: float) -> np.ndarray:
    """Map log-F0 to the target median and spread, then smooth it: a contour that keeps intonation only."""
    stats = log_f0_stats(f0)
    voiced = f0 > 0
    if stats is None:
        return np.zeros_like(f0)
    median, spread = stats
    frames = np.arange(len(f0))
    log_f0 = np.interp(frames, frames[voiced], np.log(f0[voiced]))  # bridge the unvoiced gaps
    width = max(1, int(round(F0_SMOOTH_SECONDS * 1000 / FRAME_PERIOD_MS)))
    kernel = np.hanning(width + 2)[1:-1]
    padded = np.pad(log_f0, width, mode="edge")
    smooth = np.convolve(padded, kernel / kernel.sum(), mode="same")[width:-width]
    mapped = np.log(target_hz) + (smooth - median) * (target_spread / spread)
    return np.where(voiced, np.exp(np.clip(mapped, np.log(F0_FLOOR), np.log(F0_CEIL))), 0.0)


def neighbours(features: np.ndarray, codebook: Codebook, count: int) -> np.ndarray:
    """Indices (frames x count) of the nearest codebook frames by Euclidean distance."""
    distance = codebook.features_sq[None, :] - 2.0 * features @ codebook.features.T
    return np.argpartition(distance, count, axis=1)[:, :count]


def moving_average(values: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average over the rows (frames), edges held."""
    if width <= 1:
        return values
    padded = np.pad(values, ((width // 2, width - 1 - width // 2), (0, 0)), mode="edge")
    cumulative = np.cumsum(np.pad(padded, ((1, 0), (0, 0))), axis=0)
    return (cumulative[width:] - cumulative[:-width]) / width


def frame_level_db(envelope: np.ndarray) -> np.ndarray:
    return 10 * np.log10(envelope.sum(axis=1) + 1e-20)


def syllable_nuclei(analysis: Analysis) -> int:
    """Count syllable nuclei: prominent peaks of the smoothed log energy on voiced speech frames."""
    from scipy.signal import find_peaks

    level = frame_level_db(analysis.envelope)
    kernel = np.ones(NUCLEUS_SMOOTH) / NUCLEUS_SMOOTH
    smooth = np.convolve(np.pad(level, NUCLEUS_SMOOTH // 2, mode="edge"), kernel, mode="valid")
    floor = smooth.min()
    # Unvoiced and quiet frames sink to the floor, so every voiced stretch stands on its own.
    smooth = np.where((analysis.f0 > 0) & analysis.speech, smooth, floor)
    peaks, _ = find_peaks(smooth, prominence=NUCLEUS_PROMINENCE_DB,
                          distance=max(1, int(round(NUCLEUS_GAP_SECONDS * 1000 / FRAME_PERIOD_MS))))
    return int(len(peaks))


def timing_positions(analysis: Analysis) -> np.ndarray:
    """Fractional input-frame positions of every output frame: speech at the target syllable rate.

    Speech runs (frames within SPEECH_FLOOR_DB of the loudest) are stretched uniformly so
    that the clip says TARGET_SYLLABLE_RATE nuclei per second of speech; every pause
    inside the clip becomes PAUSE_SECONDS long and the silence at the ends EDGE_SECONDS.
    """
    speech = analysis.speech
    frames = len(speech)
    nuclei = syllable_nuclei(analysis)
    speech_seconds = speech.sum() * FRAME_PERIOD_MS / 1000
    if nuclei < 2 or speech_seconds <= 0:
        return np.arange(frames, dtype=np.float64)
    # Output frames per input speech frame (below 1: the speaker was slow, so speed up).
    tempo = float(np.clip(nuclei / (TARGET_SYLLABLE_RATE * speech_seconds), *TEMPO_LIMITS))
    pause = max(1, int(round(PAUSE_SECONDS * 1000 / FRAME_PERIOD_MS)))
    edge = max(1, int(round(EDGE_SECONDS * 1000 / FRAME_PERIOD_MS)))
    # Runs of equal speech/non-speech frames.
    changes = np.flatnonzero(np.diff(speech.astype(np.int8))) + 1
    starts = np.concatenate([[0], changes])
    ends = np.concatenate([changes, [frames]])
    positions = []
    for index, (start, end) in enumerate(zip(starts, ends)):
        length = end - start
        if speech[start]:
            count = max(1, int(round(length * tempo)))
        else:
            count = min(length, edge if index in (0, len(starts) - 1) else pause)
        positions.append(start + (np.arange(count) + 0.5) * (length / count) - 0.5)
    return np.clip(np.concatenate(positions), 0.0, frames - 1.0)


def frames_resample(values: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Read the rows (frames) of ``values`` at fractional ``positions``, linearly interpolated."""
    lower = np.minimum(positions.astype(np.int64), len(values) - 1)
    upper = np.minimum(lower + 1, len(values) - 1)
    fraction = (positions - lower)[:, None] if values.ndim == 2 else positions - lower
    return values[lower] * (1 - fraction) + values[upper] * fraction


def f0_resample(f0: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Read F0 at fractional frame positions: log-interpolated between voiced frames, voicing of the nearest."""
    nearest = np.minimum(np.round(positions).astype(np.int64), len(f0) - 1)
    voiced = f0[nearest] > 0
    if not (f0 > 0).any():
        return np.zeros(len(positions))
    frames = np.arange(len(f0))
    log_f0 = np.interp(positions, frames[f0 > 0], np.log(f0[f0 > 0]))
    return np.where(voiced, np.exp(log_f0), 0.0)


def loudness_flatten(level_db: np.ndarray, speech: np.ndarray, amount: float) -> np.ndarray:
    """Move each speech frame's level ``amount`` (0-1) of the way to the clip's median speech level (dB)."""
    if amount <= 0 or not speech.any():
        return level_db
    median = float(np.median(level_db[speech]))
    # A soft speech mask (30 ms ramps), so pauses stay quiet and nothing jumps at the edges.
    weight = np.convolve(speech.astype(np.float64), np.ones(3) / 3, mode="same")
    return level_db + amount * weight * (median - level_db).clip(min=-30.0, max=30.0)


def target_voice(samples: np.ndarray, rate: int, params: dict[str, float]) -> np.ndarray:
    """Resynthesise ``samples`` with the target voice's envelope and a stylised, target-range pitch.

    ``params``: ``knn`` (0-1: weight of the codebook envelope against the clip's own
    envelope normalised to the target's scale and long-term spectrum), ``f0_shift``
    (factor on the target median F0) and ``f0_range`` (factor on the target spread).
    Prosody normalisation, used by no preset yet (docs/privacy-benchmark.md: it helps only
    once the whole envelope is replaced): ``timing`` (1: speech at TARGET_SYLLABLE_RATE,
    pauses cut; the output's length then differs from the input's), ``flatten`` (0-1:
    loudness contour towards the clip's median) and ``intonation`` (factor on the spread).
    """
    world = _world()
    length = len(samples)
    if length < rate // 10:
        return samples.astype(np.float32)
    codebook = codebook_load(CODEBOOK_PATH)
    analysis = analyse(samples, rate)
    warp = warp_estimate(analysis, codebook.mean_envelope)
    log_envelope = np.log(analysis.envelope + 1e-20)
    # The clip's own envelope on the target's frequency scale and long-term spectrum.
    own_warp = warp ** float(params.get("warp", 1.0))
    normalised = warp_bins(log_envelope, own_warp) if own_warp != 1.0 else log_envelope
    speech = normalised[analysis.speech] if analysis.speech.any() else normalised
    normalised = normalised + (codebook.mean_envelope - (speech - speech.mean(axis=1, keepdims=True)).mean(axis=0))
    index = neighbours(match_features(analysis, rate, warp), codebook, NEIGHBOURS)
    weight = float(params.get("knn", 1.0))
    if weight > 0:
        coded = moving_average(codebook.envelope[index].mean(axis=1).astype(np.float64), ENVELOPE_SMOOTH)
        target = np.log(world.decode_spectral_envelope(np.ascontiguousarray(coded), rate, FFT_SIZE) + 1e-20)
        mixed = (1.0 - weight) * normalised + weight * target
    else:
        mixed = normalised
    # The input's frame energy (the loudness contour), flattened by ``params['flatten']``.
    level_db = loudness_flatten(frame_level_db(analysis.envelope), analysis.speech, float(params.get("flatten", 0.0)))
    coded_aperiodicity = codebook.aperiodicity[index].mean(axis=1).astype(np.float64)
    f0 = f0_stylise(analysis.f0, codebook.f0_median * params.get("f0_shift", 1.0),
                    codebook.f0_spread * params.get("f0_range", 1.0) * params.get("intonation", 1.0))
    if params.get("timing", 0.0) > 0:
        positions = timing_positions(analysis)
        mixed = frames_resample(mixed, positions)
        level_db = frames_resample(level_db, positions)
        coded_aperiodicity = frames_resample(coded_aperiodicity, positions)
        f0 = f0_resample(f0, positions)
        length = int(round(len(positions) * FRAME_PERIOD_MS / 1000 * rate))
    envelope = np.exp(mixed - mixed.max())
    # Nothing of the input's spectral shape: only its (possibly flattened) frame energy.
    envelope *= (10 ** (level_db / 10) / np.maximum(envelope.sum(axis=1), 1e-30))[:, None]
    aperiodicity = world.decode_aperiodicity(np.ascontiguousarray(coded_aperiodicity), rate, FFT_SIZE)
    out = world.synthesize(f0, np.ascontiguousarray(envelope), aperiodicity, rate, FRAME_PERIOD_MS)
    return out[:length] if len(out) >= length else np.pad(out, (0, length - len(out)))
