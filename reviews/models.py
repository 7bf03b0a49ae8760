"""Data and constraints of the annotator. No customer PII is ever stored here."""

import uuid
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q


def disguise_preset_validate(name: str) -> None:
    from .disguise import PRESETS

    if name and name not in PRESETS:
        raise ValidationError(f"Unknown preset; choose one of: {', '.join(sorted(PRESETS))}.")


# Presets a reviewer picks from when skipping (one keypress instead of typing a reason);
# "Other" with free text is always offered by the page, so it is not stored here.
DEFAULT_SKIP_REASONS = "Cannot hear clearly\nNot speech\nWrong language"
SKIP_REASONS_MAX = 8  # digit keys 1-8 pick them; the page adds "Other" as the ninth
SKIP_REASON_MAX_LENGTH = 100


REVIEW_MODES = [("off", "off"), ("sample", "a sampled share"), ("all", "all")]
DEFAULT_REJECT_REASONS = "Words missing or wrong\nLabels wrong\nShould have been skipped"


def skip_reasons_validate(text: str) -> None:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    if len(lines) > SKIP_REASONS_MAX:
        raise ValidationError(f"At most {SKIP_REASONS_MAX} reasons.")
    if any(len(line) > SKIP_REASON_MAX_LENGTH for line in lines):
        raise ValidationError(f"Each reason at most {SKIP_REASON_MAX_LENGTH} characters.")


class SubjectOptOut(models.Model):
    """A subject (by pseudonym) who asked that their recordings not be reviewed."""

    subject_key = models.CharField(max_length=64, unique=True)
    opted_out_at = models.DateTimeField()


# Issue 12: segments (start, end, speaker, optional text) when a schema names its speakers.
SEGMENT_SPEAKERS_MAX = 9
SEGMENT_SPEAKER_MAX_LENGTH = 50
MAX_TEXT = 5000  # characters of a transcription, a draft or a checker's correction


def segment_speakers_validate(text: str) -> None:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    if len(lines) > SEGMENT_SPEAKERS_MAX:
        raise ValidationError(f"At most {SEGMENT_SPEAKERS_MAX} speakers.")
    if any(len(line) > SEGMENT_SPEAKER_MAX_LENGTH for line in lines):
        raise ValidationError(f"Each speaker at most {SEGMENT_SPEAKER_MAX_LENGTH} characters.")
    if len(set(lines)) != len(lines):
        raise ValidationError("Each speaker once.")


class LabelSchema(models.Model):
    name = models.CharField(max_length=100, unique=True)
    segment_speakers = models.TextField(
        blank=True, default="", validators=[segment_speakers_validate],
        help_text=f"To ask reviewers for segments (start, end, speaker, optional text), the speakers to choose "
                  f"from, one per line (at most {SEGMENT_SPEAKERS_MAX}, e.g. Agent and Customer). Empty: no segments.")

    def __str__(self) -> str:
        return self.name

    def speaker_choices(self) -> list[str]:
        """The segment speakers, in order, without blanks or repeats; empty when segments are off."""
        seen: list[str] = []
        for line in (self.segment_speakers or "").splitlines():
            line = line.strip()
            if line and line not in seen:
                seen.append(line)
        return seen[:SEGMENT_SPEAKERS_MAX]


class LabelGroup(models.Model):
    class Kind(models.TextChoices):
        MULTI = "multi", "several may be ticked"
        SINGLE = "single", "exactly one"

    schema = models.ForeignKey(LabelSchema, on_delete=models.CASCADE, related_name="groups")
    key = models.SlugField(max_length=50)
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.MULTI)
    required = models.BooleanField(default=False)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        constraints = [models.UniqueConstraint(fields=["schema", "key"], name="labelgroup_key_unique")]

    def __str__(self) -> str:
        return f"{self.schema}: {self.name}"


class Label(models.Model):
    group = models.ForeignKey(LabelGroup, on_delete=models.CASCADE, related_name="labels")
    key = models.SlugField(max_length=50)
    name = models.CharField(max_length=100)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        constraints = [models.UniqueConstraint(fields=["group", "key"], name="label_key_unique")]

    def __str__(self) -> str:
        return self.name


