"""Second factor (TOTP through django-otp): enrolment and verification, audited."""

import base64

from django_otp import login as otp_login
from django_otp import match_token
from django_otp.plugins.otp_totp.models import TOTPDevice

from .audit import audit_record
from .models import AuditEvent


def enrolment_for(user) -> dict | None:
    """Return the secret to add to an authenticator app, if the user has no device yet."""
    if TOTPDevice.objects.filter(user=user, confirmed=True).exists():
        return None
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first() or TOTPDevice.objects.create(
        user=user, name="authenticator", confirmed=False
    )
    return {"secret": base64.b32encode(device.bin_key).decode(), "uri": device.config_url}


def mfa_verify(*, request, token: str) -> bool:
    """Check a code against the user's devices (confirming a new one); mark the session verified."""
    user = request.user
    token = "".join(token.split())
    device = match_token(user, token) if token.isdigit() else None
    if device is None:
        pending = TOTPDevice.objects.filter(user=user, confirmed=False).first()
        if pending is not None and token.isdigit() and pending.verify_token(token):
            pending.confirmed = True
            pending.save(update_fields=["confirmed"])
            device = pending
    if device is None:
        audit_record(actor=user, action="auth.mfa", outcome=AuditEvent.Outcome.DENIED, object_type="user",
                     object_id=user.pk)
        return False
    otp_login(request, device)
    audit_record(actor=user, action="auth.mfa", object_type="user", object_id=user.pk)
    return True
