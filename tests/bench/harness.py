"""Shared machinery of the issue-8 benchmarks: a throwaway PostgreSQL, the app under
gunicorn, bench people and clips, and a small stdlib HTTP client for reviewers.

Nothing here touches a server it did not start: PostgreSQL is initdb'ed into a temporary
folder on a free loopback port, gunicorn listens on 127.0.0.1 only, and both are stopped
by the process ids recorded when they started. ``Postgres(durable=True)`` keeps
PostgreSQL's own durability (fsync, synchronous_commit, full_page_writes on: every commit
waits for its WAL on disk, as in production); the default turns them off, for the benches
that measure the app rather than the disk.
"""

import collections
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from http import client as http_client
from http.cookies import SimpleCookie
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON = str(ROOT / ".venv" / "bin" / "python")
GUNICORN = str(ROOT / ".venv" / "bin" / "gunicorn")
FIXTURE_CLIPS = ROOT / "reviews" / "fixtures" / "demo_clips"
PASSWORD = "bench-reviewer-pass-7c1f"
PROJECT = "bench"
HOST = "127.0.0.1"


def say(text: str = "") -> None:
    print(text, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(round(q / 100 * len(ordered) + 0.4999))))
    return ordered[rank - 1]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def cpu_seconds_of(pids: list[int]) -> float:
    """User + system CPU seconds used so far by these processes (from /proc; gone ones count 0)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def reaped_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of this process's children that have ended and been reaped
    (cutime + cstime): where a PostgreSQL backend's CPU goes when its connection closes."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


def cpu_by_pid(pids) -> dict[int, float]:
    return {pid: cpu_seconds_of([pid]) for pid in pids if Path(f"/proc/{pid}").exists()}


def cpu_used_between(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU used between two ``cpu_by_pid`` snapshots: new processes count whole; processes that
    ended in between are left out (an undercount, never a negative)."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def postgres_cpu_mark(pg) -> tuple[dict[int, float], float]:
    """Where PostgreSQL's backends stand now, for postgres_cpu_since."""
    return cpu_by_pid(children_of(pg.pid())), reaped_cpu_seconds(pg.pid())


def postgres_cpu_since(pg, mark: tuple[dict[int, float], float]) -> float:
    """CPU seconds PostgreSQL's backends used since ``mark``, those that ended in between included:
    an ended backend's whole life is in the postmaster's reaped-children time (connections close
    at CONN_MAX_AGE, or after every request), so what it had used before the mark comes off."""
    before, reaped = mark
    after = cpu_by_pid(children_of(pg.pid()))
    return (cpu_used_between(before, after) + reaped_cpu_seconds(pg.pid()) - reaped
            - sum(seconds for pid, seconds in before.items() if pid not in after))


def cpu_per_loop_say(cpu_app: float, cpu_db: float, loops: int) -> float:
    """Say a level's CPU per loop (server workers + PostgreSQL, from CPU seconds) and return it
    in ms (nan without a loop)."""
    if not loops:
        return float("nan")
    per_loop = 1000 * (cpu_app + cpu_db) / loops
    say(f"  CPU per loop: {1000 * cpu_app / loops:.1f} ms in gunicorn workers + {1000 * cpu_db / loops:.1f} ms "
        f"in PostgreSQL = {per_loop:.1f} ms")
    return per_loop


def latency_row(ok_ms: list[float], errors: collections.Counter) -> dict:
    """One step's row of a loop table: answers, p50/p95/p99/max of the good ones, the errors."""
    return {"n": len(ok_ms), "p50": percentile(ok_ms, 50), "p95": percentile(ok_ms, 95),
            "p99": percentile(ok_ms, 99), "max": max(ok_ms, default=float("nan")), "errors": dict(errors)}


def latency_table_say(table: dict[str, dict]) -> None:
    say(f"  {'op':<9} {'n':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}  errors")
    for op, row in table.items():
        say(f"  {op:<9} {row['n']:>6} {row['p50']:>8.1f} {row['p95']:>8.1f} {row['p99']:>8.1f} "
            f"{row['max']:>8.1f}  {row['errors'] or '-'}")