class Project(models.Model):
    slug = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=100)
    label_schema = models.ForeignKey(LabelSchema, on_delete=models.PROTECT, related_name="projects")
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="review_projects")
    transcriptions_per_clip = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(10)],
        help_text="Independent transcriptions each clip needs, always by different reviewers.")
    lease_minutes = models.PositiveSmallIntegerField(
        default=10, validators=[MinValueValidator(1), MaxValueValidator(240)],
        help_text="How long a reviewer holds a clip; activity extends it.")
    daily_clip_limit = models.PositiveIntegerField(
        null=True, blank=True, help_text="Clips leased per day across all reviewers; empty means no limit.")
    sampling_rate = models.DecimalField(
        max_digits=5, decimal_places=4, default=Decimal("1"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("1"))],
        help_text="Share of offered clips that may enter review (0.02 = 2%). Clips not sampled are refused at "
                  "ingest and never stored.")
    disguise_preset = models.CharField(
        max_length=40, blank=True, validators=[disguise_preset_validate],
        help_text="Voice disguise preset (see docs/privacy-benchmark.md); empty uses the site default.")
    require_reviewer_mfa = models.BooleanField(
        default=False, help_text="Reviewers of this project must use two-factor sign-in.")
    keep_transcripts_after_audio_purge = models.BooleanField(
        default=True, help_text="When retention deletes a clip's audio, keep its transcripts.")
    skip_reasons = models.TextField(
        blank=True, default=DEFAULT_SKIP_REASONS, validators=[skip_reasons_validate],
        help_text=f"Preset reasons offered when a reviewer skips a clip, one per line (at most "
                  f"{SKIP_REASONS_MAX}). The page always adds \"Other\" with free text.")
    # Gold clips (issue 11): clips with a known answer, served among the others at this rate.
    gold_rate = models.DecimalField(
        max_digits=5, decimal_places=4, default=Decimal("0.05"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("1"))],
        help_text="Share of leases that serve a gold clip when one is left for the reviewer (0.05 = 1 in 20).")
    min_gold_accuracy = models.DecimalField(
        max_digits=5, decimal_places=4, null=True, blank=True,
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("1"))],
        help_text="A reviewer whose gold accuracy falls below this (0.80 = 80%) is paused on this project "
                  "until an admin lifts it; empty means never.")
    min_gold_samples = models.PositiveSmallIntegerField(
        default=5, validators=[MinValueValidator(1)],
        help_text="Gold clips a reviewer must have done before their accuracy can pause them.")
    # Second pass and agreement (issue 11, parts 2 and 3).
    review_mode = models.CharField(
        max_length=10, choices=REVIEW_MODES, default="off",
        help_text="Which submitted transcriptions a checker reviews: none, a random share, or all.")
    review_rate = models.DecimalField(
        max_digits=5, decimal_places=4, default=Decimal("0.1"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("1"))],
        help_text="With review \"sample\": the share of submissions checked (0.1 = 1 in 10).")
    reject_reasons = models.TextField(
        blank=True, default=DEFAULT_REJECT_REASONS, validators=[skip_reasons_validate],
        help_text=f"Preset reasons a checker picks when rejecting, one per line (at most {SKIP_REASONS_MAX}). "
                  f"The page always adds \"Other\" with free text.")
    agreement_threshold = models.DecimalField(
        max_digits=5, decimal_places=4, default=Decimal("0.8"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("1"))],
        help_text="With several transcriptions per clip: below this text agreement (1 - mean pairwise WER) "
                  "a checker adjudicates; at or above it the consensus is taken automatically.")
    # Issue 12: shown to reviewers in the workspace, rendered and sanitized by reviews/guidelines.py.
    guidelines = models.TextField(
        blank=True, default="",
        help_text="Transcription guidelines shown to this project's reviewers in the workspace, in Markdown "
                  "(headings, lists, emphasis, links). Raw HTML and images are not shown.")

    def __str__(self) -> str:
        return self.name

    def skip_reason_choices(self) -> list[str]:
        """The preset skip reasons, in order, without blanks or repeats."""
        seen: list[str] = []
        for line in (self.skip_reasons or "").splitlines():
            line = line.strip()
            if line and line not in seen:
                seen.append(line)
        return seen[:SKIP_REASONS_MAX]

    def reject_reason_choices(self) -> list[str]:
        """The preset reject reasons, in order, without blanks or repeats."""
        seen: list[str] = []
        for line in (self.reject_reasons or "").splitlines():
            line = line.strip()
            if line and line not in seen:
                seen.append(line)
        return seen[:SKIP_REASONS_MAX]


