"""Build reviews/disguise_codebook.npz: the target voice of the 'target' disguise presets.

The target voice is synthetic: Debian's flite, voice kal16, reading the sentences
below (none of them is a benchmark command). Each 10 ms frame of speech becomes a
codebook entry: its speaker-normalised matching features (as reviews.disguise_world
computes them for any clip), its coded spectral envelope and aperiodicity. The target
pitch statistics are stored too. Deterministic: the same flite gives the same file.

    .venv-bench/bin/python tests/bench/privacy/make_codebook.py   (needs flite, pyworld)

flite-kal16 is not a benchmark speaker (corpus.py), so no preset is scored on the
voice it maps everyone to.
"""

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from reviews import disguise_world as dw  # noqa: E402

RATE = 16000
VOICE = "kal16"
CODEBOOK_SIZE = 1024

SENTENCES = [
    "open the garage door and switch on the porch light",
    "how many ounces are in a cup of flour",
    "book a table for four at the thai place on friday",
    "is it going to rain in the afternoon",
    "show me pictures of the beach from last summer",
    "pause the podcast and skip back thirty seconds",
    "the quick brown fox jumps over the lazy dog",
    "she sells sea shells by the sea shore",
    "a large yellow bag was found under the bridge",
    "we judged the fudge to be rich and chewy",
    "the birch canoe slid on the smooth planks",
    "glue the sheet to the dark blue background",
    "it is easy to tell the depth of a well",
    "these days a chicken leg is a rare dish",
    "rice is often served in round bowls",
    "the juice of lemons makes fine punch",
    "the box was thrown beside the parked truck",
    "four hours of steady work faced us",
    "what is the fastest route to the train station",
    "text my neighbour that the package arrived",
    "lock the front door and turn on the alarm",
    "how do you spell necessary",
    "translate good evening into spanish",
    "start a workout playlist with upbeat songs",
    "what was the score of the football game last night",
    "order more paper towels and dish soap",
    "find a vegetarian recipe with chickpeas and spinach",
    "when is my dentist appointment next week",
    "move the meeting with the design team to noon",
    "who wrote the novel about the white whale",
    "convert fifty euros to pounds",
    "dim the bedroom lamp to twenty percent",
    "joy and pleasure filled the village square",
    "the shy boy hid behind the huge oak tree",
    "measure the width of the window frame",
    "thank you very much, that will be all for now",
    "yes please go ahead and confirm the booking",
    "no I said the other one, the red jacket",
    "navigate home avoiding the motorway",
    "put the vacuum cleaner on in the hallway",
    "zebras and giraffes roam across the vast plain",
    "her voice was soft but the message was urgent",
    "the view from the mountain top was worth the climb",
    "keep the change and have a lovely weekend",
    "usually I wake up early and go for a jog",
    "could you repeat the last thing you said",
    "check whether my flight to boston is on time",
    "shuffle my favourite songs on the speaker upstairs",
    "what does the word ubiquitous mean",
    "feed the cat at six and water the plants",
]


def frames_of(path: Path) -> tuple[np.ndarray, dw.Analysis]:
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-ac", "1", "-ar", str(RATE), "-f", "s16le",
                          "pipe:1"], capture_output=True, check=True).stdout
    samples = np.frombuffer(raw, dtype="<i2").astype(np.float64) / 32768.0
    return samples, dw.analyse(samples, RATE)


def kmeans(points: np.ndarray, count: int, rounds: int = 25) -> np.ndarray:
    """Lloyd's k-means from evenly spaced starting frames (deterministic); returns each point's cluster."""
    centres = points[np.linspace(0, len(points) - 1, count).astype(np.int64)].copy()
    for _ in range(rounds):
        distance = np.sum(centres**2, axis=1)[None, :] - 2.0 * points @ centres.T
        label = np.argmin(distance, axis=1)
        for cluster in range(count):
            members = points[label == cluster]
            if len(members):
                centres[cluster] = members.mean(axis=0)
    return label


def main(out: Path = dw.CODEBOOK_PATH) -> None:
    pyworld = dw._world()

    features, envelopes, aperiodicities, log_envs, log_f0 = [], [], [], [], []
    analyses = []
    with tempfile.TemporaryDirectory() as tmp:
        for number, text in enumerate(SENTENCES):
            path = Path(tmp) / f"{number:02d}.wav"
            subprocess.run(["flite", "-voice", VOICE, "-t", text, "-o", str(path)], check=True, capture_output=True)
            samples, analysis = frames_of(path)
            analyses.append((samples, analysis))
            log_envs.append(dw.long_term_log_envelope(analysis))
    mean_envelope = np.mean(log_envs, axis=0)
    for samples, analysis in analyses:
        times = np.arange(len(analysis.f0)) * dw.FRAME_PERIOD_MS / 1000.0
        aperiodicity = pyworld.d4c(samples, analysis.f0, times, RATE, fft_size=dw.FFT_SIZE)
        keep = analysis.speech
        # The target's own clips are matched like any other clip: warp estimated, then normalised.
        warp = dw.warp_estimate(analysis, mean_envelope)
        features.append(dw.match_features(analysis, RATE, warp)[keep])
        envelopes.append(pyworld.code_spectral_envelope(analysis.envelope, RATE, dw.ENVELOPE_DIMS)[keep])
        aperiodicities.append(pyworld.code_aperiodicity(aperiodicity, RATE)[keep])
        log_f0.append(np.log(analysis.f0[analysis.f0 > 0]))
    # Cluster the frames: every entry is the mean of a few similar target frames, so the
    # nearest-neighbour search at ingest runs over CODEBOOK_SIZE entries, not every frame.
    features, envelopes, aperiodicities = (np.concatenate(part) for part in (features, envelopes, aperiodicities))
    label = kmeans(features.astype(np.float64), CODEBOOK_SIZE)
    used = [cluster for cluster in range(CODEBOOK_SIZE) if np.any(label == cluster)]
    features, envelopes, aperiodicities = (
        np.stack([part[label == cluster].mean(axis=0) for cluster in used])
        for part in (features, envelopes, aperiodicities))
    all_f0 = np.concatenate(log_f0)
    low, median, high = np.percentile(all_f0, [25, 50, 75])
    np.savez_compressed(
        out,
        features=features.astype(np.float16),
        envelope=envelopes.astype(np.float16),
        aperiodicity=aperiodicities.astype(np.float16),
        mean_envelope=mean_envelope.astype(np.float32),
        f0_median=np.float32(np.exp(median)),
        f0_spread=np.float32((high - low) / 1.349),
        voice=np.str_(f"flite {VOICE}"),
    )
    print(f"{out}: {len(features)} entries from {len(label)} frames of {len(SENTENCES)} sentences, "
          f"target median F0 {np.exp(median):.0f} Hz, {out.stat().st_size // 1024} KiB")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else dw.CODEBOOK_PATH)
