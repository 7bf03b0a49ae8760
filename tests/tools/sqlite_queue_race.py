"""The queue race on the embedded SQLite database (run by tests/test_queue_sqlite.py in its own process)."""
import os, threading, django
import sys
os.environ["DATABASE_URL"] = "sqlite:///" + sys.argv[1]
os.environ["DJANGO_SETTINGS_MODULE"] = "annotator.settings"
os.environ["MEDIA_ROOT"] = sys.argv[1] + "-media"
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.contrib.auth import get_user_model
from django.db import connections
from reviews import services, permissions
from reviews.models import Clip, Project, LabelSchema, Assignment, ReviewerQuota
from collections import Counter
schema = LabelSchema.objects.create(name="s")
project = Project.objects.create(slug="p", name="p", label_schema=schema, transcriptions_per_clip=2)
for i in range(30):
    Clip.objects.create(project=project, recorded_on="2026-11-20", locale="en-US", duration_ms=1000, audio=f"clips/f{i}.mp3", peaks=[])
users = []
for i in range(50):
    u = get_user_model().objects.create_user(f"r{i}"); u.groups.add(permissions.role_group("reviewer")); users.append(u)
project.members.add(*users)
errors, results = [], []
barrier = threading.Barrier(50)
def work(u):
    try:
        barrier.wait(); results.append(services.assignment_next(reviewer=u))
    except Exception as e: errors.append(repr(e))
    finally: connections.close_all()
ts = [threading.Thread(target=work, args=(u,)) for u in users]
[t.start() for t in ts]; [t.join() for t in ts]
c = Counter(a.clip_id for a in Assignment.objects.all())
print("errors", len(errors), errors[:2]); print("leased", sum(r is not None for r in results), "max per clip", max(c.values()), "pairs unique", len({(a.clip_id,a.reviewer_id) for a in Assignment.objects.all()}) == Assignment.objects.count())
print("slots match", all(cl.slots_taken == c.get(cl.pk, 0) for cl in Clip.objects.all()))
