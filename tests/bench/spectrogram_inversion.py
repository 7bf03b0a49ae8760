"""Can the workspace spectrogram (issue 12) be turned back into intelligible speech?

The assignment payload carries a small log-mel picture of the disguised audio
(reviews/spectrogram.py). This bench plays the attacker: it synthesizes sentences with known
text (flite), ingests them (disguise, MP3), then inverts the stored spectrogram as well as it
reasonably can (dequantize, mel pseudo-inverse, interpolation to a 10 ms hop, Griffin-Lim) and
has pocketsphinx transcribe the result. As a control that the attack works at all, it inverts
a vocoder-grade picture of the same disguised audio (80 mel bands, 10 ms hop, 25 ms windows,
8 bits like the stored one) the same way. Prints the word error rate of each.

Needs pocketsphinx (the privacy bench's virtualenv has it):
    .venv-bench/bin/python tests/bench/spectrogram_inversion.py [--sentences 10] [--iterations 60]
"""

import argparse
import base64
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotator.settings")

SENTENCES = [
    "set a timer for ten minutes", "what is the weather like in lisbon tomorrow",
    "turn off the lights in the kitchen", "play some relaxing music in the living room",
    "remind me to call my sister at six", "how long does it take to drive to the airport",
    "add milk and eggs to my shopping list", "what time does the pharmacy close today",
    "read me the news headlines please", "wake me up at seven thirty tomorrow morning",
    "turn the volume down a little", "tell me a joke about penguins",
]
VOICES = ["slt", "rms", "awb", "kal"]
RATE = 16000
HOP = 160  # 10 ms: the attacker's STFT frame step
WINDOW = 400  # 25 ms


def synthesize(text: str, voice: str) -> bytes:
    with tempfile.NamedTemporaryFile(suffix=".wav") as out:
        subprocess.run(["flite", "-voice", voice, "-t", text, "-o", out.name], check=True,  # noqa: S603, S607
                       capture_output=True)
        return Path(out.name).read_bytes()


def picture_cells(picture: dict) -> np.ndarray:
    raw = np.frombuffer(base64.b64decode(picture["data"]), dtype=np.uint8)
    return raw.reshape(picture["columns"], picture["bands"]).astype(np.float64) / 255.0


def invert(levels: np.ndarray, range_db: float, filters: np.ndarray, n_samples: int, iterations: int) -> np.ndarray:
    """Griffin-Lim from (columns, bands) levels in 0..1 (0 = range_db below the loudest cell)."""
    from scipy.signal import istft, stft

    mel_power = 10.0 ** ((levels * range_db - range_db) / 10.0)
    # Mel back to linear bins: the filters' pseudo-inverse, clipped at zero.
    linear = np.clip(mel_power @ np.linalg.pinv(filters).T, 0.0, None)  # (columns, bins)
    bins = linear.shape[1]
    n_fft = (bins - 1) * 2
    frames = 1 + n_samples // HOP
    column_times = (np.arange(len(linear)) + 0.5) * (n_samples / len(linear))
    frame_times = np.arange(frames) * HOP
    magnitude = np.sqrt(np.stack([np.interp(frame_times, column_times, linear[:, b]) for b in range(bins)]))
    rng = np.random.default_rng(0)
    phase = np.exp(2j * np.pi * rng.random(magnitude.shape))
    signal = np.zeros(n_samples)
    for _ in range(iterations):
        _, signal = istft(magnitude * phase, fs=RATE, nperseg=WINDOW, noverlap=WINDOW - HOP, nfft=n_fft)
        signal = signal[:n_samples]
        _, _, spectrum = stft(signal, fs=RATE, nperseg=WINDOW, noverlap=WINDOW - HOP, nfft=n_fft)
        width = min(spectrum.shape[1], magnitude.shape[1])
        phase[:, :width] = np.exp(1j * np.angle(spectrum[:, :width]))
    return signal / (np.abs(signal).max() + 1e-9) * 0.7