class Clip(models.Model):
    """A de-identified, voice-disguised recording; only the disguised audio is kept."""

    class Status(models.TextChoices):
        OPEN = "open"
        DONE = "done"
        FLAGGED = "flagged"
        PURGED = "purged"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="clips")
    # HMAC-SHA256 of the account id under PSEUDONYM_KEY: links clips for opt-out and
    # erasure only; the key is never in the database.
    subject_key = models.CharField(max_length=64, null=True, blank=True, db_index=True)
    recorded_on = models.DateField()
    locale = models.CharField(max_length=16)
    duration_ms = models.PositiveIntegerField()
    audio = models.FileField(upload_to="clips/", max_length=200)
    peaks = models.JSONField(default=list)
    # Issue 12: a small log-mel magnitude image of the disguised audio, computed at ingest
    # ({"bands", "columns", "data": base64 of uint8, column after column}); {} when none.
    spectrogram = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    # The subject opted out: the clip is in no queue and cannot be heard until they opt in again.
    withheld = models.BooleanField(default=False)
    # Live leases plus submitted transcriptions: a clip is offered while this is
    # below the project's transcriptions_per_clip.
    slots_taken = models.PositiveSmallIntegerField(default=0)
    transcriptions_done = models.PositiveSmallIntegerField(default=0)
    ingested_at = models.DateTimeField(auto_now_add=True)
    # The production recognizer's hypothesis (issue 11): content, like the audio (never logged,
    # never audited, cleared with the audio).
    asr_text = models.TextField(blank=True, default="")
    asr_confidence = models.FloatField(null=True, blank=True,
                                       validators=[MinValueValidator(0.0), MaxValueValidator(1.0)])
    # A gold clip has a known answer; it is never consumed (never "done") and each reviewer
    # gets it at most once. Nothing about it reaches the reviewer.
    is_gold = models.BooleanField(default=False)
    gold_text = models.TextField(blank=True, default="")
    gold_labels = models.JSONField(default=dict, blank=True)
    # The text the project keeps (issue 11, part 3): one transcription's, the consensus of
    # several, or a checker's adjudication; ``agreement`` holds the figures (no text).
    final_text = models.TextField(blank=True, default="")
    final_labels = models.JSONField(default=dict, blank=True)
    final_source = models.CharField(max_length=12, blank=True, default="",
                                    choices=[("consensus", "consensus"), ("adjudicated", "adjudicated")])
    agreement = models.JSONField(default=dict, blank=True)
    adjudication = models.CharField(max_length=10, blank=True, default="",
                                    choices=[("pending", "pending"), ("leased", "leased"), ("done", "done")])

    class Meta:
        indexes = [
            models.Index(fields=["project", "status", "ingested_at"], name="clip_queue_idx"),
            # The queue walks open clips oldest first and stops at the first free one,
            # instead of sorting every open clip on every "next" (tests/bench/scale.py).
            models.Index(fields=["ingested_at", "id"], condition=Q(status="open", withheld=False),
                         name="clip_open_queue_idx"),
            models.Index(fields=["project", "ingested_at"], condition=Q(is_gold=True), name="clip_gold_idx"),
        ]
        permissions = [("review_clip", "May hear and transcribe this clip (granted per live lease)")]

    def __str__(self) -> str:
        return f"clip {self.id}"


