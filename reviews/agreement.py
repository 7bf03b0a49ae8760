"""Agreement between independent transcriptions of one clip: pure functions, text in, figures out.

Normalisation (the same for every figure, documented in the README):
1. numbers become words with num2words in the clip's language ("10" -> "ten", "3rd" -> "third",
   "1,500" -> "one thousand, five hundred"), so "10" and "ten" are the same word;
2. everything is lower-cased (Unicode casefold);
3. apostrophes are dropped ("don't" -> "dont"), every other punctuation or symbol character
   becomes a space, and runs of spaces collapse to one.

WER and CER come from jiwer. Both are normalised by the reference's length, so they are not
symmetric; the pairwise figure is the mean of both directions, so no transcription is "the
reference". Label agreement across a project is Krippendorff's alpha (nominal), per label
group, from the ``krippendorff`` package.
"""

import re
import unicodedata
from collections import Counter
from itertools import combinations

import jiwer
import krippendorff
import numpy as np
from num2words import num2words

NORMALISATION = "num2words+casefold+strip-punctuation"
_ORDINAL = re.compile(r"\b(\d+)(st|nd|rd|th)\b", re.IGNORECASE)
_NUMBER = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?")
_APOSTROPHES = {"'", "\u2019", "\u02bc"}


def _language(locale: str) -> str:
    """num2words' language code for a locale ("en-US" -> "en"); English where it has none."""
    code = (locale or "en").replace("-", "_")
    for candidate in (code, code.split("_")[0].lower()):
        try:
            num2words(1, lang=candidate)
        except NotImplementedError:
            continue
        return candidate
    return "en"


def text_normalise(text: str, *, locale: str = "en") -> str:
    """Bring a transcription to the form the agreement figures compare (see the module docstring)."""
    lang = _language(locale)
    text = _ORDINAL.sub(lambda m: f" {num2words(int(m.group(1)), lang=lang, to='ordinal')} ", text or "")
    text = _NUMBER.sub(lambda m: f" {num2words(m.group(0).replace(',', ''), lang=lang)} ", text)
    text = text.casefold()
    out = []
    for char in text:
        if char in _APOSTROPHES:
            continue
        category = unicodedata.category(char)
        out.append(" " if category[0] in "PSZ" or char.isspace() else char)
    return " ".join("".join(out).split())


def _rate(measure, a: str, b: str) -> float:
    if not a and not b:
        return 0.0
    if not a or not b:
        return 1.0  # one said something, the other nothing: wholly different
    return (measure(a, b) + measure(b, a)) / 2


def pair_wer(a: str, b: str) -> float:
    """Symmetric word error rate of two normalised texts."""
    return _rate(jiwer.wer, a, b)


def pair_cer(a: str, b: str) -> float:
    """Symmetric character error rate of two normalised texts."""
    return _rate(jiwer.cer, a, b)


def _label_key(labels: dict, group: str) -> tuple:
    return tuple(sorted((labels or {}).get(group) or []))


def clip_agreement(*, texts: list[str], labels: list[dict], groups: list[str], locale: str,
                   threshold: float) -> dict:
    """Figures for one clip's transcriptions, the consensus pick and whether a person must decide.

    The consensus text is the transcription closest (least summed WER) to all the others; its
    labels are, per group, the set most transcribers chose. A clip needs adjudication when its
    text agreement (1 - mean pairwise WER) is below ``threshold`` or a label group has no majority.
    """
    normalised = [text_normalise(t, locale=locale) for t in texts]
    pairs = []
    for i, j in combinations(range(len(texts)), 2):
        pairs.append({"a": i, "b": j, "wer": round(pair_wer(normalised[i], normalised[j]), 4),
                      "cer": round(pair_cer(normalised[i], normalised[j]), 4)})
    mean_wer = sum(p["wer"] for p in pairs) / len(pairs) if pairs else 0.0
    mean_cer = sum(p["cer"] for p in pairs) / len(pairs) if pairs else 0.0
    label_agreement, majority_labels, no_majority = {}, {}, []
    for group in groups:
        keys = [_label_key(chosen, group) for chosen in labels]
        agreeing = sum(1 for i, j in combinations(range(len(keys)), 2) if keys[i] == keys[j])
        label_agreement[group] = round(agreeing / len(pairs), 4) if pairs else 1.0
        (top, count), *rest = Counter(keys).most_common() or [((), 0)]
        if count * 2 > len(keys):
            if top:
                majority_labels[group] = list(top)
        else:
            no_majority.append(group)
    distance = [sum(p["wer"] for p in pairs if i in (p["a"], p["b"])) for i in range(len(texts))]
    consensus = min(range(len(texts)), key=lambda i: (distance[i], i)) if texts else None
    score = max(0.0, 1.0 - mean_wer)
    return {
        "normalisation": NORMALISATION, "transcriptions": len(texts), "wer": round(mean_wer, 4),
        "cer": round(mean_cer, 4), "pairs": pairs, "labels": label_agreement, "score": round(score, 4),
        "threshold": threshold, "labels_without_majority": no_majority,
        "decision": "adjudication" if score < threshold or no_majority else "consensus",
        "consensus_index": consensus, "consensus_labels": majority_labels,
    }


def label_alpha(*, units: list[list[dict]], groups: list[str]) -> dict[str, float | None]:
    """Krippendorff's alpha (nominal) per label group over many clips.

    ``units`` holds, per clip, the labels of each of its transcriptions. Each distinct set of
    labels in a group is one nominal value; a clip's transcriptions fill the coder rows in
    order (alpha needs no fixed coders). None where alpha is undefined (fewer than two clips
    with two transcriptions, or one value only).
    """
    units = [unit for unit in units if len(unit) >= 2]
    result: dict[str, float | None] = {}
    if len(units) < 2:
        return {group: None for group in groups}
    coders = max(len(unit) for unit in units)
    for group in groups:
        codes: dict[tuple, int] = {}
        matrix = np.full((coders, len(units)), np.nan)
        for column, unit in enumerate(units):
            for row, chosen in enumerate(unit):
                matrix[row, column] = codes.setdefault(_label_key(chosen, group), len(codes))
        if len(codes) < 2:
            result[group] = None
            continue
        value = krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal")
        result[group] = None if np.isnan(value) else round(float(value), 4)
    return result
