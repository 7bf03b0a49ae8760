"""reviews/disguise.py: the presets' signal processing, and their use at ingest."""

import dataclasses
import io
import random
import time

import numpy as np
import pytest
from pydub import AudioSegment

from reviews import audio, disguise
from tests.conftest import speech_bytes

RATE = 16000
SAMPLE_PRESETS = sorted(name for name, preset in disguise.PRESETS.items() if preset.transform is not None)


def vowel(seconds: float = 1.5, pitch_hz: float = 120.0, formants=(700.0, 1200.0, 2600.0)) -> np.ndarray:
    """A glottal pulse train through three resonators: a crude but speech-like /a/."""
    count = int(seconds * RATE)
    excitation = np.zeros(count)
    excitation[:: int(RATE / pitch_hz)] = 1.0
    signal = excitation
    for formant in formants:
        radius = np.exp(-np.pi * 90.0 / RATE)
        theta = 2 * np.pi * formant / RATE
        out = np.zeros(count)
        a1, a2 = 2 * radius * np.cos(theta), -radius * radius
        for n in range(count):
            out[n] = signal[n] + a1 * (out[n - 1] if n >= 1 else 0.0) + a2 * (out[n - 2] if n >= 2 else 0.0)
        signal = out
    return (0.5 * signal / np.max(np.abs(signal))).astype(np.float32)


VOWEL = vowel()


def long_term_spectrum_db(samples: np.ndarray) -> np.ndarray:
    return 20 * np.log10(np.abs(disguise.stft(samples)).mean(axis=0) + 1e-6)


def envelope_peak_hz(samples: np.ndarray, low: float, high: float) -> float:
    envelope = disguise.log_envelope(disguise.stft(samples), RATE).mean(axis=0)
    freqs = np.linspace(0, RATE / 2, len(envelope))
    band = (freqs >= low) & (freqs <= high)
    return float(freqs[band][np.argmax(envelope[band])])


@pytest.mark.parametrize("name", SAMPLE_PRESETS)
def test_preset_keeps_the_length_and_range(name):
    out = disguise.PRESETS[name].apply(VOWEL, RATE, random.Random(1))
    assert out.shape == VOWEL.shape
    assert out.dtype == np.float32
    assert np.max(np.abs(out)) <= 1.0


@pytest.mark.parametrize("name", SAMPLE_PRESETS)
def test_preset_changes_the_spectrum_measurably(name):
    out = disguise.PRESETS[name].apply(VOWEL, RATE, random.Random(1))
    difference = np.abs(long_term_spectrum_db(out) - long_term_spectrum_db(VOWEL))
    assert np.mean(difference[10:200]) > 2.0  # dB, averaged over 300 Hz - 6 kHz


@pytest.mark.parametrize("name", SAMPLE_PRESETS)
def test_preset_is_deterministic_for_a_seeded_rng(name):
    preset = disguise.PRESETS[name]
    first = preset.apply(VOWEL, RATE, random.Random(5))
    second = preset.apply(VOWEL, RATE, random.Random(5))
    assert np.array_equal(first, second)


@pytest.mark.parametrize("name", sorted(disguise.PRESETS))
def test_two_seeds_draw_different_parameters_and_audio(name):
    preset = disguise.PRESETS[name]
    assert preset.draw(random.Random(5)) != preset.draw(random.Random(6))
    if preset.transform is not None:
        first = preset.apply(VOWEL, RATE, random.Random(5))
        second = preset.apply(VOWEL, RATE, random.Random(6))
        assert np.sqrt(np.mean((first - second) ** 2)) > 0.01


@pytest.mark.parametrize("name", sorted(disguise.PRESETS))
def test_drawn_parameters_stay_in_the_declared_ranges(name):
    preset = disguise.PRESETS[name]
    rng = random.Random(11)
    for _ in range(200):
        params = preset.draw(rng)
        for key, (low, high) in preset.ranges.items():
            assert low - 1e-9 <= params[key] <= high + 1e-9


