"""Faults under load: the reviewer loop keeps running (bounded, loopback) while its own
throwaway PostgreSQL is restarted, while its connections are killed with
pg_terminate_backend, and while gunicorn workers are SIGKILLed mid-request.

    .venv/bin/python tests/bench/faults.py                                 # all three, 16 reviewers
    .venv/bin/python tests/bench/faults.py --scenarios restart --reviewers 4 --seconds 15   # quick

Clients behave like the page: a step that got no answer or a 5xx is sent again every
0.2 s (submit included: it is idempotent), a 4xx is not. Afterwards: every submit that
was answered 2xx must be in the database, none twice, no clip over-assigned, and the
audit chain must verify. Figures per scenario: what the app answered during the fault
(status, content type, latency), how long after the database came back requests failed,
and the checks. Only the server this script started is ever stopped or signalled.
"""

import argparse
import collections
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from harness import say  # noqa: E402

HANG_SECONDS = 5.0  # an answer slower than this during a fault counts as a hang


def kind_of(answer: harness.Answer) -> str:
    if answer.status == 0:
        return f"no answer ({answer.error})"
    content_type = answer.content_type.split(";")[0] or "-"
    code = ""
    if content_type == "application/json" and answer.status >= 400:
        body = answer.json()
        code = f" {body.get('code')}" if isinstance(body, dict) else ""
    return f"{answer.status} {content_type}{code}"


def window_report(log: harness.LoopLog, start: float, end: float, label: str,
                  expect_json: bool = True) -> list[harness.Record]:
    """Describe the answers to requests in flight between ``start`` and ``end``."""
    inside = [r for r in log.records if r.answer.started <= end and r.answer.started + r.answer.seconds >= start]
    failed = [r for r in inside if r.answer.status not in (200, 201, 204)]
    say(f"  {label}: {len(inside)} requests in flight, {len(failed)} not 2xx")
    kinds = collections.Counter(kind_of(r.answer) for r in failed)
    for kind, count in kinds.most_common():
        latencies = [1000 * r.answer.seconds for r in failed if kind_of(r.answer) == kind]
        say(f"    {count:>5} x {kind:<45} latency p50 {harness.percentile(latencies, 50):7.1f} ms, "
            f"p95 {harness.percentile(latencies, 95):7.1f} ms, max {max(latencies):7.1f} ms")
    hangs = [r for r in inside if r.answer.seconds > HANG_SECONDS]
    say(f"    answers slower than {HANG_SECONDS:g} s: {len(hangs)}"
        + (f" (max {max(r.answer.seconds for r in hangs):.1f} s)" if hangs else ""))
    if not expect_json:
        return failed
    good = [r for r in failed if r.answer.status == 503 and r.answer.content_type.startswith("application/json")
            and isinstance(r.answer.json(), dict) and r.answer.json().get("code") == "database_unavailable"]
    say(f"    JSON 503 database_unavailable: {len(good)} of {len(failed)} failures"
        + ("" if len(good) == len(failed) else "  <- expected all"))
    return failed


def recovery_report(log: harness.LoopLog, back: float, label: str, until: float = float("inf")) -> float:
    """Seconds after ``back`` (and before ``until``) until the last failed request; and the first success."""
    # Requests still in flight at ``until`` (the next fault) belong to that fault.
    after = [r for r in log.records if back <= r.answer.started and r.answer.started + r.answer.seconds < until]
    failures = [r for r in after if r.answer.status not in (200, 201, 204)]
    successes = [r for r in after if r.answer.status in (200, 201, 204)]
    first_ok = min((r.answer.started + r.answer.seconds for r in successes), default=float("nan")) - back
    last_bad = max((r.answer.started + r.answer.seconds for r in failures), default=back) - back
    say(f"  {label}: first 2xx {first_ok:.2f} s after, last failure {last_bad:.2f} s after "
        f"({len(failures)} failures among {len(after)} requests after it)")
    return last_bad


def consistency_report(log: harness.LoopLog) -> bool:
    from django.db import connections

    from reviews.models import Revision, Transcription

    connections.close_all()
    answered = {assignment for _, assignment, _ in log.submitted}
    statuses = collections.Counter(status for _, _, status in log.submitted)
    stored = set(str(a) for a in Transcription.objects.filter(assignment_id__in=answered)
                 .values_list("assignment_id", flat=True))
    lost = answered - stored
    twice = Revision.objects.filter(kind="submit", assignment_id__in=answered).count() - len(stored)
    checks = harness.over_assignment_check(log.leases)
    ok, count, detail = harness.chain_check()
    say(f"  submits answered 2xx: {len(answered)} ({statuses.get(201, 0)} x 201 created, {statuses.get(200, 0)} x 200 "
        f"repeated submit); in the database: {len(stored)}; lost: {len(lost)}; stored twice: {max(0, twice)}")
    problems = sum(checks.values())
    say(f"  over-assignment checks: {'all 0' if not problems else checks}")
    say(f"  audit chain: {'verifies' if ok else 'BROKEN: ' + detail} ({count:,} events)")
    return not lost and twice <= 0 and not problems and ok


