"""Domain exceptions. Raised in the domain, turned into HTTP answers in one handler each
for the API (``api.exception_handler``) and the pages (``middleware.AccessDeniedMiddleware``)."""


class DomainError(Exception):
    status = 400
    code = "invalid"
    detail = "The request is not valid."

    def __init__(self, detail: str | None = None, *, code: str | None = None, status: int | None = None,
                 fields: dict | None = None, denied: dict | None = None):
        super().__init__(detail or self.detail)
        self.detail = detail or self.detail
        self.code = code or self.code
        self.status = status or self.status
        self.fields = fields or {}
        # When set, the handler writes an ``access.denied`` event with these keys
        # (attempted, object_type, object_id, reason, clip_id) after the rollback.
        self.denied = denied


class InvalidInput(DomainError):
    status = 400
    code = "invalid"
    detail = "The request is not valid."


class NotFoundDenied(DomainError):
    """The object does not exist or is not the caller's: both answer the same 404."""

    status = 404
    code = "not_found"
    detail = "Not found."

    def __init__(self, *, object_type: str, object_id: str, attempted: str, reason: str, clip_id=None):
        super().__init__(denied={
            "object_type": object_type, "object_id": str(object_id)[:64], "attempted": attempted,
            "reason": reason, "clip_id": clip_id,
        })


class LeaseExpired(DomainError):
    status = 409
    code = "lease_expired"
    detail = "Your time on this clip ran out; it went back to the queue. Your text is still on the page."


class StaleVersion(DomainError):
    status = 409
    code = "stale_version"
    detail = "This draft was changed in another tab or window. Reload to see the newer version."


class IngestRefused(DomainError):
    status = 400
    code = "invalid_audio"


class QuotaExceeded(DomainError):
    """A limit is reached: 429 with a stable code, a human message and when it resets."""

    status = 429

    def __init__(self, limit: str, detail: str, resets_at):
        super().__init__(detail, code=f"quota_{limit}", denied={
            "attempted": "quota", "object_type": "quota", "object_id": limit, "reason": f"quota_{limit}",
            "clip_id": None,
        })
        self.limit = limit
        self.resets_at = resets_at