def test_envelope_warp_without_change_gives_the_input_back():
    out = disguise.envelope_warp(VOWEL, RATE, {"vtln": 1.0})
    assert np.max(np.abs(out - VOWEL)) < 1e-4


def test_mcadams_coefficient_one_gives_the_input_back():
    out = disguise.mcadams_lpc(VOWEL, RATE, {"mcadams": 1.0})
    assert np.max(np.abs(out - VOWEL)) < 1e-4


def test_vocal_tract_warp_moves_the_first_formant_by_its_factor():
    before = envelope_peak_hz(VOWEL, 400, 1000)
    after = envelope_peak_hz(disguise.envelope_warp(VOWEL, RATE, {"vtln": 1.15}), 400, 1100)
    assert abs(before - 700) < 60
    assert abs(after / before - 1.15) < 0.06


def test_mcadams_below_one_raises_low_formants():
    before = envelope_peak_hz(VOWEL, 400, 1000)
    after = envelope_peak_hz(disguise.mcadams_lpc(VOWEL, RATE, {"mcadams": 0.8}), 400, 1400)
    assert after > before * 1.1


@pytest.mark.parametrize("name", sorted(disguise.PRESETS))
def test_every_preset_runs_through_ingest(name):
    original = AudioSegment.from_file(io.BytesIO(speech_bytes("clip02.flac")))
    result = audio.clip_audio_process(speech_bytes("clip02.flac"), rng=random.Random(3), preset=name)
    decoded = AudioSegment.from_file(io.BytesIO(result.data), format="mp3")
    assert abs(result.duration_ms - len(original)) < 60
    assert abs(len(decoded) - len(original)) < 150
    assert decoded.dBFS > -30


@pytest.mark.parametrize("name", sorted(disguise.PRESETS))
def test_every_preset_filters_in_process_without_an_ffmpeg_process(name, settings):
    # An ffmpeg process per clip (the fallback for filters PyAV's FFmpeg lacks, such as
    # rubberband) cost the 'pitch' preset four times the pitch shift itself.
    preset = disguise.PRESETS[name]
    for seed in range(5):
        chain = preset.ffmpeg_filter(preset.draw(random.Random(seed)))
        full = f"aresample={settings.AUDIO_SAMPLE_RATE}" + (f",{chain}" if chain else "")
        assert audio._filter_chain(full) is not None, chain


def test_default_preset_comes_from_settings(settings):
    settings.DISGUISE_PRESET = "no-such-preset"
    with pytest.raises(ValueError):
        audio.clip_audio_process(speech_bytes())


def test_unknown_preset_is_refused():
    with pytest.raises(ValueError):
        audio.clip_audio_process(speech_bytes(), preset="robot")


def test_configured_default_preset_exists(settings):
    assert settings.DISGUISE_PRESET in disguise.PRESETS


# --- Many-to-one 'target' presets (issue 13) ----------------------------------

TARGET_PRESETS = sorted(name for name in disguise.PRESETS if name.startswith("target"))


def decoded_clip(name: str) -> np.ndarray:
    segment = audio.audio_decode(speech_bytes(name))
    return np.frombuffer(segment.raw_data, dtype=np.int16).astype(np.float32) / 32768.0


def median_f0(samples: np.ndarray) -> float:
    from reviews import disguise_world

    world = disguise_world._world()
    x = samples.astype(np.float64)
    f0, _ = world.dio(x, RATE, f0_floor=60.0, f0_ceil=450.0, frame_period=10.0)
    return float(np.median(f0[f0 > 0]))


