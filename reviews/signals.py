"""Audit sign-ins, failed sign-ins and sign-outs."""

import time

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver

from . import permissions
from .audit import audit_record
from .models import AuditEvent


@receiver(user_logged_in)
def _logged_in(sender, request, user, **kwargs):
    if request is not None and hasattr(request, "session"):
        request.session["signed_in_at"] = request.session["seen_at"] = time.time()
        request.session.save()
        permissions.user_session_register(user, request.session.session_key)
    audit_record(actor=user, action="auth.login", object_type="user", object_id=user.pk)


@receiver(user_logged_out)
def _logged_out(sender, request, user, **kwargs):
    if user is not None:
        # Signing out anywhere signs out everywhere: every session and audio token ends.
        ended = permissions.user_sessions_end(user)
        audit_record(actor=user, action="auth.logout", object_type="user", object_id=user.pk,
                     details={"sessions_ended": ended})


@receiver(pre_save, sender=get_user_model())
def _note_deactivation(sender, instance, **kwargs):
    instance._deactivated = bool(
        instance.pk and not instance.is_active
        and sender.objects.filter(pk=instance.pk, is_active=True).exists()
    )


@receiver(post_save, sender=get_user_model())
def _end_access_of_deactivated(sender, instance, **kwargs):
    if getattr(instance, "_deactivated", False):
        permissions.user_access_end(instance)


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