def children_of(parent: int) -> list[int]:
    """Direct children of a process, from /proc."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent:
            children.append(int(stat.parent.name))
    return children


# --- PostgreSQL ---------------------------------------------------------------------------

# PostgreSQL's defaults, as production runs: a commit returns once its WAL is on disk.
DURABLE = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}
# Speed-only: commits return before the disk has them (a crash may lose the last ones).
NOT_DURABLE = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


class Postgres:
    """A private PostgreSQL server in a temporary folder; only this object stops or restarts it."""

    def __init__(self, *, workdir: Path, settings: dict | None = None, durable: bool = False):
        bindirs = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
        if not bindirs or not (bindirs[-1] / "initdb").exists():
            raise SystemExit("PostgreSQL is not installed (run `make bench`, which installs it).")
        self.bindir = bindirs[-1]
        self.dir = workdir / "pg"
        self.dir.mkdir(parents=True)
        self.port = free_port()
        self.as_pg: list[str] = []
        if os.getuid() == 0:
            # initdb refuses to run as root: the throwaway server runs as the postgres user.
            subprocess.run(["id", "postgres"], check=True, capture_output=True)
            shutil.chown(self.dir, "postgres")
            self.as_pg = ["runuser", "-u", "postgres", "--"]
        self.durable = durable
        self.settings = {
            "listen_addresses": HOST, **(DURABLE if durable else NOT_DURABLE),
            "max_connections": "300", "shared_buffers": "512MB", "work_mem": "16MB",
            "shared_preload_libraries": "pg_stat_statements", **(settings or {}),
        }

    def _ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([*self.as_pg, str(self.bindir / "pg_ctl"), "-D", str(self.dir / "data"), *args],
                              capture_output=True, text=True, check=check)

    def init(self) -> "Postgres":
        subprocess.run([*self.as_pg, str(self.bindir / "initdb"), "-D", str(self.dir / "data"), "-U", "postgres",
                        "-A", "trust", "-E", "UTF8"], check=True, capture_output=True)
        self.start()
        return self

    def start(self) -> None:
        options = " ".join(f"-c {key}={value}" for key, value in self.settings.items())
        self._ctl("-l", str(self.dir / "server.log"), "-w", "-t", "60", "-o",
                  f"-p {self.port} -k {self.dir} {options}", "start")

    def stop(self, mode: str = "fast") -> None:
        self._ctl("-m", mode, "-w", "stop", check=False)

    def pid(self) -> int | None:
        try:
            return int((self.dir / "data" / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def durability(self) -> str:
        """What the running server says about durability (read back, not assumed)."""
        rows = self.sql("SELECT name, setting FROM pg_settings WHERE name IN "
                        "('fsync', 'synchronous_commit', 'full_page_writes', 'wal_sync_method') ORDER BY name")
        return ", ".join(f"{name}={setting}" for name, setting in rows)

    def url(self, database: str = "annotator") -> str:
        return f"postgres://postgres@{HOST}:{self.port}/{database}"

    def sql(self, statement: str, params=None, *, database: str = "annotator") -> list[tuple]:
        """Run one statement on its own short connection (autocommit); return the rows, if any."""
        import psycopg2

        conn = psycopg2.connect(host=HOST, port=self.port, user="postgres", dbname=database,
                                application_name="bench-admin", connect_timeout=5)
        try:
            conn.autocommit = True
            with conn.cursor() as cursor:
                cursor.execute(statement, params)
                return cursor.fetchall() if cursor.description else []
        finally:
            conn.close()

    def createdb(self, name: str) -> None:
        self.sql(f'CREATE DATABASE "{name}"', database="postgres")
        self.sql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements", database=name)

    def terminate_app_backends(self, database: str = "annotator") -> int:
        """pg_terminate_backend on every client connection to ``database`` except the bench's own."""
        rows = self.sql(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = %s AND backend_type = 'client backend' AND pid <> pg_backend_pid() "
            "AND application_name <> 'bench-admin'", [database], database="postgres")
        return rows[0][0]

    def cleanup(self) -> None:
        self.stop("immediate")


