"""The queue under real concurrency on PostgreSQL: no clip over-leased, none twice to one reviewer."""

import threading
from collections import Counter

import pytest
from django.db import connection, connections

from reviews import services
from reviews.models import Assignment, Clip
from tests.conftest import make_user

pytestmark = pytest.mark.django_db(transaction=True)


def make_clips(project, count: int) -> list[Clip]:
    return [
        Clip.objects.create(project=project, recorded_on="2026-11-20", locale="en-US", duration_ms=2000,
                            audio=f"clips/fake-{i}.mp3", peaks=[])
        for i in range(count)
    ]


def run_threads(target, args_list):
    errors, results = [], [None] * len(args_list)
    barrier = threading.Barrier(len(args_list))

    def worker(index, args):
        try:
            barrier.wait()
            results[index] = target(*args)
        except Exception as exc:  # noqa: BLE001 - every error is a test failure, collected below
            errors.append(repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i, a)) for i, a in enumerate(args_list)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread hung (deadlock?)"
    return results, errors


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")
@pytest.mark.parametrize("per_clip", [1, 2])
def test_fifty_reviewers_racing_for_thirty_clips(project, per_clip):
    project.transcriptions_per_clip = per_clip
    project.save()
    make_clips(project, 30)
    reviewers = [make_user(f"reviewer{i}", "reviewer") for i in range(50)]
    project.members.add(*reviewers)

    results, errors = run_threads(lambda r: services.assignment_next(reviewer=r), [(r,) for r in reviewers])

    assert errors == []
    leased = [a for a in results if a is not None]
    assert len(leased) == min(50, 30 * per_clip)
    per_clip_counts = Counter(a.clip_id for a in Assignment.objects.all())
    assert max(per_clip_counts.values()) <= per_clip
    assert len({(a.clip_id, a.reviewer_id) for a in Assignment.objects.all()}) == Assignment.objects.count()
    for clip in Clip.objects.all():
        assert clip.slots_taken == per_clip_counts.get(clip.pk, 0)