def start_load(clients, names, seconds: float) -> tuple[harness.LoopLog, threading.Thread]:
    log = harness.LoopLog()
    thread = threading.Thread(target=harness.load_run, args=(clients, names),
                              kwargs={"seconds": seconds, "max_loops": 100_000, "retry": True, "log": log},
                              daemon=True)
    thread.start()
    return log, thread


def loops_summary(log: harness.LoopLog, seconds: float) -> None:
    statuses = collections.Counter(kind_of(r.answer) for r in log.records)
    say(f"  loops completed: {log.loops} in ~{seconds:.0f} s; answers: "
        + ", ".join(f"{k}: {v}" for k, v in statuses.most_common(6)))


# --- Scenarios --------------------------------------------------------------------------------

def scenario_restart(pg, clients, names, args) -> bool:
    say(f"\n=== PostgreSQL restart: {len(clients)} reviewers loop {args.seconds:g} s; at {args.before:g} s "
        f"`pg_ctl stop -m fast`, {args.outage:g} s down, `pg_ctl start`")
    log, thread = start_load(clients, names, args.seconds)
    time.sleep(args.before)
    down = time.monotonic()
    pg.stop("fast")
    stopped = time.monotonic()
    time.sleep(args.outage)
    pg.start()
    back = time.monotonic()
    say(f"  database stop took {stopped - down:.2f} s; down {back - stopped:.2f} s (until pg_ctl start returned)")
    thread.join()
    loops_summary(log, args.seconds)
    window_report(log, down, back, "during the outage")
    recovered = recovery_report(log, back, "after the database returned")
    say(f"  recovery within 10 s: {'yes' if recovered <= 10 else 'NO'}")
    return consistency_report(log) and recovered <= 10


def scenario_terminate(pg, clients, names, args) -> bool:
    say(f"\n=== pg_terminate_backend on the app's connections: {len(clients)} reviewers loop {args.seconds:g} s; "
        f"terminate at {args.before:g} s and again 4 s later")
    log, thread = start_load(clients, names, args.seconds)
    time.sleep(args.before)
    kills = []
    for _ in range(2):
        at = time.monotonic()
        kills.append((at, pg.terminate_app_backends()))
        time.sleep(4)
    thread.join()
    loops_summary(log, args.seconds)
    worst = 0.0
    for number, (at, count) in enumerate(kills, 1):
        say(f"  kill {number}: {count} backends terminated")
        window_report(log, at - 0.001, at + 1.0, f"kill {number}, requests in flight within 1 s of it")
        until = kills[number][0] if number < len(kills) else float("inf")
        worst = max(worst, recovery_report(log, at, f"kill {number}", until))
    return consistency_report(log) and worst <= 10


def connection_owner(server, client_port: int) -> int | None:
    """The gunicorn worker holding the server end of our TCP connection (from /proc)."""
    wanted = f"0100007F:{server.port:04X} 0100007F:{client_port:04X}"
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if f"{fields[1]} {fields[2]}" == wanted:
            inode = fields[9]
    if inode is None:
        return None
    for pid in server.worker_pids():
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                if os.readlink(fd) == f"socket:[{inode}]":
                    return pid
        except OSError:
            continue
    return None


