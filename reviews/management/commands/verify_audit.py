"""Check the audit chain (keyed seals); print or check a signed checkpoint that catches a cut tail."""

import hashlib
import hmac
import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from reviews.audit import chain_verify
from reviews.models import AuditEvent, AuditVerification


def checkpoint_mac(count: int, head_id: int, head_hash: str) -> str:
    message = f"{count}:{head_id}:{head_hash}".encode()
    return hmac.new(settings.AUDIT_CHECKPOINT_KEY.encode(), message, hashlib.sha256).hexdigest()


class Command(BaseCommand):
    help = (
        "Verify the audit trail's chain (each event sealed with HMAC-SHA256 under AUDIT_CHAIN_KEY) and report the "
        "first broken or forged event. --checkpoint prints a signed "
        "checkpoint (count and head hash, HMAC with AUDIT_CHECKPOINT_KEY) to keep outside the database; "
        "--against FILE checks the trail still holds what a kept checkpoint saw (catches a cut tail)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--checkpoint", action="store_true", help="print a signed checkpoint as JSON")
        parser.add_argument("--against", metavar="FILE", help="a checkpoint printed earlier")

    def handle(self, *args, **options):
        result = chain_verify()
        problems = [] if result.ok else [result.detail]
        if options["against"]:
            problems += self._against(Path(options["against"]))
        AuditVerification.objects.create(
            verified_at=timezone.now(), ok=not problems, events_checked=result.count,
            first_broken_id=result.first_broken_id, detail="; ".join(problems)[:300],
        )
        if problems:
            raise CommandError("Audit trail BROKEN: " + "; ".join(problems))
        self.stdout.write(f"Audit trail intact: {result.count} events, head {result.head_hash[:16]}…")
        if options["checkpoint"]:
            checkpoint = {"count": result.count, "head_id": result.head_id, "head_hash": result.head_hash,
                          "at": timezone.now().isoformat()}
            checkpoint["mac"] = checkpoint_mac(result.count, result.head_id or 0, result.head_hash)
            self.stdout.write(json.dumps(checkpoint))

    def _against(self, path: Path) -> list[str]:
        try:
            kept = json.loads(path.read_text())
            count, head_id, head_hash = int(kept["count"]), int(kept["head_id"] or 0), str(kept["head_hash"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CommandError(f"Cannot read the checkpoint: {exc}") from exc
        if not hmac.compare_digest(checkpoint_mac(count, head_id, head_hash), str(kept.get("mac", ""))):
            return ["the checkpoint's signature does not match (forged or another key)"]
        if count == 0:
            return []
        head = AuditEvent.objects.filter(pk=head_id).values_list("hash", flat=True).first()
        if head is None:
            return [f"event {head_id}, the checkpoint's head, is gone (the tail was cut)"]
        if head != head_hash:
            return [f"event {head_id} differs from the checkpoint"]
        if AuditEvent.objects.filter(pk__lte=head_id).count() != count:
            return [f"the checkpoint saw {count} events up to {head_id}; the trail holds a different number"]
        return []