def picture_at(spectrogram, samples: np.ndarray, per_second: int) -> tuple[np.ndarray, np.ndarray]:
    """The picture at ``per_second`` columns a second (windows 1.6 hops long, as stored), and the
    mel filters resampled onto the attacker's 1024-point FFT."""
    saved = spectrogram.MAX_COLUMNS, spectrogram.MAX_COLUMNS_PER_SECOND, spectrogram.WINDOW_SECONDS
    spectrogram.MAX_COLUMNS, spectrogram.MAX_COLUMNS_PER_SECOND = 10 ** 6, per_second
    spectrogram.WINDOW_SECONDS = 1.6 / per_second
    try:
        picture = spectrogram.spectrogram_compute(samples.astype(np.float32), RATE)
        n_fft = spectrogram.fft_size(RATE)
        filters = spectrogram._mel_filters(RATE, n_fft).astype(np.float64)
    finally:
        spectrogram.MAX_COLUMNS, spectrogram.MAX_COLUMNS_PER_SECOND, spectrogram.WINDOW_SECONDS = saved
    return picture_cells(picture), resample_filters(filters, n_fft)


def resample_filters(filters: np.ndarray, n_fft: int) -> np.ndarray:
    return np.stack([np.interp(np.fft.rfftfreq(1024, 1 / RATE), np.fft.rfftfreq(n_fft, 1 / RATE), f)
                     for f in filters])


def main() -> int:
    import django

    django.setup()
    import jiwer
    from pocketsphinx import Decoder

    from reviews import audio, spectrogram

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentences", type=int, default=len(SENTENCES))
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--rates", default="100,40,20,10,5", help="other columns per second to try")
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",") if r]
    decoder = Decoder(logfn=os.devnull)

    def transcribe(samples: np.ndarray) -> str:
        pcm = np.clip(np.round(samples * 32767), -32768, 32767).astype("<i2").tobytes()
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()
        return decoder.hyp().hypstr if decoder.hyp() else ""

    rows: dict[str, tuple[list[str], list[str]]] = {}

    def score(name: str, reference: str, samples: np.ndarray) -> None:
        refs, hyps = rows.setdefault(name, ([], []))
        refs.append(reference)
        hyps.append(transcribe(samples) or "-")

    for index, text in enumerate(SENTENCES[: args.sentences]):
        wav = synthesize(text, VOICES[index % len(VOICES)])
        original = np.frombuffer(audio.audio_decode(wav).raw_data, dtype="<i2").astype(np.float64) / 32768
        processed = audio.clip_audio_process(wav, rng=random.Random(index))
        decoded = audio.audio_decode(processed.data)
        start = audio.MP3_PRIMING_SAMPLES
        disguised = np.frombuffer(decoded.raw_data, dtype="<i2")[start: start + processed.duration_ms * 16]
        disguised = disguised.astype(np.float64) / 32768
        score("original (undisguised)", text, original)
        score("disguised (what the reviewer hears)", text, disguised)

        stored = processed.spectrogram
        n_fft = spectrogram.fft_size(RATE)
        filters = spectrogram._mel_filters(RATE, n_fft).astype(np.float64)
        own = resample_filters(filters, n_fft)  # the attacker works at its own STFT size
        score("inverted from the stored spectrogram", text,
              invert(picture_cells(stored), spectrogram.RANGE_DB, own, len(disguised), args.iterations))

        # Other resolutions, computed here from the same disguised audio and never stored.
        for per_second in rates:
            cells, filters_there = picture_at(spectrogram, disguised, per_second)
            score(f"inverted from {per_second} columns/s, {1600 // per_second} ms windows", text,
                  invert(cells, spectrogram.RANGE_DB, filters_there, len(disguised), args.iterations))
        print(f"  {index + 1}/{args.sentences}: {text!r}: " + " | ".join(f"{h[-1]!r}" for _, h in rows.values()),
              flush=True)
    audio.audio_workers_stop()
    print(f"\n{args.sentences} sentences (flite voices {', '.join(VOICES)}), pocketsphinx en-us, "
          f"Griffin-Lim {args.iterations} iterations")
    for name, (refs, hyps) in rows.items():
        print(f"  WER {100 * jiwer.wer(refs, hyps):6.1f}%  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
