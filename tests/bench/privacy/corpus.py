"""Synthesize the multi-speaker benchmark corpus from Debian's TTS voices.

Writes tests/bench/out/corpus/<voice>/<nn>.wav and manifest.json; skips files that
already exist, so a second run costs nothing. Needs flite, espeak-ng and festival
(Debian main) and, for the four MBROLA voices, mbrola with mbrola-us1/us2/us3/en1
(Debian non-free; run.sh installs them). A voice whose engine or data is missing is
left out and named on stderr.

No voice here is the target voice of the 'target' presets' codebook
(reviews/disguise_codebook.npz, made by make_codebook.py from flite's kal16): the
benchmark never scores a preset on the voice it maps everyone to.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "out" / "corpus"
MBROLA_DATA = Path("/usr/share/mbrola")

# Assistant-style commands as people say them to a phone or a speaker. The first
# ENROLLMENT_COUNT of each voice enroll the speaker; the rest are verification and
# identification trials and ASR test utterances.
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

# (speaker id, engine, voice). flite's awb, rms and slt and festival's ked are built
# from recordings of four different people (flite's kal16 is the target voice, left
# out), the MBROLA diphone voices from four more; espeak-ng's formant-synthesis
# variants differ in pitch, formants, voicing and accent. One voice per person:
# festival's kal and slt would repeat flite's.
VOICES = [
    ("flite-awb", "flite", "awb"),
    ("flite-rms", "flite", "rms"),
    ("flite-slt", "flite", "slt"),
    ("festival-ked", "festival", "ked_diphone"),
    ("mbrola-us1", "mbrola", "us1"),
    ("mbrola-us2", "mbrola", "us2"),
    ("mbrola-us3", "mbrola", "us3"),
    ("mbrola-en1", "mbrola", "en1"),
    ("espeak-us-m1", "espeak-ng", "en-us+m1"),
    ("espeak-us-f2", "espeak-ng", "en-us+f2"),
    ("espeak-gb-m3", "espeak-ng", "en-gb+m3"),
    ("espeak-scot-f4", "espeak-ng", "en-gb-scotland+f4"),
    ("espeak-rp-m7", "espeak-ng", "en-gb-x-rp+m7"),
    ("espeak-029-f1", "espeak-ng", "en-029+f1"),
    ("espeak-lanc-m2", "espeak-ng", "en-gb-x-gbclan+m2"),
    ("espeak-wmid-f3", "espeak-ng", "en-gb-x-gbcwmd+f3"),
    ("espeak-nyc-m4", "espeak-ng", "en-us-nyc+m4"),
    ("espeak-us-f5", "espeak-ng", "en-us+f5"),
    ("espeak-gb-andy", "espeak-ng", "en-gb+Andy"),
    ("espeak-us-annie", "espeak-ng", "en-us+Annie"),
    ("espeak-rp-denis", "espeak-ng", "en-gb-x-rp+Denis"),
    ("espeak-us-gene", "espeak-ng", "en-us+Gene"),
    ("espeak-scot-michael", "espeak-ng", "en-gb-scotland+Michael"),
    ("espeak-029-belinda", "espeak-ng", "en-029+belinda"),
]


def engine_available(engine: str, voice: str) -> bool:
    """Whether this machine can synthesize ``voice`` with ``engine``."""
    if engine == "flite":
        return shutil.which("flite") is not None
    if engine == "festival":
        return shutil.which("text2wave") is not None and any(Path("/usr/share/festival/voices").glob(f"*/{voice}"))
    if engine == "mbrola":
        return shutil.which("espeak-ng") is not None and shutil.which("mbrola") is not None and \
            (MBROLA_DATA / voice / voice).exists()
    return shutil.which("espeak-ng") is not None


def synthesize(engine: str, voice: str, text: str, path: Path) -> None:
    """Write ``text`` spoken by ``voice`` to the WAV file ``path`` (the engine's own rate)."""
    if engine == "flite":
        args = ["flite", "-voice", voice, "-t", text, "-o", str(path)]
        subprocess.run(args, check=True, capture_output=True, timeout=60)
    elif engine == "festival":
        subprocess.run(["text2wave", "-eval", f"(voice_{voice})", "-o", str(path)], input=text.encode(),
                       check=True, capture_output=True, timeout=60)
    else:
        name = f"mb-{voice}" if engine == "mbrola" else voice
        subprocess.run(["espeak-ng", "-v", name, "-w", str(path), text], check=True, capture_output=True,
                       timeout=60)


def corpus_build(out: Path = OUT) -> dict:
    """Synthesize every available voice x command once and return the manifest."""
    if not shutil.which("flite") or not shutil.which("espeak-ng"):
        sys.exit("flite and espeak-ng are missing: apt-get install flite espeak-ng")
    clips, speakers = [], []
    for speaker, engine, voice in VOICES:
        if not engine_available(engine, voice):
            print(f"corpus: {speaker} left out ({engine} {voice} is not installed)", file=sys.stderr)
            continue
        speakers.append(speaker)
        (out / speaker).mkdir(parents=True, exist_ok=True)
        for index, text in enumerate(COMMANDS):
            path = out / speaker / f"{index:02d}.wav"
            if not path.exists() or path.stat().st_size < 1000:
                synthesize(engine, voice, text, path)
            clips.append({"speaker": speaker, "engine": engine, "index": index, "text": text,
                          "enrollment": index < ENROLLMENT_COUNT, "path": str(path.relative_to(out))})
    manifest = {"clips": clips, "speakers": speakers}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


if __name__ == "__main__":
    result = corpus_build()
    print(f"{len(result['clips'])} clips from {len(result['speakers'])} voices in {OUT}")
