"""Every error answer in one place: the registry of stable codes, the domain exceptions that
carry a code with its status and headers, and ``json_error()``, the one builder of an error
body. Raised in the domain, turned into HTTP answers by ``api.exception_handler`` (API),
``middleware.AccessDeniedMiddleware`` (pages) and the handlers in ``views`` (404/400/500)."""

from django.http import JsonResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

# code -> (HTTP status, what people read). One code per meaning; the detail is a default that a
# raise may make more precise. Details are translated (lazily: in the language of the request that
# reads them); codes never are. tests/test_errors.py keeps every code the app uses in here.
ERROR_CODES: dict[str, tuple[int, str]] = {
    # Any request
    "invalid": (400, _("The request is not valid.")),
    "bad_request": (400, _("The request could not be understood.")),
    "parse_error": (400, _("The request body could not be parsed.")),
    "not_authenticated": (401, _("Sign in first.")),
    "authentication_failed": (401, _("The credentials were not accepted.")),
    "csrf_failed": (403, _("Reload the page and try again.")),
    "mfa_required": (403, _("Confirm your sign-in with your authenticator code first.")),
    "not_found": (404, _("Not found.")),
    "method_not_allowed": (405, _("This method is not allowed here.")),
    "not_acceptable": (406, _("The requested response format is not available.")),
    "request_too_large": (413, _("The request body is too large.")),
    "unsupported_media_type": (415, _("This content type is not accepted here.")),
    "throttled": (429, _("Too many requests; try again shortly.")),
    "server_error": (500, _("Something went wrong on our side.")),
    "database_unavailable": (503, _("The service is briefly unavailable. Your saved work is safe; try again shortly.")),
    # Signing in
    "invalid_credentials": (401, _("Wrong username or password.")),
    "mfa_invalid": (401, _("A valid authenticator code is required.")),
    "locked_out": (429, _("Too many failed sign-ins. Try again later.")),
    # Ingest and subjects
    "invalid_metadata": (400, _("The metadata is missing or malformed.")),
    "unknown_project": (400, _("No such project.")),
    "invalid_account_id": (400, _("An account id is required.")),
    "subject_opted_out": (422, _("This subject opted out of review; the clip was not stored.")),
    "not_sampled": (200, _("Not selected for review; nothing was stored.")),
    "file_too_large": (413, _("The file is too large.")),
    "not_audio": (415, _("The file is not audio or is corrupt.")),
    "unsupported_codec": (415, _("This audio codec is not supported.")),
    "empty_audio": (422, _("The audio has no sound in it.")),
    "audio_too_long": (422, _("The audio is too long.")),
    "corrupt_audio": (422, _("The audio is truncated or corrupt.")),
    "audio_timeout": (422, _("The audio took too long to process.")),
    "encode_failed": (422, _("The audio could not be encoded.")),
    "invalid_audio": (400, _("The audio is not valid.")),
    # Reviewing
    "invalid_labels": (400, _("Some labels are not valid.")),
    "invalid_text": (400, _("The transcription must be text.")),
    "invalid_version": (400, _("A version number is required.")),
    "invalid_segments": (400, _("A segment is not valid.")),
    "invalid_reason": (400, _("Say briefly why.")),
    "empty_transcription": (400, _("Type what you hear, or choose labels that say why you cannot.")),
    "lease_expired": (409, _("Your time on this clip ran out; it went back to the queue. "
                           "Your text is still on the page.")),
    "assignment_withdrawn": (409, _("This clip was withdrawn from review. Your text is still on the page.")),
    "stale_version": (409, _("This draft was changed in another tab or window. Reload to see the newer version.")),
    "audio_gone": (410, _("This clip's audio is no longer available.")),
    # Checking (issue 11)
    "invalid_detail": (400, _("Say what was wrong (at most 1000 characters).")),
    "wrong_review_kind": (400, _("This review does not take that decision.")),
    # Quotas (QuotaExceeded makes "quota_" + the limit's name)
    "quota_clips_per_day": (429, _("You have reached today's number of clips.")),
    "quota_project_clips_per_day": (429, _("This project has reviewed all it may review today.")),
    "quota_plays_per_clip": (429, _("This clip's audio has been loaded as often as allowed.")),
    "quota_live_assignments": (429, _("Finish or skip the clip you hold before taking another.")),
    "quota_outside_working_hours": (429, _("Reviewing is open during your working hours only.")),
    "quota_flagged_per_day": (429, _("You have flagged enough distressing clips for one day.")),
    "quota_escalation_plays": (429, _("You have played this escalated clip as often as allowed.")),
    # Gold clips and reviewer quality (issue 11): a pause below the project's minimum gold accuracy
    "reviewer_paused": (429, _("Your work on this project is paused; an admin can lift the pause.")),
    "invalid_gold": (400, _("The gold reference is not valid.")),
    # Console and admin
    "invalid_filters": (400, _("Some filters are not valid.")),
    "invalid_cursor": (400, _("The page cursor is not valid.")),
    "invalid_action_taken": (400, _("Say what was done.")),
    "escalation_taken": (409, _("Another supervisor has taken this escalation.")),
    "escalation_not_taken": (409, _("Take the escalation first.")),
    "escalation_closed": (409, _("This escalation is closed.")),
    "not_admin": (400, _("Only an admin may do this.")),
    "weak_key": (400, _("The key is too short.")),
}