class Assignment(models.Model):
    """One reviewer's lease on one clip, and what became of it."""

    class Status(models.TextChoices):
        LIVE = "live"
        SUBMITTED = "submitted"
        SKIPPED = "skipped"
        FLAGGED = "flagged"
        EXPIRED = "expired"
        REVOKED = "revoked"

    # Statuses that mean "this reviewer has had this clip" and bar a second lease.
    HOLDING = (Status.LIVE, Status.SUBMITTED, Status.SKIPPED, Status.FLAGGED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    clip = models.ForeignKey(Clip, on_delete=models.CASCADE, related_name="assignments")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="assignments")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.LIVE)
    leased_at = models.DateTimeField()
    lease_expires_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=500, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["clip", "reviewer"],
                condition=Q(status__in=["live", "submitted", "skipped", "flagged"]),
                name="assignment_once_per_reviewer",
            ),
        ]
        indexes = [
            models.Index(fields=["reviewer", "status"], name="assignment_reviewer_idx"),
            models.Index(fields=["status", "lease_expires_at"], name="assignment_expiry_idx"),
        ]


class Draft(models.Model):
    assignment = models.OneToOneField(Assignment, on_delete=models.CASCADE, related_name="draft")
    text = models.TextField(blank=True)
    labels = models.JSONField(default=list)
    segments = models.JSONField(default=list, blank=True)  # issue 12: see reviews/segments.py
    version = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)


class Revision(models.Model):
    """Every saved draft and the submitted text, kept in order."""

    class Kind(models.TextChoices):
        DRAFT = "draft"
        SUBMIT = "submit"

    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="revisions")
    version = models.PositiveIntegerField()
    kind = models.CharField(max_length=10, choices=Kind.choices)
    text = models.TextField(blank=True)
    labels = models.JSONField(default=dict)
    segments = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["assignment", "version"]
        constraints = [models.UniqueConstraint(fields=["assignment", "version", "kind"], name="revision_once")]


class Transcription(models.Model):
    assignment = models.OneToOneField(Assignment, on_delete=models.CASCADE, related_name="transcription")
    clip = models.ForeignKey(Clip, on_delete=models.CASCADE, related_name="transcriptions")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="transcriptions")
    text = models.TextField()
    labels = models.JSONField(default=list)
    # Issue 12: [{start_ms, end_ms, speaker, text}], sorted, validated by reviews/segments.py.
    segments = models.JSONField(default=list, blank=True)
    submitted_at = models.DateTimeField()

    class DraftSource(models.TextChoices):
        BLANK = "blank", "typed from scratch"
        ASR = "asr", "corrected from the recognizer's draft"

    # Issue 11: where the text started, the word error rate of the recognizer's hypothesis
    # against the submitted text, and for a gold clip the scores against its reference.
    draft_source = models.CharField(max_length=10, choices=DraftSource.choices, blank=True, default="")
    asr_wer = models.FloatField(null=True, blank=True)
    gold_wer = models.FloatField(null=True, blank=True)
    gold_label_accuracy = models.FloatField(null=True, blank=True)
    # Second pass (issue 11, part 2): "" when not sampled for review.
    review_status = models.CharField(max_length=10, blank=True, default="", choices=[
        ("pending", "pending"), ("in_review", "in review"), ("accepted", "accepted"), ("edited", "edited"),
        ("rejected", "rejected")])

    class Meta:
        # The checkers' queue walks pending submissions oldest first.
        indexes = [models.Index(fields=["submitted_at", "id"], condition=Q(review_status="pending"),
                                name="transcription_review_idx")]


class Escalation(models.Model):
    """A clip a reviewer flagged as distressing, waiting for a supervisor."""

    class Status(models.TextChoices):
        OPEN = "open"
        TAKEN = "taken"
        CLOSED = "closed"

    clip = models.ForeignKey(Clip, on_delete=models.CASCADE, related_name="escalations")
    assignment = models.OneToOneField(Assignment, on_delete=models.CASCADE, related_name="escalation")
    flagged_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reason = models.CharField(max_length=500)
    created_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    taken_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="+")
    taken_at = models.DateTimeField(null=True, blank=True)
    action_taken = models.TextField(blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["status", "created_at"], name="escalation_queue_idx")]