# --- The app -----------------------------------------------------------------------------

class Workspace:
    """A temporary folder holding the server's data, the app's media and var dirs, and logs."""

    def __init__(self, name: str, keep: bool = False):
        self.path = Path(tempfile.mkdtemp(prefix=f"annotator-{name}."))
        os.chmod(self.path, 0o755)
        self.keep = keep
        self.pg: Postgres | None = None
        self.servers: list["Gunicorn"] = []

    def postgres(self, settings: dict | None = None, *, durable: bool = False) -> Postgres:
        self.pg = Postgres(workdir=self.path, settings=settings, durable=durable).init()
        self.pg.createdb("annotator")
        return self.pg

    def app_env(self, database_url: str, *, media: str = "media") -> dict:
        """The environment of the app (gunicorn, manage.py) and of the bench's own ORM use."""
        (self.path / media).mkdir(exist_ok=True)
        (self.path / "var").mkdir(exist_ok=True)
        env = dict(os.environ)
        env.update({
            "DJANGO_SETTINGS_MODULE": "annotator.settings",
            "DATABASE_URL": database_url,
            "MEDIA_ROOT": str(self.path / media),
            "ANNOTATOR_VAR_DIR": str(self.path / "var"),
            "DJANGO_SECRET_KEY": "bench-secret-key-" + uuid.uuid4().hex,
            "PSEUDONYM_KEY": "bench-pseudonym-key-" + uuid.uuid4().hex,
            "AUDIT_CHECKPOINT_KEY": "bench-checkpoint-key-" + uuid.uuid4().hex,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
        })
        return env

    def cleanup(self) -> None:
        for server in self.servers:
            server.stop()
        if self.pg:
            self.pg.cleanup()
        if not self.keep:
            shutil.rmtree(self.path, ignore_errors=True)


def manage(env: dict, *args: str) -> None:
    subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)


def app_prepare(env: dict) -> None:
    manage(env, "migrate", "--noinput", "-v", "0")
    manage(env, "collectstatic", "--noinput", "-v", "0")


def django_setup(env: dict) -> None:
    """Point this process's ORM at the same database and media as the server, then set Django up."""
    os.environ.update({k: v for k, v in env.items() if k not in ("PYTHONPATH",)})
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def machine_workers() -> int:
    """Gunicorn's rule of thumb: two sync workers per core plus one."""
    return 2 * (os.cpu_count() or 1) + 1


