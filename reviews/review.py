"""Second pass and agreement (issue 11, parts 2 and 3): checkers lease submitted
transcriptions (or clips whose transcriptions disagree) exactly as reviewers lease clips,
then accept, edit, reject with feedback or adjudicate. Each use case checks permission,
quota, does the work and audits it in one transaction, as in ``services``.
"""

import difflib
import secrets
import time
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Case, Exists, F, OuterRef, PositiveSmallIntegerField, Value, When
from django.utils import timezone
from django.utils.translation import gettext

from . import agreement, permissions, quotas
from .audit import audit_record
from .errors import InvalidInput, LeaseExpired, NotFoundDenied
from .labels import label_schema_describe, labels_validate
from .models import MAX_TEXT, Assignment, Clip, Project, Review, Transcription

MAX_DETAIL = 1000
OTHER_REASON = "Other"
REVIEW_SUBJECT = "review:{}"
FEEDBACK_LIMIT = 100


# --- Routing a submission (called from services.transcription_submit) -----------------

def transcription_review_status(*, project: Project, clip: Clip) -> str:
    """Decide, as a submission lands, whether a checker is to review it ("pending") or not ("")."""
    if clip.is_gold or project.review_mode == "off":
        return ""  # gold clips are scored against their reference, not reviewed
    if project.review_mode == "all":
        return "pending"
    # A uniform draw per submission; secrets, not random, so no seed makes it predictable.
    return "pending" if secrets.randbelow(10_000) < int(project.review_rate * 10_000) else ""


def transcription_landed(*, clip_id, per_clip: int) -> None:
    """After a submit: with several transcriptions per clip, settle the clip once the last one lands."""
    if per_clip < 2:
        return  # one transcription is its own final text (see clip_final): no work, no queries
    clip = Clip.objects.select_related("project", "project__label_schema").get(pk=clip_id)
    if clip.status == Clip.Status.DONE:
        clip_settle(clip=clip)


# --- Agreement, consensus, adjudication --------------------------------------------------

def _effective(transcription: Transcription, edits: dict) -> tuple[str, dict]:
    """A transcription's text and labels as the project keeps them: the checker's edit if any."""
    edit = edits.get(transcription.pk)
    return (edit.edited_text, edit.edited_labels) if edit else (transcription.text, transcription.labels)


def _standing(clip: Clip) -> list[tuple[str, dict]]:
    """The clip's transcriptions that stand (not rejected), in order, as the project keeps them."""
    items = list(clip.transcriptions.exclude(review_status="rejected").order_by("submitted_at", "id"))
    edits = {review.transcription_id: review for review in
             Review.objects.filter(transcription__in=items, status=Review.Status.EDITED)}
    return [_effective(t, edits) for t in items]


def _group_keys(clip: Clip) -> list[str]:
    return list(clip.project.label_schema.groups.values_list("key", flat=True))


def clip_settle(*, clip: Clip) -> dict:
    """Compute agreement over a finished clip's transcriptions, then keep the consensus or send
    the clip to adjudication. Figures only in ``agreement``; the text goes to ``final_text``."""
    standing = _standing(clip)
    figures = agreement.clip_agreement(
        texts=[text for text, _ in standing], labels=[labels for _, labels in standing], groups=_group_keys(clip),
        locale=clip.locale, threshold=float(clip.project.agreement_threshold))
    update = {"agreement": figures}
    if figures["decision"] == "consensus" and standing:
        update.update(final_text=standing[figures["consensus_index"]][0], final_labels=figures["consensus_labels"],
                      final_source="consensus", adjudication="")
    else:
        update.update(final_text="", final_labels={}, final_source="", adjudication="pending")
    Clip.objects.filter(pk=clip.pk).update(**update)
    return figures


def clip_final(clip: Clip, transcriptions: list[Transcription]) -> dict | None:
    """The text and labels a clip ends with, for the export; None while a person must still decide."""
    if clip.final_source:
        return {"text": clip.final_text, "labels": clip.final_labels, "source": clip.final_source}
    standing = [t for t in transcriptions if t.review_status != "rejected"]
    if len(standing) != 1 or clip.adjudication or standing[0].review_status in ("pending", "in_review"):
        return None
    edit = Review.objects.filter(transcription=standing[0], status=Review.Status.EDITED).first()
    text, labels = _effective(standing[0], {standing[0].pk: edit} if edit else {})
    return {"text": text, "labels": labels, "source": "reviewed" if standing[0].review_status else "single"}