class QuotaDefaults(models.Model):
    """Site-wide quota defaults (one row); a reviewer's own quota overrides field by field."""

    clips_per_day = models.PositiveIntegerField(default=100)
    plays_per_clip = models.PositiveIntegerField(default=6)
    live_assignments = models.PositiveSmallIntegerField(default=1, validators=[MinValueValidator(1)])
    flagged_per_day = models.PositiveSmallIntegerField(
        default=3, help_text="After flagging this many clips in a day a reviewer gets no more clips that day.")
    work_start = models.TimeField(null=True, blank=True, help_text="Working hours start (empty: any time).")
    work_end = models.TimeField(null=True, blank=True)

    class Meta:
        verbose_name = verbose_name_plural = "quota defaults"

    def __str__(self) -> str:
        return "Quota defaults"


class ReviewerQuota(models.Model):
    """One reviewer's limits; an empty field falls back to the defaults."""

    reviewer = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="quota")
    clips_per_day = models.PositiveIntegerField(null=True, blank=True)
    plays_per_clip = models.PositiveIntegerField(null=True, blank=True)
    live_assignments = models.PositiveSmallIntegerField(null=True, blank=True, validators=[MinValueValidator(1)])
    flagged_per_day = models.PositiveSmallIntegerField(null=True, blank=True)
    work_start = models.TimeField(null=True, blank=True)
    work_end = models.TimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Quota of {self.reviewer}"


class QuotaCounter(models.Model):
    """A use count for one scope (e.g. one reviewer's leases on one day), raised only by a
    conditional UPDATE so concurrent requests can never pass the limit."""

    scope = models.CharField(max_length=120, unique=True)
    count = models.PositiveIntegerField(default=0)
    day = models.DateField(null=True, blank=True, db_index=True)


class ServiceToken(models.Model):
    """An ingest service's API token; only its SHA-256 is stored."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="service_token")
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)


class AudioTokenUse(models.Model):
    """The nonce of an audio token that has been spent. A unique row, inserted in the
    play's transaction, makes a token single-use across every app server: a replay or a
    parallel burst finds the row (or waits on the first insert) and is refused."""

    nonce = models.CharField(max_length=32, unique=True)
    used_at = models.DateTimeField(db_index=True)


class UserSession(models.Model):
    """Which sessions belong to whom, so logout and deactivation can end them all."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    session_key = models.CharField(max_length=40, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)


