"""Synthesize the multi-speaker benchmark corpus from Debian's TTS voices.

Writes tests/bench/out/corpus/<voice>/<nn>.wav and manifest.json; skips files that
already exist, so a second run costs nothing. Needs the espeak-ng and flite binaries.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "out" / "corpus"

# Assistant-style commands. The first ENROLLMENT_COUNT of each voice enroll the
# speaker; the rest are verification trials and ASR test utterances.
COMMANDS = [
    "set a timer for ten minutes",
    "what is the weather like tomorrow morning",
    "play some relaxing music in the kitchen",
    "turn off the lights in the living room",
    "call my sister on her mobile phone",
    "remind me to buy milk on the way home",
    "how long does it take to drive to the airport",
    "add eggs and bread to my shopping list",
    "wake me up at seven thirty tomorrow",
    "turn the volume down a little bit",
    "send a message to john saying i am running late",
    "what time does the pharmacy close today",
    "read me the latest news headlines",
    "set the thermostat to twenty one degrees",
    "cancel my alarm for saturday morning",
]
ENROLLMENT_COUNT = 3

# (speaker id, engine, voice). flite's voices are built from recordings of four
# different people; espeak-ng's variants differ in pitch, formants and accent.
VOICES = [
    ("flite-kal16", "flite", "kal16"),
    ("flite-awb", "flite", "awb"),
    ("flite-rms", "flite", "rms"),
    ("flite-slt", "flite", "slt"),
    ("espeak-us-m1", "espeak-ng", "en-us+m1"),
    ("espeak-us-f2", "espeak-ng", "en-us+f2"),
    ("espeak-gb-m3", "espeak-ng", "en-gb+m3"),
    ("espeak-scot-f4", "espeak-ng", "en-gb-scotland+f4"),
    ("espeak-rp-m7", "espeak-ng", "en-gb-x-rp+m7"),
    ("espeak-029-f1", "espeak-ng", "en-029+f1"),
]


def synthesize(engine: str, voice: str, text: str, path: Path) -> None:
    if engine == "flite":
        args = ["flite", "-voice", voice, "-t", text, "-o", str(path)]
    else:
        args = ["espeak-ng", "-v", voice, "-w", str(path), text]
    subprocess.run(args, check=True, capture_output=True, timeout=60)


def corpus_build(out: Path = OUT) -> dict:
    """Synthesize every voice x command once and return the manifest."""
    for tool in ("flite", "espeak-ng"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing: apt-get install flite espeak-ng")
    clips = []
    for speaker, engine, voice in VOICES:
        (out / speaker).mkdir(parents=True, exist_ok=True)
        for index, text in enumerate(COMMANDS):
            path = out / speaker / f"{index:02d}.wav"
            if not path.exists() or path.stat().st_size < 1000:
                synthesize(engine, voice, text, path)
            clips.append({"speaker": speaker, "engine": engine, "index": index, "text": text,
                          "enrollment": index < ENROLLMENT_COUNT, "path": str(path.relative_to(out))})
    manifest = {"clips": clips, "speakers": [v[0] for v in VOICES]}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


if __name__ == "__main__":
    result = corpus_build()
    print(f"{len(result['clips'])} clips from {len(result['speakers'])} voices in {OUT}")