def project_label_alpha(*, project: Project) -> dict[str, float | None]:
    """Krippendorff's alpha per label group over the project's finished, multiply transcribed clips."""
    clips = Clip.objects.filter(project=project, status=Clip.Status.DONE, transcriptions_done__gte=2)
    units: dict = {}
    for clip_id, labels in (Transcription.objects.filter(clip__in=clips).exclude(review_status="rejected")
                            .order_by("clip_id", "submitted_at", "id").values_list("clip_id", "labels")):
        units.setdefault(clip_id, []).append(labels or {})
    groups = list(project.label_schema.groups.values_list("key", flat=True))
    return agreement.label_alpha(units=list(units.values()), groups=groups)


# --- The checker's queue ------------------------------------------------------------------

def _lease_length(project: Project) -> timedelta:
    return timedelta(minutes=project.lease_minutes)


def _review_end(review: Review, status: str, now) -> None:
    """Close a live review lease: the grant goes with it."""
    review.status, review.ended_at = status, now
    review.save(update_fields=["status", "ended_at", "reason", "detail", "edited_text", "edited_labels", "diff"])
    permissions.clip_access_revoke(user_id=review.checker_id, clip_id=review.clip_id)


def review_lease_sweep(*, now=None) -> int:
    """Expire overdue review leases so their items return to the checkers' queue. Returns how many."""
    now = now or timezone.now()
    count = 0
    with transaction.atomic():
        overdue = (Review.objects.select_for_update(skip_locked=True, of=("self",))
                   .filter(status=Review.Status.LIVE, lease_expires_at__lte=now)
                   .order_by("lease_expires_at")[: settings.LEASE_SWEEP_BATCH])
        for review in overdue:
            _review_end(review, Review.Status.EXPIRED, now)
            if review.kind == Review.Kind.CHECK:
                Transcription.objects.filter(pk=review.transcription_id, review_status="in_review").update(
                    review_status="pending")
            else:
                Clip.objects.filter(pk=review.clip_id, adjudication="leased").update(adjudication="pending")
            audit_record(actor=None, actor_name="system", action="review.expire", object_type="review",
                         object_id=review.pk, clip_id=review.clip_id, details={"checker_id": review.checker_id})
            count += 1
    return count


def _first_free(candidates):
    """Lock the first candidate no other checker holds. While every candidate is held by a lease
    in flight, look again after a few milliseconds (up to LEASE_WAIT_SECONDS) instead of calling
    the queue empty; never wait on a row lock (see leases._lease_candidate_pick: waiting
    deadlocked racing reviewers)."""
    deadline = time.monotonic() + settings.LEASE_WAIT_SECONDS
    while True:
        item = candidates.select_for_update(skip_locked=True, of=("self",)).first()
        if item is not None or time.monotonic() >= deadline or not candidates.exists():
            return item
        time.sleep(0.005 + secrets.randbelow(15) / 1000)  # jitter, so racing checkers do not step in time


def _audio_grant(checker, item: Review, session_key: str | None) -> dict:
    return permissions.lease_audio_grant(item, user=checker, session_key=session_key,
                                         subject=REVIEW_SUBJECT.format(item.pk))


