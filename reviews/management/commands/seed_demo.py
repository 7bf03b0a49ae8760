"""Seed the demo: users, roles, a label schema, a project and real clips. Idempotent."""

import base64
import os
from decimal import Decimal
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from reviews import permissions
from reviews.labels import label_schema_create
from reviews.models import Clip, LabelGroup, LabelSchema, Project, ServiceToken

DEMO_CLIPS = Path(__file__).resolve().parents[2] / "fixtures" / "demo_clips"
# (username, role, env var, demo default). Defaults are for the local demo only.
DEMO_USERS = [
    ("alice", permissions.REVIEWER, "DEMO_ALICE_PASSWORD", "alice-demo-pass"),
    ("bob", permissions.REVIEWER, "DEMO_BOB_PASSWORD", "bob-demo-pass"),
    ("sam", permissions.SUPERVISOR, "DEMO_SAM_PASSWORD", "sam-demo-pass"),
    ("ada", "admin", "DEMO_ADA_PASSWORD", "ada-demo-pass"),
    ("cleo", permissions.CHECKER, "DEMO_CLEO_PASSWORD", "cleo-demo-pass"),
]
DEMO_TOKEN_ENV, DEMO_TOKEN_DEFAULT = "DEMO_INGEST_TOKEN", "demo-ingest-token-not-for-production"
# Supervisors and admins need a second factor: the demo gives sam and ada a known TOTP
# secret (hex, as django-otp stores it) so the demo can be tried without enrolling.
DEMO_TOTP_ENV, DEMO_TOTP_DEFAULT = "DEMO_TOTP_KEY", "3132333435363738393031323334353637383930"
DEMO_SCHEMA = [
    # (key, name, kind, required, [(label key, label name)])
    ("issues", "What applies", LabelGroup.Kind.MULTI, False, [
        ("wake-word-false-accept", "Wake word false accept"),
        ("unintelligible", "Unintelligible"),
        ("background-speech", "Background speech"),
        ("contains-personal-information", "Contains personal information"),
        ("distressing", "Distressing"),
    ]),
    ("speaker", "Speaker", LabelGroup.Kind.SINGLE, True, [
        ("adult", "Adult"),
        ("child", "Child"),
        ("unknown", "Can't tell"),
    ]),
]

# Issue 12: the demo asks for segments, so the workspace shows them (a request to the assistant
# often has someone else talking in the room).
DEMO_SEGMENT_SPEAKERS = ["User", "Someone else"]


class Command(BaseCommand):
    help = "Create the demo project, users (alice, bob, sam, ada, cleo), the ingest token and demo clips."

    def handle(self, *args, **options):
        with transaction.atomic():
            users = self._users()
            schema = self._schema()
            # Two of the ten demo clips are gold (manifest columns is_gold, gold_text, gold_labels);
            # at 1 in 4 a reviewer meets them early. Every clip carries a recognizer's draft (asr_text).
            project, _ = Project.objects.get_or_create(slug="demo", defaults={
                "name": "Demo", "label_schema": schema, "gold_rate": Decimal("0.25")})
            if not project.members.filter(pk=users["cleo"].pk).exists():
                # First seed with a checker: every submission goes to cleo's queue (admins may change it).
                Project.objects.filter(pk=project.pk).update(review_mode="all")
            project.members.add(users["alice"], users["bob"], users["cleo"])
            ingest, created = get_user_model().objects.get_or_create(username="ingest")
            if created:
                ingest.set_unusable_password()  # a service account never signs in
                ingest.save()
            token = None
            if not ServiceToken.objects.filter(user=ingest).exists():
                token = permissions.service_token_create(ingest, os.environ.get(DEMO_TOKEN_ENV, DEMO_TOKEN_DEFAULT))
            for username in ("sam", "ada"):
                TOTPDevice.objects.get_or_create(
                    user=users[username], name="demo authenticator",
                    defaults={"key": os.environ.get(DEMO_TOTP_ENV, DEMO_TOTP_DEFAULT), "confirmed": True},
                )
        if not Clip.objects.filter(project=project).exists():
            call_command("ingest_clips", str(DEMO_CLIPS / "manifest.csv"), stdout=self.stdout)
        self.stdout.write("\nDemo logins (defaults are for this local demo only; set the env vars to change):")
        for username, role, env_name, default in DEMO_USERS:
            shown = "(from $" + env_name + ")" if env_name in os.environ else default
            self.stdout.write(f"  {role:<10} {username:<6} password: {shown}")
        shown = "(from $" + DEMO_TOKEN_ENV + ")" if DEMO_TOKEN_ENV in os.environ else DEMO_TOKEN_DEFAULT
        self.stdout.write(f"  ingest service token: {shown}" + ("" if token else " (unchanged)"))
        secret = base64.b32encode(bytes.fromhex(os.environ.get(DEMO_TOTP_ENV, DEMO_TOTP_DEFAULT))).decode()
        self.stdout.write(f"  sam and ada sign in with a second factor: TOTP secret {secret} for an authenticator "
                          "app,\n  or the current code from: .venv/bin/python manage.py demo_totp sam")

    def _users(self) -> dict:
        users = {}
        model = get_user_model()
        for username, role, env_name, default in DEMO_USERS:
            user, created = model.objects.get_or_create(username=username)
            if created:
                user.set_password(os.environ.get(env_name, default))
                if role == "admin":
                    user.is_staff = user.is_superuser = True
                user.save()
                if role != "admin":
                    user.groups.add(permissions.role_group(role))
            users[username] = user
        return users

    def _schema(self) -> LabelSchema:
        schema = LabelSchema.objects.filter(name="Assistant requests").first()
        return schema or label_schema_create(name="Assistant requests", groups=DEMO_SCHEMA,
                                             segment_speakers=DEMO_SEGMENT_SPEAKERS)
