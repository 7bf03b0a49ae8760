"""Audit sign-ins, failed sign-ins and sign-outs."""

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from .audit import audit_record
from .models import AuditEvent


@receiver(user_logged_in)
def _logged_in(sender, request, user, **kwargs):
    audit_record(actor=user, action="auth.login", object_type="user", object_id=user.pk)


@receiver(user_logged_out)
def _logged_out(sender, request, user, **kwargs):
    if user is not None:
        audit_record(actor=user, action="auth.logout", object_type="user", object_id=user.pk)


@receiver(user_login_failed)
def _login_failed(sender, credentials, request=None, **kwargs):
    # Name the account only if it exists: a mistyped "username" may be a password.
    username = credentials.get("username") or ""
    user = get_user_model().objects.filter(username=username).first() if username else None
    audit_record(
        actor=None, actor_name=user.get_username() if user else "", action="auth.login_failed",
        outcome=AuditEvent.Outcome.DENIED, object_type="user", object_id=user.pk if user else "",
        details={"known_user": user is not None},
    )