def review_next(*, checker, another: bool = False, session_key: str | None = None) -> Review | None:
    """Return the checker's live review, or lease the oldest clip awaiting adjudication, else the
    oldest submission awaiting review. Never the checker's own work, nor a clip they transcribed.
    With the caller's ``session_key`` the answer carries the first audio token (``audio_grant``)."""
    now = timezone.now()
    review_lease_sweep(now=now)
    with transaction.atomic():
        # One "next" at a time per checker: two tabs cannot lease two items at once.
        get_user_model().objects.select_for_update().filter(pk=checker.pk).first()
        live = list(Review.objects.select_related("clip", "clip__project", "clip__project__label_schema",
                                                  "transcription")
                    .filter(checker=checker, status=Review.Status.LIVE, lease_expires_at__gt=now)
                    .order_by("leased_at"))
        if live and not another:
            audit_record(actor=checker, action="review.lease", object_type="review", object_id=live[0].pk,
                         clip_id=live[0].clip_id, details={"kind": live[0].kind, "resumed": True,
                                                           **_audio_grant(checker, live[0], session_key)})
            return live[0]
        # A clip the checker transcribed (or holds, or is already checking) is not theirs to judge,
        # and its object grant must stay single.
        transcribed = Assignment.objects.filter(clip=OuterRef("clip_pk"), reviewer=checker)
        checking = Review.objects.filter(clip=OuterRef("clip_pk"), checker=checker, status=Review.Status.LIVE)
        clips = (Clip.objects.annotate(clip_pk=F("pk"))
                 .filter(project__members=checker, status=Clip.Status.DONE, withheld=False, adjudication="pending")
                 .exclude(Exists(transcribed)).exclude(Exists(checking)).order_by("ingested_at", "id"))
        submissions = (Transcription.objects.annotate(clip_pk=F("clip_id"))
                       .filter(review_status="pending", clip__project__members=checker, clip__withheld=False,
                               clip__status__in=[Clip.Status.OPEN, Clip.Status.DONE])
                       .exclude(reviewer=checker).exclude(Exists(transcribed)).exclude(Exists(checking))
                       .order_by("submitted_at", "id"))
        kind, clip, transcription = None, None, None
        for _attempt in range(5):
            clip = _first_free(clips)
            if clip is not None:
                # Compare-and-set: correct on its own where row locks do not exist (SQLite).
                if Clip.objects.filter(pk=clip.pk, adjudication="pending").update(adjudication="leased"):
                    kind = Review.Kind.ADJUDICATE
                    break
                continue
            transcription = _first_free(submissions)
            if transcription is None:
                return None
            if Transcription.objects.filter(pk=transcription.pk, review_status="pending").update(
                    review_status="in_review"):
                kind, clip = Review.Kind.CHECK, transcription.clip
                break
        else:
            return None
        clip = Clip.objects.select_related("project", "project__label_schema").get(pk=clip.pk)
        quotas.review_lease_take(checker=checker, now=now, live_count=len(live))
        review = Review.objects.create(kind=kind, clip=clip, transcription=transcription, checker=checker,
                                       leased_at=now, lease_expires_at=now + _lease_length(clip.project))
        permissions.clip_access_grant(checker, clip)
        audit_record(actor=checker, action="review.lease", object_type="review", object_id=review.pk,
                     clip_id=clip.pk, details={"kind": kind, **_audio_grant(checker, review, session_key)})
        return review


def _require_live(review: Review, *, checker, attempted: str) -> None:
    if not permissions.review_access_held(checker, review):
        raise LeaseExpired(
            "Your time on this review ran out; it went back to the queue.",
            denied={"attempted": attempted, "object_type": "review", "object_id": str(review.pk),
                    "reason": "lease_ended", "clip_id": review.clip_id})


def _lease_extend(review: Review, now) -> None:
    review.lease_expires_at = now + _lease_length(review.clip.project)
    Review.objects.filter(pk=review.pk).update(lease_expires_at=review.lease_expires_at)


def review_get(*, checker, review_id) -> Review:
    """Return one of the checker's own reviews (any status)."""
    return permissions.review_for_checker(checker, review_id, attempted="review.view")


def review_candidates(review: Review) -> list[dict]:
    """For an adjudication: the standing transcriptions, without who wrote them (judged blind)."""
    if review.kind != Review.Kind.ADJUDICATE:
        return []
    return [{"text": text, "labels": labels} for text, labels in _standing(review.clip)]


# --- Audio ----------------------------------------------------------------------------

def review_audio_token_issue(*, checker, review_id, session_key: str | None) -> permissions.AudioGrant:
    """Sign a short-lived, single-use token for one fetch, bound to user, session and review."""
    now = timezone.now()
    with transaction.atomic():
        review = permissions.review_for_checker(checker, review_id, attempted="audio.token", for_update=True)
        _require_live(review, checker=checker, attempted="audio.token")
        _lease_extend(review, now)
        token = permissions.audio_token_sign(user=checker, session_key=session_key,
                                             subject=REVIEW_SUBJECT.format(review.pk))
        audit_record(actor=checker, action="audio.token", object_type="review", object_id=review.pk,
                     clip_id=review.clip_id)
    return permissions.AudioGrant(token=token, lease_expires_at=review.lease_expires_at)


