"""Where a reviewer loop's Python CPU goes, request by request (issue 15): run in one process
through Django's whole middleware stack, so that the figures are CPU time, not waiting.

    tests/tools/with_postgres.sh .venv/bin/python -m pytest -q -s -p no:cacheprovider tests/bench/request_cpu.py

Prints, for next -> audio bytes (with next's token) -> submit (the loop of loop.py), this process's
CPU per request (``time.process_time``, median of rounds; PostgreSQL's own CPU is not in it),
beside three floors every request pays: a signed-in API request to a URL that does not exist
(sessions, CSRF, authentication, the second-factor and access middleware, the JSON 404), a
signed-in ``GET /api/v1/me/progress/`` (the same plus DRF and two small queries), and
``/healthz`` (no session). Then a cProfile of the loop: the app's own functions and the
framework layers by cumulative CPU per loop (profiled: about twice the real time), and every
function's own CPU. cProfile inflates small, frequent calls (LazyObject reads, django-csp's
policy): time them directly before acting on them.

Django's test client stands in for gunicorn: what it skips (HTTP parsing, the socket) is
gunicorn's share, a fraction of a millisecond a request. Not run by ``make test`` (the
file name does not start with ``test_``).
"""

import cProfile
import pstats
import statistics
import time

import pytest

from reviews.models import Clip, QuotaDefaults
from tests.helpers import session_client

LOOPS = 120  # measured loops (after a warm-up); each round of 20 gives one figure per step
ROUND = 20
SHOWN = ("reviews/", "rest_framework/views.py", "sessions/backends", "contrib/auth/", "django_otp/", "axes/",
         "csp/", "middleware/csrf.py", "middleware/locale.py")


@pytest.fixture
def reviewer_loop(project, ingest, alice):
    [real] = ingest(1)
    # Bulk rows on the one ingested file, as loop.py does; a daily limit that never stops the run.
    Clip.objects.bulk_create([
        Clip(project=project, recorded_on="2026-11-20", locale="en-US", duration_ms=real.duration_ms,
             audio=real.audio.name, peaks=[]) for _ in range(2 * LOOPS + 100)])
    QuotaDefaults.objects.all().delete()
    QuotaDefaults.objects.create(clips_per_day=100_000)
    client = session_client(alice)
    spent: dict[str, list[float]] = {step: [] for step in ("next", "audio", "submit")}

    def timed(step, call):
        started = time.process_time()
        response = call()
        spent[step].append((time.process_time() - started) * 1000)
        assert response.status_code < 400, (step, response.status_code)
        return response

    def one_loop():
        assignment = timed("next", lambda: client.post("/api/v1/assignments/next/")).json()
        url = f"/api/v1/assignments/{assignment['id']}/"
        # The token next's answer carries, as the workspace uses it (the route is a floor below).
        token = assignment["audio_token"]["token"]
        timed("audio", lambda: client.get(url + "audio/", HTTP_X_AUDIO_TOKEN=token))
        timed("submit", lambda: client.post(url + "submit/", {"text": "a", "labels": {"speaker": ["adult"]}},
                                            format="json"))

    return client, one_loop, spent


def _floor(client, path: str, *, status: int) -> float:
    figures = []
    for _ in range(5):
        started = time.process_time()
        for _ in range(ROUND):
            assert client.get(path).status_code == status
        figures.append((time.process_time() - started) * 1000 / ROUND)
    return statistics.median(figures)


def test_cpu_per_request(reviewer_loop, capsys):
    client, one_loop, spent = reviewer_loop
    for _ in range(ROUND):  # warm-up: imports, caches, the audit head
        one_loop()
    for figures in spent.values():
        figures.clear()
    for _ in range(LOOPS):
        one_loop()
    floors = {
        "signed in, unknown API URL (404)": _floor(client, "/api/v1/no-such-thing/", status=404),
        "signed in, GET /api/v1/me/progress/": _floor(client, "/api/v1/me/progress/", status=200),
        "GET /healthz (no session)": _floor(client, "/healthz", status=200),
    }
    profile = cProfile.Profile(time.process_time)  # CPU, not waiting on PostgreSQL
    profile.enable()
    for _ in range(ROUND):
        one_loop()
    profile.disable()

    with capsys.disabled():
        print(f"\nPython CPU per request, in process (median of {LOOPS // ROUND} rounds of {ROUND} loops; "
              "PostgreSQL's CPU not included):")
        total = 0.0
        for step, figures in spent.items():
            rounds = [statistics.mean(figures[i:i + ROUND]) for i in range(0, len(figures), ROUND)]
            total += statistics.median(rounds)
            print(f"  {step:<40} {statistics.median(rounds):6.2f} ms")
        print(f"  {'loop':<40} {total:6.2f} ms")
        print("Floors (what every request pays before and after its view):")
        for name, figure in floors.items():
            print(f"  {name:<40} {figure:6.2f} ms")
        print(f"cProfile of {ROUND} loops, cumulative CPU ms per loop (profiled, about 2x real), "
              "app and framework layers:")
        stats = pstats.Stats(profile)
        rows = []
        for (path, line, name), (_calls, _prim, _tottime, cumtime, _callers) in stats.stats.items():
            if any(part in path for part in SHOWN):
                short = path.split("site-packages/")[-1].replace(str(__file__).rsplit("/tests/", 1)[0] + "/", "")
                rows.append((cumtime * 1000 / ROUND, f"{short}:{line}({name})"))
        for ms, where in sorted(rows, reverse=True)[:40]:
            print(f"  {ms:7.2f}  {where}")
        print(f"cProfile of the same {ROUND} loops, own CPU ms per loop (any module):")
        own = sorted(((tottime * 1000 / ROUND, f"{path.split('site-packages/')[-1]}:{line}({name})")
                      for (path, line, name), (_calls, _prim, tottime, _cum, _callers) in stats.stats.items()),
                     reverse=True)
        for ms, where in own[:30]:
            print(f"  {ms:7.2f}  {where}")
