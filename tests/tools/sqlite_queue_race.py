"""The queue race on the embedded SQLite database (run by tests/test_queue_sqlite.py in its own process)."""

import os
import sys
import threading
from collections import Counter

import django

os.environ["DATABASE_URL"] = "sqlite:///" + sys.argv[1]
os.environ["DJANGO_SETTINGS_MODULE"] = "annotator.settings"
os.environ["MEDIA_ROOT"] = sys.argv[1] + "-media"
django.setup()

# Django must be set up before the app's modules can be imported.
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connections  # noqa: E402

from reviews import leases, permissions  # noqa: E402
from reviews.models import Assignment, Clip, LabelSchema, Project  # noqa: E402

call_command("migrate", verbosity=0)
schema = LabelSchema.objects.create(name="s")
project = Project.objects.create(slug="p", name="p", label_schema=schema, transcriptions_per_clip=2)
for i in range(30):
    Clip.objects.create(project=project, recorded_on="2026-11-20", locale="en-US", duration_ms=1000,
                        audio=f"clips/f{i}.mp3", peaks=[])
users = []
for i in range(50):
    user = get_user_model().objects.create_user(f"r{i}")
    user.groups.add(permissions.role_group("reviewer"))
    users.append(user)
project.members.add(*users)
errors, results = [], []
barrier = threading.Barrier(50)


def work(user):
    try:
        barrier.wait()
        results.append(leases.assignment_next(reviewer=user))
    except Exception as exc:  # noqa: BLE001 - reported below, the test asserts there are none
        errors.append(repr(exc))
    finally:
        connections.close_all()


threads = [threading.Thread(target=work, args=(user,)) for user in users]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
per_clip = Counter(a.clip_id for a in Assignment.objects.all())
pairs_unique = len({(a.clip_id, a.reviewer_id) for a in Assignment.objects.all()}) == Assignment.objects.count()
print("errors", len(errors), errors[:2])
print("leased", sum(r is not None for r in results), "max per clip", max(per_clip.values()), "pairs unique",
      pairs_unique)
print("slots match", all(clip.slots_taken == per_clip.get(clip.pk, 0) for clip in Clip.objects.all()))