def test_target_presets_draw_afresh_for_every_clip_and_keep_nothing():
    preset = disguise.PRESETS["target"]
    drawn = []

    def draw(rng):
        drawn.append(preset.draw(rng))
        return drawn[-1]

    counting = dataclasses.replace(preset, draw=draw)
    data = speech_bytes("clip02.flac")
    first = audio.audio_disguise_decode(data, counting, random.SystemRandom())
    second = audio.audio_disguise_decode(data, counting, random.SystemRandom())
    assert len(drawn) == 2 and drawn[0] != drawn[1]  # one draw per clip, never reused
    assert first.raw_data != second.raw_data
    # What ingest returns (and so what can be stored) has no room for the parameters.
    assert {f.name for f in dataclasses.fields(audio.ProcessedAudio)} == {"data", "duration_ms", "peaks", "spectrogram"}


@pytest.mark.parametrize("name", TARGET_PRESETS)
def test_target_output_no_longer_carries_the_input_pitch(name):
    from reviews import disguise_world

    target_hz = disguise_world.codebook_load(disguise_world.CODEBOOK_PATH).f0_median
    low, high = disguise.TARGET_RANGES["f0_shift"]
    inputs, outputs = [], []
    # Four voices: flite slt (female), rms and awb (male), an espeak-ng variant.
    for index, clip in enumerate(["clip01.flac", "clip02.flac", "clip04.flac", "clip07.flac"]):
        samples = decoded_clip(clip)
        out = disguise.PRESETS[name].apply(samples, RATE, random.Random(index))
        inputs.append(median_f0(samples))
        outputs.append(median_f0(out))
    assert max(inputs) / min(inputs) > 1.3  # the voices differ in pitch...
    for value in outputs:  # ...and every output sits at the target's median, jitter included
        assert target_hz * low * 0.9 < value < target_hz * high * 1.1
    assert max(outputs) / min(outputs) < 1.2


def _world_resynthesis(samples: np.ndarray) -> np.ndarray:
    """Plain WORLD analysis and resynthesis at 10 ms frames: the reference the target preset is
    measured against (it replaces the aperiodicity analysis with the codebook's)."""
    import pyworld

    x = samples.astype(np.float64)
    f0, times = pyworld.dio(x, RATE, frame_period=10.0)
    f0 = pyworld.stonemask(x, f0, times, RATE)
    envelope = pyworld.cheaptrick(x, f0, times, RATE)
    aperiodicity = pyworld.d4c(x, f0, times, RATE)
    return pyworld.synthesize(f0, envelope, aperiodicity, RATE, 10.0)


def test_target_disguise_costs_under_three_quarters_of_a_plain_world_resynthesis():
    # A ratio of two things measured in one run, interleaved: this host's speed changes from
    # session to session (MP3 encoding took 18 ms a clip in one and 36 ms in the next, same
    # code), so an absolute "50x real time" failed on a slow host and passed on a fast one.
    # The absolute figure is printed here and measured by `make bench-privacy` (80x per core
    # on 2026-12-01, 35-47x here on the slower host of 2026-12-02). Today the ratio is 0.44-0.52:
    # a change that made the preset half as fast again would fail.
    samples = np.concatenate([decoded_clip("clip02.flac"), decoded_clip("clip05.flac")])[: 4 * RATE]
    preset = disguise.PRESETS["target"]
    preset.apply(samples, RATE, random.Random(0))  # warm-up: codebook, imports
    _world_resynthesis(samples)
    target, world = [], []
    for _ in range(5):
        target.append(_cpu_seconds(lambda: preset.apply(samples, RATE, random.Random(1))))
        world.append(_cpu_seconds(lambda: _world_resynthesis(samples)))
    seconds = len(samples) / RATE
    print(f"target: {seconds / min(target):.0f}x real time per core; plain WORLD: {seconds / min(world):.0f}x; "
          f"ratio {min(target) / min(world):.2f}")
    assert min(target) <= 0.75 * min(world)


def _cpu_seconds(work) -> float:
    start = time.process_time()
    work()
    return time.process_time() - start