def review_audio_open(*, checker, review_id, token: str, session_key: str | None) -> Clip:
    """Spend the token, check lease, grant and plays quota for one fetch, audit it, return the clip."""
    with transaction.atomic():
        review = permissions.review_for_checker(checker, review_id, attempted="audio.play")
        refused = permissions.audio_token_consume(token, user=checker, session_key=session_key,
                                                  subject=REVIEW_SUBJECT.format(review.pk))
        if refused:
            raise NotFoundDenied(object_type="review", object_id=review.pk, attempted="audio.play", reason=refused,
                                 clip_id=review.clip_id)
        if not permissions.review_access_held(checker, review):
            raise NotFoundDenied(object_type="review", object_id=review.pk, attempted="audio.play",
                                 reason="lease_ended", clip_id=review.clip_id)
        quotas.play_take(reviewer=checker, assignment=review)
        # Same action as a reviewer's play, so every listener of a clip shows in one place
        # (the clip history, the subject's access report); object_type tells them apart.
        audit_record(actor=checker, action="audio.play", object_type="review", object_id=review.pk,
                     clip_id=review.clip_id)
    return review.clip


# --- Decisions --------------------------------------------------------------------------

def _clean_text(text) -> str:
    if not isinstance(text, str) or len(text) > MAX_TEXT:
        message = gettext("Text, at most %(count)d characters.") % {"count": MAX_TEXT}
        raise InvalidInput(message, code="invalid_text", fields={"text": message})
    return text.strip()


def _clean_labels(review: Review, labels) -> dict:
    return labels_validate(label_schema_describe(review.clip.project.label_schema), labels, complete=True)


