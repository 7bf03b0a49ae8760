"""One registry of error codes and one builder of error bodies (reviews/errors.py)."""

import json
import re
from pathlib import Path

import pytest
from django.utils import timezone

from reviews.errors import ERROR_CODES, AudioGone, DomainError, QuotaExceeded, json_error

REVIEWS = Path(__file__).resolve().parent.parent / "reviews"
# Every way the app names an error code in its source: code="x", json_error("x"), QuotaExceeded("x", ...)
# and the class attribute ``code = "x"`` of a DomainError subclass.
CODE_PATTERNS = (r'\bcode="([a-z_]+)"', r'json_error\(\s*"([a-z_]+)"', r'QuotaExceeded\(\s*"([a-z_]+)"',
                 r'^\s+code = "([a-z_]+)"$')


def codes_in_source() -> set[str]:
    found = set()
    for path in REVIEWS.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        text = path.read_text()
        for pattern in CODE_PATTERNS:
            for code in re.findall(pattern, text, flags=re.MULTILINE):
                found.add(f"quota_{code}" if pattern.startswith("QuotaExceeded") else code)
    return found


def test_every_code_the_app_raises_is_registered_with_its_status():
    missing = codes_in_source() - set(ERROR_CODES)
    assert not missing, f"register these in reviews/errors.py ERROR_CODES: {sorted(missing)}"


def test_the_audio_codes_ingest_maps_agree_with_the_registry():
    from reviews.ingest import AUDIO_STATUS

    assert {code: ERROR_CODES[code][0] for code in AUDIO_STATUS} == AUDIO_STATUS


def test_one_code_per_meaning_for_audio_that_is_gone():
    assert "audio_unavailable" not in ERROR_CODES and ERROR_CODES["audio_gone"][0] == 410
    assert AudioGone().status == 410 and AudioGone().code == "audio_gone"


def test_json_error_carries_status_detail_fields_and_retry_after():
    response = json_error("locked_out", detail="Try again in 15 minutes.", retry_after=900)
    assert (response.status_code, response["Retry-After"]) == (429, "900")
    assert json.loads(response.content) == {"code": "locked_out", "detail": "Try again in 15 minutes."}
    invalid = json_error("invalid_metadata", fields={"recorded_at": "Impossible date."})
    assert invalid.status_code == 400 and json.loads(invalid.content)["fields"] == {"recorded_at": "Impossible date."}


def test_a_quota_refusal_carries_its_wait_like_drfs_throttled():
    resets_at = timezone.now() + timezone.timedelta(seconds=120)
    response = QuotaExceeded("clips_per_day", "Enough for today.", resets_at).response()
    assert response.status_code == 429 and 110 <= int(response["Retry-After"]) <= 120
    body = json.loads(response.content)
    assert body["code"] == "quota_clips_per_day" and body["resets_at"]


@pytest.mark.parametrize("code", sorted(ERROR_CODES))
def test_each_registered_code_answers_with_its_own_status(code):
    status, detail = ERROR_CODES[code]
    error = DomainError(code=code)
    assert (error.status, error.detail) == (status, detail)