def json_error(code: str, *, detail: str | None = None, status: int | None = None, fields: dict | None = None,
               retry_after: int | None = None, **extra) -> JsonResponse:
    """Answer one error as JSON ``{code, detail[, fields][, extra...]}`` with its status and Retry-After."""
    registered_status, registered_detail = ERROR_CODES.get(code, (400, _("The request is not valid.")))
    body = {"code": code, "detail": detail or registered_detail}
    if fields:
        body["fields"] = fields
    body.update(extra)
    response = JsonResponse(body, status=status or registered_status)
    if retry_after is not None:
        response["Retry-After"] = str(max(1, int(retry_after)))
    return response


class DomainError(Exception):
    """An error with a registered code. Its status and default detail come from ERROR_CODES;
    ``retry_after`` (seconds) becomes the Retry-After header, as DRF's ``Throttled.wait`` does."""

    code = "invalid"
    retry_after: int | None = None

    def __init__(self, detail: str | None = None, *, code: str | None = None, status: int | None = None,
                 fields: dict | None = None, denied: dict | None = None, retry_after: int | None = None):
        self.code = code or self.code
        registered_status, registered_detail = ERROR_CODES.get(self.code, (400, ERROR_CODES["invalid"][1]))
        self.detail = detail or registered_detail
        super().__init__(self.detail)
        self.status = status or registered_status
        self.fields = fields or {}
        self.retry_after = retry_after if retry_after is not None else self.retry_after
        # When set, the handler writes an ``access.denied`` event with these keys
        # (attempted, object_type, object_id, reason, clip_id) after the rollback.
        self.denied = denied

    def response(self) -> JsonResponse:
        return json_error(self.code, detail=self.detail, status=self.status, fields=self.fields,
                          retry_after=self.retry_after, **self.extra())

    def extra(self) -> dict:
        """More keys for the body (QuotaExceeded adds resets_at)."""
        return {}


class InvalidInput(DomainError):
    code = "invalid"


class NotFoundDenied(DomainError):
    """The object does not exist or is not the caller's: both answer the same 404."""

    code = "not_found"

    def __init__(self, *, object_type: str, object_id: str, attempted: str, reason: str, clip_id=None):
        super().__init__(denied={
            "object_type": object_type, "object_id": str(object_id)[:64], "attempted": attempted,
            "reason": reason, "clip_id": clip_id,
        })


class LeaseExpired(DomainError):
    code = "lease_expired"


class StaleVersion(DomainError):
    code = "stale_version"


class IngestRefused(DomainError):
    code = "invalid_audio"


class AudioGone(DomainError):
    """The clip's audio was purged by retention or lost from storage."""

    code = "audio_gone"


class QuotaExceeded(DomainError):
    """A limit is reached: 429 with a stable code, a human message, when it resets and Retry-After."""

    def __init__(self, limit: str, detail: str, resets_at):
        retry_after = max(1, int((resets_at - timezone.now()).total_seconds())) if resets_at else None
        super().__init__(detail, code=f"quota_{limit}", status=429, retry_after=retry_after, denied={
            "attempted": "quota", "object_type": "quota", "object_id": limit, "reason": f"quota_{limit}",
            "clip_id": None,
        })
        self.limit = limit
        self.resets_at = resets_at

    def extra(self) -> dict:
        return {"resets_at": self.resets_at.isoformat() if self.resets_at else None}