def test_codebook_is_small_and_synthetic():
    from reviews import disguise_world

    codebook = disguise_world.codebook_load(disguise_world.CODEBOOK_PATH)
    assert disguise_world.CODEBOOK_PATH.stat().st_size < 512 * 1024
    assert codebook.features.shape[1] == disguise_world.MATCH_DIMS * (2 * disguise_world.MATCH_CONTEXT + 1)
    assert len(codebook.envelope) == len(codebook.features) == len(codebook.aperiodicity)
    assert 60 < codebook.f0_median < 300


def test_admin_offers_the_registered_presets_labelled_with_their_figures():
    from reviews.admin import ProjectAdminForm

    choices = ProjectAdminForm().fields["disguise_preset"].choices
    assert [value for value, _ in choices] == ["", *disguise.PRESETS]
    labels = dict(choices)
    for name, preset in disguise.PRESETS.items():
        if preset.measured is not None:
            assert preset.measured.summary() in labels[name]


# --- Timing and loudness normalisation inside the WORLD path (issue 13) ----------

def _analysis(pattern: list[tuple[bool, int]], nucleus_every: int = 16):
    """A WORLD analysis by hand: runs of (speech, frames); speech is voiced with a level peak every few frames."""
    from reviews import disguise_world

    speech = np.concatenate([np.full(count, flag) for flag, count in pattern])
    frames = np.arange(len(speech))
    level_db = np.where(speech, -20.0 + 6.0 * np.cos(2 * np.pi * frames / nucleus_every), -90.0)
    envelope = np.repeat((10 ** (level_db / 10) / 257)[:, None], 257, axis=1)
    return disguise_world.Analysis(f0=np.where(speech, 120.0, 0.0), envelope=envelope, speech=speech)


def _runs(flags: np.ndarray) -> list[tuple[bool, int]]:
    changes = np.flatnonzero(np.diff(flags.astype(np.int8))) + 1
    edges = np.concatenate([[0], changes, [len(flags)]])
    return [(bool(flags[start]), int(end - start)) for start, end in zip(edges[:-1], edges[1:])]


def test_timing_cuts_pauses_and_brings_speech_to_the_target_syllable_rate():
    from reviews import disguise_world as world

    # 2 s of speech with a nucleus every 160 ms (7 per run of 1 s), long pauses and edges.
    analysis = _analysis([(False, 80), (True, 100), (False, 90), (True, 100), (False, 60)])
    nuclei = world.syllable_nuclei(analysis)
    assert 13 <= nuclei <= 14
    positions = world.timing_positions(analysis)
    runs = _runs(analysis.speech[np.round(positions).astype(int)])
    pause, edge = round(world.PAUSE_SECONDS * 100), round(world.EDGE_SECONDS * 100)
    assert [flag for flag, _ in runs] == [False, True, False, True, False]
    assert runs[0][1] == edge and runs[2][1] == pause and runs[4][1] == edge
    speech_out = (runs[1][1] + runs[3][1]) / 100
    assert abs(nuclei / speech_out - world.TARGET_SYLLABLE_RATE) < 0.15
    # Slower input (nucleus every 320 ms): stretched the other way, to the same rate.
    slow = _analysis([(False, 10), (True, 200), (False, 10)], nucleus_every=32)
    slow_runs = _runs(slow.speech[np.round(world.timing_positions(slow)).astype(int)])
    assert abs(world.syllable_nuclei(slow) / (slow_runs[1][1] / 100) - world.TARGET_SYLLABLE_RATE) < 0.3


def test_loudness_flatten_moves_speech_towards_its_median_and_leaves_pauses_quiet():
    from reviews import disguise_world as world

    analysis = _analysis([(False, 20), (True, 64), (False, 20)])
    level = world.frame_level_db(analysis.envelope)
    flat = world.loudness_flatten(level, analysis.speech, 0.7)
    inner = slice(25, 80)
    assert np.std(flat[inner]) < 0.4 * np.std(level[inner])
    assert np.all(flat[:15] < -60) and np.all(flat[-15:] < -60)
    assert np.array_equal(world.loudness_flatten(level, analysis.speech, 0.0), level)
