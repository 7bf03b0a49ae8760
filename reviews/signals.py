"""Audit sign-ins, failed sign-ins and sign-outs."""

import time

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import m2m_changed, post_save, pre_save
from django.dispatch import receiver

from . import permissions
from .audit import audit_record
from .models import AuditEvent, Project


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


@receiver(m2m_changed, sender=get_user_model().groups.through)
def _end_sessions_on_role_change(sender, instance, action, reverse, pk_set, **kwargs):
    # Sessions remember roles (middleware.AccessCacheMiddleware): a new role set starts
    # with a new sign-in, so a removed role stops working now, not a minute later. (Deleting
    # a whole group sends no such signal; its members' sessions notice within
    # ACCESS_RECHECK_SECONDS.)
    if not reverse and action in ("post_add", "post_remove", "post_clear"):
        users = [instance]
    elif reverse and action in ("post_add", "post_remove"):
        users = list(get_user_model().objects.filter(pk__in=pk_set or []))
    elif reverse and action == "pre_clear":
        users = list(instance.user_set.all())
    else:
        return
    for user in users:
        permissions.user_sessions_end(user)


@receiver(pre_save, sender=Project)
def _note_mfa_switched_on(sender, instance, **kwargs):
    instance._mfa_switched_on = bool(
        instance.require_reviewer_mfa and instance.pk
        and sender.objects.filter(pk=instance.pk, require_reviewer_mfa=False).exists()
    )


@receiver(post_save, sender=Project)
def _end_sessions_when_mfa_switched_on(sender, instance, **kwargs):
    # Sessions remember whether their user needs a second factor: when a project starts
    # asking for one, its members sign in again and give it.
    if getattr(instance, "_mfa_switched_on", False):
        for user in instance.members.all():
            permissions.user_sessions_end(user)


@receiver(m2m_changed, sender=Project.members.through)
def _end_sessions_on_joining_an_mfa_project(sender, instance, action, reverse, pk_set, **kwargs):
    if action != "post_add":
        return
    if reverse:  # user.review_projects.add(project, ...)
        if Project.objects.filter(pk__in=pk_set or [], require_reviewer_mfa=True).exists():
            permissions.user_sessions_end(instance)
    elif instance.require_reviewer_mfa:
        for user in get_user_model().objects.filter(pk__in=pk_set or []):
            permissions.user_sessions_end(user)


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