class Gunicorn:
    """The app under gunicorn on 127.0.0.1 (sync workers unless told otherwise)."""

    def __init__(self, workspace: Workspace, env: dict, *, workers: int | None = None, worker_class: str = "sync",
                 threads: int = 1, timeout: int = 30, name: str = "gunicorn"):
        self.port = free_port()
        self.workers = workers or machine_workers()
        self.log = workspace.path / f"{name}.log"
        args = [GUNICORN, "annotator.wsgi", "--bind", f"{HOST}:{self.port}", "--workers", str(self.workers),
                "--worker-class", worker_class, "--timeout", str(timeout), "--graceful-timeout", "5",
                "--error-logfile", str(self.log), "--backlog", "2048"]
        if worker_class == "gthread":
            args += ["--threads", str(threads)]
        self.describe = f"gunicorn {self.workers} {worker_class} workers" + (
            f" x {threads} threads" if worker_class == "gthread" else "")
        self.process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True)
        workspace.servers.append(self)
        self._wait_ready()

    def _wait_ready(self, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: see {self.log}:\n{self.log.read_text()[-2000:]}")
            try:
                answer = Client(self.port, timeout=5).request("GET", "/accounts/login/")
                if answer.status == 200 and len(self.worker_pids()) >= self.workers:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not answer within {seconds} s; see {self.log}")

    def worker_pids(self) -> list[int]:
        """The master's children (the workers), read from /proc."""
        return sorted(children_of(self.process.pid))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


# --- People and clips (ORM; call after django_setup) ---------------------------------------

def reviewer_names(count: int) -> list[str]:
    return [f"bench{i:03d}" for i in range(1, count + 1)]


def world_create(*, reviewers: int, clips: int, real_clips: int = 10, transcriptions_per_clip: int = 1) -> dict:
    """A bench project with the demo label schema, ``reviewers`` reviewers with high quotas,
    ``real_clips`` clips ingested through ``ingest.clip_ingest`` and the rest bulk-created
    pointing at those clips' stored audio (a load-test shortcut: no ffmpeg per clip).
    Idempotent on the people; clips are added on each call."""
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from reviews import ingest as ingest_service
    from reviews import permissions
    from reviews.management.commands.seed_demo import DEMO_SCHEMA
    from reviews.models import Clip, Label, LabelGroup, LabelSchema, Project, ReviewerQuota

    User = get_user_model()
    with transaction.atomic():
        schema, created = LabelSchema.objects.get_or_create(name="Bench requests")
        if created:
            for position, (key, name, kind, required, labels) in enumerate(DEMO_SCHEMA):
                group = LabelGroup.objects.create(schema=schema, key=key, name=name, kind=kind, required=required,
                                                  position=position)
                for label_position, (label_key, label_name) in enumerate(labels):
                    Label.objects.create(group=group, key=label_key, name=label_name, position=label_position)
        project, _ = Project.objects.get_or_create(slug=PROJECT, defaults={
            "name": "Bench", "label_schema": schema, "transcriptions_per_clip": transcriptions_per_clip})
        group = permissions.role_group(permissions.REVIEWER)
        existing = set(User.objects.filter(username__startswith="bench").values_list("username", flat=True))
        template = User(username="template")
        template.set_password(PASSWORD)  # one slow hash for everyone
        User.objects.bulk_create([User(username=name, password=template.password)
                                  for name in reviewer_names(reviewers) if name not in existing])
        people = list(User.objects.filter(username__in=reviewer_names(reviewers)))
        group.user_set.add(*people)
        project.members.add(*people)
        for person in people:
            ReviewerQuota.objects.update_or_create(reviewer=person, defaults={
                "clips_per_day": 1_000_000, "plays_per_clip": 100})
        ingest, created = User.objects.get_or_create(username="bench-ingest")
        if created:
            ingest.set_unusable_password()
            ingest.save()
    real = []
    names = sorted(p.name for p in FIXTURE_CLIPS.iterdir() if p.suffix in {".flac", ".ogg"})
    for i in range(min(real_clips, clips)):
        real.append(ingest_service.clip_ingest(actor=ingest, data={
            "project": PROJECT, "audio": (FIXTURE_CLIPS / names[i % len(names)]).read_bytes(),
            "account_id": f"BENCH-{i}", "recorded_at": "2026-11-20T08:15:02Z", "locale": "en-US"}))
    rest = clips - len(real)
    batch = []
    for i in range(rest):
        source = real[i % len(real)]
        batch.append(Clip(project=project, subject_key=uuid.uuid4().hex + uuid.uuid4().hex,
                          recorded_on=source.recorded_on, locale=source.locale, duration_ms=source.duration_ms,
                          audio=source.audio.name, peaks=source.peaks))
        if len(batch) == 5000:
            Clip.objects.bulk_create(batch)
            batch = []
    Clip.objects.bulk_create(batch)
    return {"project": project.pk, "reviewers": [p.username for p in people], "real_clips": len(real),
            "audio_seconds": sum(c.duration_ms for c in real) / 1000}


def over_assignment_check(leases: list[tuple[str, str]] | None = None) -> dict:
    """Prove no clip was leased or transcribed more often than its project allows.

    ``leases``: (reviewer, clip id) pairs the clients received from "next" during the run.
    """
    from django.db import connection

    checks = {}
    with connection.cursor() as cursor:
        cursor.execute("""
            SELECT count(*) FROM (
              SELECT a.clip_id FROM reviews_assignment a JOIN reviews_clip c ON c.id = a.clip_id
              JOIN reviews_project p ON p.id = c.project_id
              WHERE a.status IN ('live', 'submitted')
              GROUP BY a.clip_id, p.transcriptions_per_clip HAVING count(*) > p.transcriptions_per_clip) x""")
        checks["clips with more live+submitted assignments than allowed"] = cursor.fetchone()[0]
        cursor.execute("""
            SELECT count(*) FROM (
              SELECT t.clip_id FROM reviews_transcription t JOIN reviews_clip c ON c.id = t.clip_id
              JOIN reviews_project p ON p.id = c.project_id
              GROUP BY t.clip_id, p.transcriptions_per_clip HAVING count(*) > p.transcriptions_per_clip) x""")
        checks["clips with more transcriptions than allowed"] = cursor.fetchone()[0]
        cursor.execute("""
            SELECT count(*) FROM (SELECT clip_id, reviewer_id FROM reviews_transcription
                                  GROUP BY 1, 2 HAVING count(*) > 1) x""")
        checks["(clip, reviewer) pairs transcribed twice"] = cursor.fetchone()[0]
        cursor.execute("""
            SELECT count(*) FROM reviews_clip c LEFT JOIN (
              SELECT clip_id, count(*) AS n FROM reviews_assignment WHERE status IN ('live', 'submitted')
              GROUP BY clip_id) a ON a.clip_id = c.id
            WHERE c.slots_taken <> coalesce(a.n, 0)""")
        checks["clips whose slots_taken differs from live+submitted assignments"] = cursor.fetchone()[0]
        cursor.execute("""
            SELECT count(*) FROM (SELECT assignment_id FROM reviews_revision WHERE kind = 'submit'
                                  GROUP BY 1 HAVING count(*) > 1) x""")
        checks["assignments with two submit revisions"] = cursor.fetchone()[0]
        cursor.execute("SELECT max(transcriptions_per_clip) FROM reviews_project")
        allowed = cursor.fetchone()[0] or 1
    if leases is not None:
        by_clip: dict[str, set] = {}
        for reviewer, clip in leases:
            by_clip.setdefault(clip, set()).add(reviewer)
        checks["clips the clients saw leased to more reviewers than allowed"] = sum(
            1 for holders in by_clip.values() if len(holders) > allowed)
    return checks


def chain_check() -> tuple[bool, int, str]:
    from django.db import connections

    from reviews.audit import chain_verify

    connections.close_all()
    result = chain_verify()
    return result.ok, result.count, result.detail


# --- HTTP ----------------------------------------------------------------------------------

@dataclass
class Answer:
    status: int  # 0: no HTTP answer (connection refused/reset, timeout)
    seconds: float
    content_type: str = ""
    body: bytes = b""
    error: str = ""
    started: float = 0.0  # time.monotonic() when sent

    def json(self):
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return None


class Client:
    """One browser-like session over http.client (stdlib): cookies, CSRF header, timings."""

    def __init__(self, port: int, *, timeout: float = 30.0, user_agent: str = "annotator-bench/1"):
        self.port = port
        self.timeout = timeout
        self.cookies: dict[str, str] = {}
        self.csrf: str | None = None  # from the login answer (CSRF_USE_SESSIONS) or the csrftoken cookie
        self.user_agent = user_agent
        self.conn: http_client.HTTPConnection | None = None

    def request(self, method: str, path: str, body=None, headers: dict | None = None) -> Answer:
        sent = {"User-Agent": self.user_agent, "Accept": "application/json"}
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        csrf = self.csrf or self.cookies.get("csrftoken")
        if method not in ("GET", "HEAD") and csrf:
            sent["X-CSRFToken"] = csrf
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        sent.update(headers or {})
        started = time.monotonic()
        try:
            if self.conn is None:
                self.conn = http_client.HTTPConnection(HOST, self.port, timeout=self.timeout)
            self.conn.request(method, path, body=data, headers=sent)
            response = self.conn.getresponse()
            payload = response.read()
            seconds = time.monotonic() - started
            for header, value in response.getheaders():
                if header.lower() == "set-cookie":
                    for name, morsel in SimpleCookie(value).items():
                        if morsel.value and morsel["max-age"] != "0":
                            self.cookies[name] = morsel.value
                        else:
                            self.cookies.pop(name, None)
            if response.getheader("Connection", "").lower() == "close":
                self.close()
            return Answer(response.status, seconds, response.getheader("Content-Type", ""), payload,
                          started=started)
        except (OSError, http_client.HTTPException) as exc:
            self.close()
            return Answer(0, time.monotonic() - started, error=type(exc).__name__, started=started)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def login(self, username: str, password: str = PASSWORD) -> Answer:
        answer = self.request("POST", "/api/v1/auth/login/", {"username": username, "password": password})
        if answer.status != 200:
            raise RuntimeError(f"login of {username} failed: {answer.status} {answer.body[:200]!r}")
        self.csrf = (answer.json() or {}).get("csrf_token") or None
        return answer


def clients_login(port: int, usernames: list[str], *, parallel: int = 8, timeout: float = 60) -> list[Client]:
    """Sign every reviewer in through the API (a real session each), a few at a time."""
    clients = [Client(port, timeout=timeout, user_agent=f"annotator-bench/{name}") for name in usernames]
    errors = []

    def work(chunk):
        for client, name in chunk:
            try:
                client.login(name)
            except RuntimeError as exc:
                errors.append(str(exc))

    pairs = list(zip(clients, usernames))
    threads = [threading.Thread(target=work, args=(pairs[i::parallel],)) for i in range(parallel)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError("; ".join(errors[:3]))
    for client in clients:
        client.timeout = 30.0
        client.close()
    return clients


# --- The reviewer loop ------------------------------------------------------------------------

SUBMIT_BODY = {"text": "turn on the kitchen lights", "labels": {"speaker": ["adult"]}}
OPS = ("next", "token", "audio", "submit")


@dataclass
class Record:
    op: str
    answer: Answer
    reviewer: str


@dataclass
class LoopLog:
    records: list[Record] = field(default_factory=list)
    loops: int = 0
    empty: int = 0
    leases: list[tuple[str, str]] = field(default_factory=list)  # (reviewer, clip id)
    submitted: list[tuple[str, str, int]] = field(default_factory=list)  # (reviewer, assignment, status)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, record: Record) -> None:
        with self.lock:
            self.records.append(record)


def loop_once(client: Client, name: str, log: LoopLog, *, retry_until: float | None = None,
              pause: float = 0.2, token_request: bool = False) -> str:
    """One reviewer loop: next -> audio bytes -> submit, the audio fetched with the token that
    next's answer carries, as the workspace does (``token_request``: ask the audio-token route
    for it first, the loop before next carried one).

    Returns "done", "empty" or "failed:<op>". With ``retry_until`` (a monotonic deadline) a
    failed step is retried after ``pause`` seconds, as the page would, until that moment:
    the fault benches use this so that a submit interrupted by an outage is sent again.
    """

    def step(op, method, path, body=None, headers=None, ok=(200, 201)):
        while True:
            answer = client.request(method, path, body, headers)
            log.add(Record(op, answer, name))
            if answer.status in ok:
                return answer
            # Only "no answer" and 5xx are worth sending again; a 4xx says something definite.
            if retry_until is None or time.monotonic() >= retry_until or 400 <= answer.status < 500:
                return answer
            time.sleep(pause)

    answer = step("next", "POST", "/api/v1/assignments/next/", {}, ok=(201, 204))
    if answer.status == 204:
        with log.lock:
            log.empty += 1
        return "empty"
    if answer.status != 201:
        return "failed:next"
    assignment = answer.json()
    with log.lock:
        log.leases.append((name, assignment["clip"]["id"]))
    token = (assignment.get("audio_token") or {}).get("token")
    if token_request or not token:
        answer = step("token", "POST", assignment["audio_token_url"], {})
        if answer.status != 201:
            return "failed:token"
        token = answer.json()["token"]
    answer = step("audio", "GET", assignment["audio_url"], headers={"X-Audio-Token": token}, ok=(200,))
    if answer.status == 409 or (answer.status == 404 and retry_until is not None):
        # The token may have been spent by an attempt that failed mid-way: ask for a new one.
        answer = step("token", "POST", assignment["audio_token_url"], {})
        if answer.status == 201:
            answer = step("audio", "GET", assignment["audio_url"],
                          headers={"X-Audio-Token": answer.json()["token"]}, ok=(200,))
    if answer.status != 200 or not answer.body:
        return "failed:audio"
    answer = step("submit", "POST", f"/api/v1/assignments/{assignment['id']}/submit/", SUBMIT_BODY)
    if answer.status not in (200, 201):
        return "failed:submit"
    with log.lock:
        log.submitted.append((name, assignment["id"], answer.status))
        log.loops += 1
    return "done"


def load_run(clients: list[Client], names: list[str], *, seconds: float, max_loops: int,
             retry: bool = False, log: LoopLog | None = None, stop: threading.Event | None = None,
             token_request: bool = False) -> LoopLog:
    """Every reviewer loops in its own thread until ``seconds`` pass or ``max_loops`` are done
    in total; a loop started before the deadline is finished (bounded by the client timeout)."""
    log = log or LoopLog()
    deadline = time.monotonic() + seconds
    budget = [max_loops]
    budget_lock = threading.Lock()

    def reviewer(client, name):
        while time.monotonic() < deadline and not (stop and stop.is_set()):
            with budget_lock:
                if budget[0] <= 0:
                    return
                budget[0] -= 1
            outcome = loop_once(client, name, log, retry_until=(deadline + 30) if retry else None,
                                token_request=token_request)
            if outcome == "empty":
                return
            if outcome.startswith("failed") and retry:
                time.sleep(0.2)

    threads = [threading.Thread(target=reviewer, args=(c, n), daemon=True) for c, n in zip(clients, names)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 120)
    return log


# --- Service-level probe: the SQL of one loop, timed, and its plans ----------------------------

def service_loop_queries(reviewer) -> dict[str, list[tuple[str, float]]]:
    """Run one loop through the services in this process; return each step's SQL and seconds."""
    from django.db import connection

    from reviews import leases, services

    captured: list[tuple[str, float]] = []

    def timer(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            seconds = time.perf_counter() - started
            try:
                text = context["cursor"].cursor.query.decode() if params is not None else sql
            except Exception:  # noqa: BLE001 - fall back to the template
                text = sql
            captured.append((text, seconds))

    def step(name, call):
        captured.clear()
        with connection.execute_wrapper(timer):
            result = call()
        steps[name] = list(captured)
        return result

    steps: dict[str, list[tuple[str, float]]] = {}
    assignment = step("next", lambda: leases.assignment_next(reviewer=reviewer, session_key="probe"))
    if assignment is None:
        return steps
    step("audio", lambda: services.audio_open(reviewer=reviewer, assignment_id=assignment.pk,
                                              token=assignment.audio_grant.token, session_key="probe"))
    step("submit", lambda: services.transcription_submit(reviewer=reviewer, assignment_id=assignment.pk,
                                                         **SUBMIT_BODY))
    return steps


def explain(sql: str) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) one statement inside a transaction that is rolled back."""
    from django.db import connection, transaction

    lines = []
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
                lines = [row[0] for row in cursor.fetchall()]
            raise _Rollback()
    except _Rollback:
        pass
    return "\n".join(lines)


class _Rollback(Exception):
    pass