class AuditEvent(models.Model):
    """One security-relevant action, allowed or denied. Append-only, hash-chained."""

    class Outcome(models.TextChoices):
        ALLOWED = "allowed"
        DENIED = "denied"

    at = models.DateTimeField(db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False,
        related_name="+", db_index=False,  # audit_actor_idx (actor, at) serves every lookup by actor
    )
    actor_name = models.CharField(max_length=150, blank=True)
    role = models.CharField(max_length=20, blank=True)
    action = models.CharField(max_length=40)
    object_type = models.CharField(max_length=40, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    clip_id = models.UUIDField(null=True, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=200, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    details = models.JSONField(default=dict, blank=True)
    # Unique (Meta.constraints): two events can never claim the same predecessor, so the chain
    # cannot fork.
    prev_hash = models.CharField(max_length=64)
    # Which AUDIT_CHAIN_KEY sealed ``hash`` (HMAC-SHA256); empty only for the unkeyed
    # SHA-256 events written before migration 0010, which a keyed anchor event closes.
    # The database default lets a raw INSERT leave it out; on PostgreSQL a check (0010) then
    # refuses the row, so only pre-0010 rows can be unkeyed.
    key_id = models.CharField(max_length=16, blank=True, default="", db_default="")
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["id"]
        # Constraints rather than unique=True, which on PostgreSQL adds a second, LIKE-pattern
        # index to each hash column that no query uses: two more index writes per event and
        # about 1.9 GB at 10 million events (migration 0019).
        constraints = [
            models.UniqueConstraint(fields=["prev_hash"], name="reviews_auditevent_prev_hash_key"),
            models.UniqueConstraint(fields=["hash"], name="reviews_auditevent_hash_key"),
        ]
        indexes = [
            models.Index(fields=["actor", "at"], name="audit_actor_idx"),
            models.Index(fields=["clip_id", "at"], name="audit_clip_idx"),
            models.Index(fields=["action", "at"], name="audit_action_idx"),
        ]

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise PermissionError("audit events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("audit events are append-only")


class AuditVerification(models.Model):
    """The outcome of one run of ``verify_audit``, for the console's chain status."""

    verified_at = models.DateTimeField()
    ok = models.BooleanField()
    events_checked = models.PositiveBigIntegerField()
    first_broken_id = models.BigIntegerField(null=True, blank=True)
    detail = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-verified_at"]


class ReviewerPause(models.Model):
    """A reviewer stopped from leasing on one project, because their gold accuracy fell below
    the project's minimum. Active until an admin lifts it; both are audited."""

    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="pauses")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="pauses")
    paused_at = models.DateTimeField()
    reason = models.CharField(max_length=300)
    accuracy = models.FloatField(null=True, blank=True)
    threshold = models.DecimalField(max_digits=5, decimal_places=4, null=True, blank=True)
    gold_count = models.PositiveIntegerField(default=0)
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="+")

    class Meta:
        ordering = ["-paused_at"]
        constraints = [
            models.UniqueConstraint(fields=["reviewer", "project"], condition=Q(lifted_at__isnull=True),
                                    name="reviewerpause_one_active"),
        ]

    def __str__(self) -> str:
        return f"Pause of {self.reviewer} on {self.project}"


class Review(models.Model):
    """A checker's lease on a submitted transcription (kind "check") or on a clip whose
    transcriptions disagree (kind "adjudicate"), and the decision taken."""

    class Kind(models.TextChoices):
        CHECK = "check"
        ADJUDICATE = "adjudicate"

    class Status(models.TextChoices):
        LIVE = "live"
        ACCEPTED = "accepted"
        EDITED = "edited"
        REJECTED = "rejected"
        ADJUDICATED = "adjudicated"
        EXPIRED = "expired"

    DECIDED = (Status.ACCEPTED, Status.EDITED, Status.REJECTED, Status.ADJUDICATED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.CHECK)
    clip = models.ForeignKey(Clip, on_delete=models.CASCADE, related_name="reviews")
    transcription = models.ForeignKey(Transcription, null=True, blank=True, on_delete=models.CASCADE,
                                      related_name="reviews")
    checker = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reviews_done")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.LIVE)
    leased_at = models.DateTimeField()
    lease_expires_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=100, blank=True)  # a preset, or "Other"
    detail = models.TextField(blank=True)  # the checker's written feedback
    edited_text = models.TextField(blank=True)
    edited_labels = models.JSONField(default=dict, blank=True)
    diff = models.JSONField(default=list, blank=True)  # [[op, words], ...] from the transcriber's text

    class Meta:
        constraints = [
            # Belt and braces for the queue's row locks: one live lease and one decision per item.
            models.UniqueConstraint(fields=["transcription"], condition=Q(status="live"), name="review_one_live"),
            models.UniqueConstraint(fields=["transcription"],
                                    condition=Q(status__in=["accepted", "edited", "rejected"]),
                                    name="review_decided_once"),
            models.UniqueConstraint(fields=["clip"], condition=Q(kind="adjudicate", status="live"),
                                    name="review_one_live_adjudication"),
        ]
        indexes = [
            models.Index(fields=["checker", "status"], name="review_checker_idx"),
            models.Index(fields=["status", "lease_expires_at"], name="review_expiry_idx"),
        ]
