"""Every security-relevant action writes exactly one audit event of its kind."""

from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from reviews import leases, lifecycle, services
from reviews.models import AuditEvent, Clip, ReviewerQuota
from tests.helpers import PASSWORD, session_client, speech_bytes, totp_now
from tests.test_admin import submit


@pytest.fixture
def held(project, ingest, alice):
    """alice with a live lease on a clip, through a signed-in client."""
    ingest(2, account_id="ACCT-COVER")
    client = session_client(alice)
    assignment = client.post("/api/v1/assignments/next/").json()
    return client, assignment


def _ingest(ctx):
    ctx["ingest_client"].post("/api/v1/clips/", {
        "audio": SimpleUploadedFile("a.flac", speech_bytes()), "project": "demo", "account_id": "A",
        "recorded_at": "2026-11-20T08:00:00Z", "locale": "en-US"}, format="multipart")


def _login(ctx):
    Client().post("/accounts/login/", {"username": "bob", "password": PASSWORD})


def _login_failed(ctx):
    Client().post("/accounts/login/", {"username": "bob", "password": "wrong"})


def _logout(ctx):
    ctx["bobs"].post("/accounts/logout/")


def _mfa(ctx):
    ctx["sams"].post("/accounts/mfa/", {"token": totp_now(ctx["sam"])})


def _lease(ctx):
    ctx["bobs"].post("/api/v1/assignments/next/")


def _expire(ctx):
    with time_machine.travel(timezone.now() + timedelta(minutes=30)):
        leases.lease_sweep()


def _token(ctx):
    ctx["client"].post(ctx["assignment"]["audio_token_url"])


def _play(ctx):
    ctx["client"].get(ctx["assignment"]["audio_url"], HTTP_X_AUDIO_TOKEN=ctx["token"])


def _draft(ctx):
    ctx["client"].put(f"/api/v1/assignments/{ctx['assignment']['id']}/draft/",
                      {"text": "x", "labels": {}, "version": 0}, format="json")


def _submit(ctx):
    ctx["client"].post(f"/api/v1/assignments/{ctx['assignment']['id']}/submit/",
                       {"text": "x", "labels": {"speaker": ["adult"]}}, format="json")


def _skip(ctx):
    ctx["client"].post(f"/api/v1/assignments/{ctx['assignment']['id']}/skip/", {"reason": "noise"}, format="json")


def _flag(ctx):
    ctx["client"].post(f"/api/v1/assignments/{ctx['assignment']['id']}/flag/", {"reason": "upsetting"},
                       format="json")


def _denied(ctx):
    ctx["bobs"].get(f"/api/v1/assignments/{ctx['assignment']['id']}/")


def _admin_change(ctx):
    submit(ctx["adas"], f"/admin/reviews/project/{ctx['project'].pk}/change/", lease_minutes="12",
           members=[str(ctx["alice"].pk), str(ctx["bob"].pk)])


def _quota_change(ctx):
    quota = ReviewerQuota.objects.get(reviewer=ctx["bob"])
    submit(ctx["adas"], f"/admin/reviews/reviewerquota/{quota.pk}/change/", clips_per_day="9")


def _role_change(ctx):
    reviewer = Group.objects.get(name="reviewer")
    supervisor = Group.objects.get_or_create(name="supervisor")[0]
    submit(ctx["adas"], f"/admin/auth/user/{ctx['bob'].pk}/change/", groups=[str(reviewer.pk), str(supervisor.pk)])


def _opt_out(ctx):
    ctx["ingest_client"].post("/api/v1/subjects/opt-out/", {"account_id": "ACCT-COVER"}, format="json")


def _erase(ctx):
    lifecycle.subject_erase(actor=ctx["ada"], account_id="ACCT-COVER")


def _clip_erase(ctx):
    clip = Clip.objects.order_by("ingested_at").first()
    ctx["adas"].post("/admin/reviews/clip/", {"action": "clips_erase", "_selected_action": [str(clip.pk)],
                                              "post": "yes"})


def _access_report(ctx):
    ctx["ingest_client"].post("/api/v1/subjects/access-report/", {"account_id": "ACCT-COVER"}, format="json")


CASES = {
    "clip.ingest": _ingest, "auth.login": _login, "auth.login_failed": _login_failed, "auth.logout": _logout,
    "auth.mfa": _mfa, "assignment.lease": _lease, "assignment.expire": _expire, "audio.token": _token,
    "audio.play": _play, "draft.save": _draft, "transcription.submit": _submit, "assignment.skip": _skip,
    "clip.flag": _flag, "access.denied": _denied, "admin.change": _admin_change, "quota.change": _quota_change,
    "role.change": _role_change, "subject.opt_out": _opt_out, "subject.erase": _erase,
    "clip.erase": _clip_erase, "subject.access_report": _access_report,
}


# --- Checkers (issue 11): alice's held clip is submitted and cleo (checker) reviews it ---------

def _review_setup(ctx, *, lease: bool = True, adjudicate: bool = False):
    from reviews import permissions, review
    from tests.helpers import make_user

    project = ctx["project"]
    project.review_mode = "off" if adjudicate else "all"
    project.transcriptions_per_clip = 2 if adjudicate else 1
    project.save()
    services.transcription_submit(reviewer=ctx["alice"], assignment_id=ctx["assignment"]["id"],
                                  text="turn on the lights", labels={"speaker": ["adult"]})
    if adjudicate:  # bob writes something else entirely: the clip goes to adjudication
        other = leases.assignment_next(reviewer=ctx["bob"])
        services.transcription_submit(reviewer=ctx["bob"], assignment_id=other.pk, text="play jazz",
                                      labels={"speaker": ["adult"]})
    ctx["cleo"] = make_user("cleo", permissions.CHECKER)
    project.members.add(ctx["cleo"])
    ctx["cleos"] = session_client(ctx["cleo"])
    if lease:
        ctx["review"] = review.review_next(checker=ctx["cleo"])