def text_diff(before: str, after: str) -> list[list[str]]:
    """Word-level changes from ``before`` to ``after``: [["equal"|"delete"|"insert", words], ...]."""
    a, b = before.split(), after.split()
    ops: list[list[str]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if tag in ("equal", "delete", "replace") and i2 > i1:
            ops.append(["equal" if tag == "equal" else "delete", " ".join(a[i1:i2])])
        if tag in ("insert", "replace") and j2 > j1:
            ops.append(["insert", " ".join(b[j1:j2])])
    return ops


def _decided(review_id, *, checker, attempted: str, kind: str) -> tuple[Review, bool]:
    """Lock the review; say whether it is already decided (a retried request), else check it is live."""
    review = permissions.review_for_checker(checker, review_id, attempted=attempted, for_update=True)
    if review.kind != kind:
        raise InvalidInput(gettext("This review does not take that decision."), code="wrong_review_kind")
    if review.status in Review.DECIDED:
        return review, True
    _require_live(review, checker=checker, attempted=attempted)
    return review, False


def review_accept(*, checker, review_id, text: str | None = None, labels=None) -> Review:
    """Accept a transcription, or correct it and accept (the word diff is kept for the transcriber)."""
    now = timezone.now()
    with transaction.atomic():
        review, done = _decided(review_id, checker=checker, attempted="review.accept", kind=Review.Kind.CHECK)
        if done:
            return review
        original = review.transcription
        new_text = original.text if text is None else _clean_text(text)
        new_labels = original.labels if labels is None else _clean_labels(review, labels)
        if not new_text and not new_labels:
            raise InvalidInput(gettext("Keep some text, or labels that say why there is none."),
                               code="empty_transcription", fields={"text": gettext("Required.")})
        edited = new_text != original.text or new_labels != original.labels
        if edited:
            review.edited_text, review.edited_labels = new_text, new_labels
            review.diff = text_diff(original.text, new_text)
        status = Review.Status.EDITED if edited else Review.Status.ACCEPTED
        _review_end(review, status, now)
        Transcription.objects.filter(pk=original.pk).update(review_status=status)
        clip = review.clip
        if edited and clip.status == Clip.Status.DONE and clip.project.transcriptions_per_clip > 1:
            clip_settle(clip=Clip.objects.select_related("project", "project__label_schema").get(pk=clip.pk))
        quotas.review_count(checker=checker, now=now)
        audit_record(actor=checker, action="review.accept", object_type="review", object_id=review.pk,
                     clip_id=review.clip_id, details={"edited": edited, "words_changed": sum(
                         len(words.split()) for op, words in review.diff if op != "equal")})
    return review


def review_reject(*, checker, review_id, reason: str, detail: str = "") -> Review:
    """Reject a transcription with a preset reason and written feedback: the clip's slot reopens
    for a different transcriber, and the original one reads the feedback (never the audio)."""
    reason, detail = (reason or "").strip(), (detail or "").strip()
    if len(detail) > MAX_DETAIL:
        raise InvalidInput(gettext("Feedback at most %(count)d characters.") % {"count": MAX_DETAIL},
                           code="invalid_detail",
                           fields={"detail": gettext("At most %(count)d characters.") % {"count": MAX_DETAIL}})
    now = timezone.now()
    with transaction.atomic():
        review, done = _decided(review_id, checker=checker, attempted="review.reject", kind=Review.Kind.CHECK)
        if done:
            return review
        allowed = review.clip.project.reject_reason_choices() + [OTHER_REASON]
        if reason not in allowed:
            raise InvalidInput(gettext("Choose one of the project's reasons, or Other."), code="invalid_reason",
                               fields={"reason": gettext("One of: %(choices)s") % {"choices": ", ".join(allowed)}})
        if reason == OTHER_REASON and not detail:
            raise InvalidInput(gettext("Say what was wrong."), code="invalid_detail",
                               fields={"detail": gettext("Required with Other.")})
        review.reason, review.detail = reason, detail
        _review_end(review, Review.Status.REJECTED, now)
        Transcription.objects.filter(pk=review.transcription_id).update(review_status="rejected")
        # The slot reopens. The transcriber still holds their (submitted) assignment on this
        # clip, which keeps the clip out of their queue: someone else transcribes it.
        Clip.objects.filter(pk=review.clip_id).update(
            slots_taken=Case(When(slots_taken__gt=0, then=F("slots_taken") - 1), default=F("slots_taken"),
                             output_field=PositiveSmallIntegerField()),
            transcriptions_done=Case(When(transcriptions_done__gt=0, then=F("transcriptions_done") - 1),
                                     default=F("transcriptions_done"), output_field=PositiveSmallIntegerField()),
            status=Case(When(status=Clip.Status.DONE, then=Value(Clip.Status.OPEN)), default=F("status")),
            final_text="", final_labels={}, final_source="", agreement={}, adjudication="",
        )
        # An adjudication in progress on this clip judged a set that no longer stands.
        for other in Review.objects.select_for_update().filter(clip_id=review.clip_id, status=Review.Status.LIVE,
                                                               kind=Review.Kind.ADJUDICATE):
            _review_end(other, Review.Status.EXPIRED, now)
        quotas.review_count(checker=checker, now=now)
        audit_record(actor=checker, action="review.reject", object_type="review", object_id=review.pk,
                     clip_id=review.clip_id, details={"reason": reason if reason != OTHER_REASON else "other",
                                                      "with_detail": bool(detail)})
    return review


def review_adjudicate(*, checker, review_id, text: str, labels) -> Review:
    """Decide the final text and labels of a clip whose transcriptions disagree."""
    now = timezone.now()
    with transaction.atomic():
        review, done = _decided(review_id, checker=checker, attempted="review.adjudicate",
                                kind=Review.Kind.ADJUDICATE)
        if done:
            return review
        text, clean = _clean_text(text), _clean_labels(review, labels)
        if not text and not clean:
            raise InvalidInput(gettext("Write the final text, or labels that say why there is none."),
                               code="empty_transcription", fields={"text": gettext("Required.")})
        candidates = [candidate["text"] for candidate in review_candidates(review)]
        review.edited_text, review.edited_labels = text, clean
        _review_end(review, Review.Status.ADJUDICATED, now)
        Clip.objects.filter(pk=review.clip_id).update(final_text=text, final_labels=clean,
                                                      final_source="adjudicated", adjudication="done")
        quotas.review_count(checker=checker, now=now)
        audit_record(actor=checker, action="review.adjudicate", object_type="review", object_id=review.pk,
                     clip_id=review.clip_id, details={"picked": candidates.index(text) if text in candidates else None})
    return review


# --- The transcriber's side ---------------------------------------------------------------

def feedback_list(*, reviewer) -> list[dict]:
    """What checkers decided about this reviewer's own work, newest first: text and diff, never audio."""
    reviews = (Review.objects.select_related("transcription")
               .filter(kind=Review.Kind.CHECK, transcription__reviewer=reviewer, status__in=Review.DECIDED)
               .order_by("-ended_at")[:FEEDBACK_LIMIT])
    return [{
        "id": str(review.pk), "status": review.status, "decided_at": review.ended_at,
        "submitted_at": review.transcription.submitted_at, "reason": review.reason, "detail": review.detail,
        "text": review.transcription.text, "edited_text": review.edited_text if review.status == "edited" else "",
        "diff": review.diff,
    } for review in reviews]