def scenario_worker_kill(server, clients, names, victim: harness.Client, args) -> bool:
    say(f"\n=== SIGKILL gunicorn workers mid-request: {len(clients)} reviewers loop {args.seconds:g} s; a victim "
        "reviewer's request is killed in its worker, then 3 random busy workers are killed 2 s apart")
    log, thread = start_load(clients, names, args.seconds)
    time.sleep(args.before)
    ok = True
    # The victim holds a clip and has an autosaved draft.
    answer = victim.request("POST", "/api/v1/assignments/next/", {})
    assignment = answer.json()["id"]
    saved = victim.request("PUT", f"/api/v1/assignments/{assignment}/draft/",
                           {"text": "half of what I heard", "labels": {}, "version": 0})
    say(f"  victim: lease {answer.status}, draft autosave {saved.status} (version {saved.json().get('version')})")
    # The victim's next autosave is in a worker when the worker dies: the request line,
    # headers and half of the JSON body are sent, so the worker is inside the view, reading.
    body = b'{"text": "half of what I heard, and the rest", "labels": {}, "version": 1}'
    raw = socket.create_connection((harness.HOST, server.port), timeout=10)
    cookies = "; ".join(f"{k}={v}" for k, v in victim.cookies.items())
    raw.sendall((f"PUT /api/v1/assignments/{assignment}/draft/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nCookie: {cookies}\r\n"
                 f"X-CSRFToken: {victim.csrf or victim.cookies.get('csrftoken', '')}\r\n\r\n").encode() + body[:30])
    owner = None
    for _ in range(50):
        owner = connection_owner(server, raw.getsockname()[1])
        if owner:
            break
        time.sleep(0.05)
    time.sleep(0.3)  # the worker has parsed the headers and waits for the rest of the body
    if owner is None:
        say("  could not find the worker holding the victim's connection")
        ok = False
    else:
        killed_at = time.monotonic()
        os.kill(owner, signal.SIGKILL)
        try:
            raw.settimeout(10)
            reply = raw.recv(1024)
            seen = "connection closed without an answer" if not reply else reply.split(b"\r\n")[0].decode()
        except OSError as exc:
            seen = f"{type(exc).__name__}"
        raw.close()
        say(f"  killed worker {owner} holding the victim's half-sent autosave; the victim saw: {seen}")
        answer = victim.request("GET", f"/api/v1/assignments/{assignment}/")
        draft = (answer.json() or {}).get("draft", {})
        survived = answer.status == 200 and draft.get("text") == "half of what I heard" and draft.get("version") == 1
        say(f"  victim's next request (GET the assignment) {answer.status} after "
            f"{time.monotonic() - killed_at:.2f} s: draft {draft}; "
            f"{'the autosaved draft survived' if survived else 'DRAFT LOST'}")
        again = victim.request("PUT", f"/api/v1/assignments/{assignment}/draft/",
                               {"text": "half of what I heard, and the rest", "labels": {}, "version": 1})
        done = victim.request("POST", f"/api/v1/assignments/{assignment}/submit/", harness.SUBMIT_BODY)
        say(f"  victim saves again: {again.status} (version {(again.json() or {}).get('version')}), submits: "
            f"{done.status}")
        ok = ok and survived and again.status == 200 and done.status == 201
        if done.status in (200, 201):
            log.submitted.append(("victim", assignment, done.status))
    kills = []
    for _ in range(3):
        time.sleep(2)
        busy = busy_workers(server)
        target = (busy or server.worker_pids())[0]
        kills.append((time.monotonic(), target, bool(busy)))
        os.kill(target, signal.SIGKILL)
    thread.join()
    loops_summary(log, args.seconds)
    for number, (at, pid, busy) in enumerate(kills, 1):
        window_report(log, at - 0.001, at + 0.5, f"random kill {number} (worker {pid}, "
                      f"{'busy in a request' if busy else 'no busy worker found: idle one'})", expect_json=False)
    say(f"  workers after the run: {len(server.worker_pids())} of {server.workers}")
    return consistency_report(log) and ok and len(server.worker_pids()) == server.workers


def busy_workers(server) -> list[int]:
    """Workers holding an established client connection on the app's port, i.e. inside a request."""
    local = f"0100007F:{server.port:04X}"
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == local and fields[3] == "01":
            inodes.add(f"socket:[{fields[9]}]")
    busy = []
    for pid in server.worker_pids():
        try:
            if any(os.readlink(fd) in inodes for fd in Path(f"/proc/{pid}/fd").iterdir()):
                busy.append(pid)
        except OSError:
            continue
    return busy


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", default="restart,terminate,kill")
    parser.add_argument("--reviewers", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=30, help="load per scenario")
    parser.add_argument("--before", type=float, default=6, help="seconds of load before the fault")
    parser.add_argument("--outage", type=float, default=5, help="seconds PostgreSQL stays down")
    parser.add_argument("--workers", type=int, default=0, help="gunicorn workers (default 2 x cores + 1)")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    scenarios = [s for s in args.scenarios.split(",") if s]
    workspace = harness.Workspace("faults", keep=args.keep)
    try:
        pg = workspace.postgres()
        env = workspace.app_env(pg.url())
        harness.app_prepare(env)
        harness.django_setup(env)
        from django.db import connections

        world = harness.world_create(reviewers=args.reviewers + 1, clips=int(60 * args.seconds * len(scenarios)) + 500)
        connections.close_all()
        server = harness.Gunicorn(workspace, env, workers=args.workers or None)
        names = world["reviewers"][: args.reviewers]
        clients = harness.clients_login(server.port, names)
        victim = harness.clients_login(server.port, [world["reviewers"][-1]])[0]
        say(f"{server.describe}, CONN_MAX_AGE from settings (health checks on), PostgreSQL throwaway on port "
            f"{pg.port} (fsync off), {args.reviewers} reviewers; load average {os.getloadavg()[0]:.2f}")
        results = {}
        for scenario in scenarios:
            if scenario == "restart":
                results[scenario] = scenario_restart(pg, clients, names, args)
            elif scenario == "terminate":
                results[scenario] = scenario_terminate(pg, clients, names, args)
            elif scenario == "kill":
                results[scenario] = scenario_worker_kill(server, clients, names, victim, args)
            connections.close_all()
        errors = server.log.read_text(errors="replace")
        say(f"\ngunicorn error log: {errors.count('Traceback')} tracebacks, "
            f"{errors.count('WORKER TIMEOUT')} worker timeouts, {errors.count('Booting worker')} worker boots")
        say("Scenarios: " + ", ".join(f"{k} {'passed' if v else 'FAILED'}" for k, v in results.items()))
        return 0 if all(results.values()) else 1
    finally:
        workspace.cleanup()


if __name__ == "__main__":
    sys.exit(main())