def _review_lease(ctx):
    ctx["cleos"].post("/api/v1/reviews/next/")


def _review_accept(ctx):
    ctx["cleos"].post(f"/api/v1/reviews/{ctx['review'].pk}/accept/", {"text": "turn off the lights"},
                      format="json")


def _review_reject(ctx):
    ctx["cleos"].post(f"/api/v1/reviews/{ctx['review'].pk}/reject/",
                      {"reason": "Labels wrong", "detail": "It was a child."}, format="json")


def _review_adjudicate(ctx):
    ctx["cleos"].post(f"/api/v1/reviews/{ctx['review'].pk}/adjudicate/",
                      {"text": "turn on the lights", "labels": {"speaker": ["adult"]}}, format="json")


def _review_expire(ctx):
    from reviews import review

    with time_machine.travel(timezone.now() + timedelta(minutes=30)):
        review.review_lease_sweep()


CASES.update({"review.lease": _review_lease, "review.accept": _review_accept, "review.reject": _review_reject,
              "review.adjudicate": _review_adjudicate, "review.expire": _review_expire})
# Work done before the action under test, whose own events are not counted.
SETUP = {"review.lease": lambda ctx: _review_setup(ctx, lease=False), "review.accept": _review_setup,
         "review.reject": _review_setup, "review.expire": _review_setup,
         "review.adjudicate": lambda ctx: _review_setup(ctx, adjudicate=True)}



# --- Gold clips and reviewer quality (issue 11, part 4) ----------------------------------------

def _gold_setup(ctx):
    """bob leases a gold clip (rate 1) and gets it wrong; no minimum yet, so no pause."""
    import json

    from django.contrib.auth import get_user_model

    from reviews.ingest import clip_ingest
    from tests.helpers import speech_bytes

    project = ctx["project"]
    project.gold_rate = 1
    project.min_gold_samples = 1
    project.save()
    clip_ingest(actor=get_user_model().objects.get(username="ingest"), data={
        "audio": speech_bytes(), "project": "demo", "account_id": "ACCT-GOLD", "recorded_at": "2026-11-20T08:00:00Z",
        "locale": "en-US", "is_gold": "true", "gold_text": "turn on the lights",
        "gold_labels": json.dumps({"speaker": ["adult"]})})
    lease = leases.assignment_next(reviewer=ctx["bob"])
    services.transcription_submit(reviewer=ctx["bob"], assignment_id=lease.pk, text="play some jazz",
                                  labels={"speaker": ["child"]})


def _gold_mark(ctx):
    clip = Clip.objects.order_by("ingested_at").first()
    ctx["adas"].post("/admin/reviews/clip/", {"action": "clips_gold", "_selected_action": [str(clip.pk)],
                                              "post": "yes", f"gold_{clip.pk}": "on",
                                              f"gold_text_{clip.pk}": "call mum"})


def _pause(ctx):
    from reviews import quality

    ctx["project"].min_gold_accuracy = "0.9"
    ctx["project"].save()
    quality.reviewer_pause_check(reviewer=ctx["bob"], project=ctx["project"])


def _pause_setup(ctx):
    from reviews.models import ReviewerPause

    ctx["pause"] = ReviewerPause.objects.create(reviewer=ctx["bob"], project=ctx["project"], paused_at=timezone.now(),
                                                reason="Paused for the test.")


def _unpause(ctx):
    ctx["adas"].post("/admin/reviews/reviewerpause/", {"action": "pauses_lift",
                                                       "_selected_action": [str(ctx["pause"].pk)]})


def _quality(ctx):
    ctx["sam_verified"].get("/console/quality/")


CASES.update({"clip.gold": _gold_mark, "reviewer.pause": _pause, "reviewer.unpause": _unpause,
              "console.quality": _quality})
SETUP.update({"reviewer.pause": _gold_setup, "reviewer.unpause": _pause_setup,
              "console.quality": lambda ctx: ctx.update(sam_verified=session_client(ctx["sam"]))})

@pytest.mark.parametrize("action", list(CASES))
def test_each_action_writes_exactly_one_event_of_its_kind(action, held, project, alice, bob, sam, ada, ingest_client,
                                                          django_capture_on_commit_callbacks):
    client, assignment = held
    ReviewerQuota.objects.create(reviewer=bob, clips_per_day=50)
    ctx = {"client": client, "assignment": assignment, "project": project, "alice": alice, "bob": bob, "sam": sam,
           "ada": ada, "ingest_client": ingest_client, "bobs": session_client(bob), "adas": session_client(ada),
           "sams": session_client(sam, verified=False)}
    ctx["token"] = client.post(assignment["audio_token_url"]).json()["token"]
    SETUP.get(action, lambda ctx: None)(ctx)
    before = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first()
    with django_capture_on_commit_callbacks(execute=True):
        CASES[action](ctx)
    new = list(AuditEvent.objects.filter(id__gt=before).order_by("id"))
    assert [e.action for e in new] == [action], [(e.action, e.details) for e in new]
    event = new[0]
    assert event.at is not None and event.role and event.outcome in ("allowed", "denied")
    assert "ACCT-COVER" not in str(event.details) and PASSWORD not in str(event.details)
