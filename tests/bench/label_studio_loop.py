"""Label Studio's annotator loop on this machine, measured the way loop.py measures ours, so
that issue 15's ratio (at 16 reviewers, our loops/s >= 10x Label Studio's) can be taken in
one run instead of against a figure measured elsewhere.

Label Studio runs from its own virtualenv (``.venv-ls``, not a requirement of the app):

    python3.11 -m venv .venv-ls && .venv-ls/bin/pip install label-studio==1.23.2 gunicorn==23.0.0
    .venv/bin/python tests/bench/label_studio_loop.py --annotators 16 --seconds 15 --warmup 2

What it starts, all throwaway and stopped by process id at the end: a durable PostgreSQL
(``harness.Postgres(durable=True)``, as loop.py), Label Studio migrated into it and served by
gunicorn on 127.0.0.1 (sync workers, 5 by default as loop.py on 2 cores; the PyPI package
ships no server configuration of its own), one owner and N annotators in one organization,
each signed in through ``POST /user/login/`` (a session, as the browser does), one audio
transcription project (``<Audio>`` + ``<TextArea>``) whose ten uploaded files are the demo
clips as 48 kb/s mono MP3 (as our app stores them) and whose other tasks point at those
uploads (the same shortcut as our bench). One loop per annotator:

    GET /api/projects/<id>/next/ -> GET the task's audio (/data/upload/...) ->
    POST /api/tasks/<task id>/annotations/ (one textarea result)

Prints loops/s, p50/p95/p99 of each step, errors, and CPU per loop (gunicorn workers and
PostgreSQL backends, closed backends included, from /proc), then how many tasks got more
annotations than the project allows.
"""

import argparse
import collections
import json
import os
import secrets
import subprocess
import sys
import threading
import time
import uuid
from http import client as http_client
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from harness import HOST, say  # noqa: E402

LS_VENV = harness.ROOT / ".venv-ls"
LS_PYTHON = str(LS_VENV / "bin" / "python")
LS_GUNICORN = str(LS_VENV / "bin" / "gunicorn")
OPS = ("next", "audio", "annotate")
LABEL_CONFIG = """<View>
  <Audio name="audio" value="$audio"/>
  <TextArea name="transcription" toName="audio" editable="true" maxSubmissions="1" rows="2"/>
</View>"""
RESULT = [{"from_name": "transcription", "to_name": "audio", "type": "textarea",
           "value": {"text": ["turn on the kitchen lights"]}}]

# Run inside .venv-ls with Label Studio's settings: the owner and annotators, one organization.
# One password hash for everyone (as harness.world_create does), so setup is not 17 PBKDF2 runs.
SETUP_USERS = r"""
import json, sys
import django
django.setup()
from organizations.models import Organization
from users.models import User
emails, password = json.loads(sys.argv[1]), sys.argv[2]
owner = User.objects.create_user(email=emails[0], password=password)
org = Organization.create_organization(created_by=owner, title="Bench")
owner.active_organization = org
owner.save(update_fields=["active_organization"])
for email in emails[1:]:
    user = User.objects.create_user(email=email, password=None)
    user.password = owner.password
    user.active_organization = org
    user.save(update_fields=["password", "active_organization"])
    org.add_user(user)
"""


def ls_package() -> tuple[Path, str]:
    if not Path(LS_PYTHON).exists() or not Path(LS_GUNICORN).exists():
        raise SystemExit("Needs .venv-ls: python3.11 -m venv .venv-ls && "
                         ".venv-ls/bin/pip install label-studio==1.23.2 gunicorn==23.0.0")
    out = subprocess.run([LS_PYTHON, "-c", "import os, label_studio as ls; "
                          "print(os.path.dirname(ls.__file__)); print(ls.__version__)"],
                         capture_output=True, text=True, check=True).stdout.split()
    return Path(out[0]), out[1]


class LSClient(harness.Client):
    """harness.Client plus raw bodies (a form, a multipart upload)."""

    def raw(self, method: str, path: str, data: bytes, content_type: str) -> harness.Answer:
        sent = {"User-Agent": self.user_agent, "Accept": "application/json", "Content-Type": content_type}
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if self.cookies.get("csrftoken"):
            sent["X-CSRFToken"] = self.cookies["csrftoken"]
        started = time.monotonic()
        conn = http_client.HTTPConnection(HOST, self.port, timeout=self.timeout)
        try:
            conn.request(method, path, body=data, headers=sent)
            response = conn.getresponse()
            payload = response.read()
            for header, value in response.getheaders():
                if header.lower() == "set-cookie":
                    for name, morsel in SimpleCookie(value).items():
                        if morsel.value and morsel["max-age"] != "0":
                            self.cookies[name] = morsel.value
            return harness.Answer(response.status, time.monotonic() - started,
                                  response.getheader("Content-Type", ""), payload, started=started)
        finally:
            conn.close()

    def login(self, email: str, password: str = harness.PASSWORD) -> harness.Answer:
        # Django accepts any well-formed CSRF secret the cookie and the form agree on.
        token = secrets.token_hex(16)
        self.cookies["csrftoken"] = token
        answer = self.raw("POST", "/user/login/", urlencode(
            {"email": email, "password": password, "csrfmiddlewaretoken": token}).encode(),
            "application/x-www-form-urlencoded")
        if answer.status != 302 or "sessionid" not in self.cookies:
            raise RuntimeError(f"login of {email} failed: {answer.status} {answer.body[:300]!r}")
        return answer


def multipart(files: list[Path]) -> tuple[bytes, str]:
    boundary = "bench-" + uuid.uuid4().hex
    parts = []
    for path in files:
        head = (f'--{boundary}\r\nContent-Disposition: form-data; name="{path.name}"; '
                f'filename="{path.name}"\r\nContent-Type: audio/mpeg\r\n\r\n')
        parts.append(head.encode() + path.read_bytes() + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


class LabelStudio(harness.Gunicorn):
    """Label Studio under gunicorn on 127.0.0.1; only this object stops it (by pid). Its own
    start; harness.Gunicorn's worker_pids and stop."""

    def __init__(self, package: Path, env: dict, log: Path, *, workers: int):
        self.port = free = harness.free_port()
        self.workers = workers
        self.log = log
        self.process = subprocess.Popen(
            [LS_GUNICORN, "core.wsgi:application", "--chdir", str(package), "--bind", f"{HOST}:{free}",
             "--workers", str(workers), "--worker-class", "sync", "--timeout", "30", "--graceful-timeout", "5",
             "--error-logfile", str(log), "--backlog", "2048"],
            cwd=package, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {log.read_text()[-2000:]}")
            try:
                answer = harness.Client(self.port, timeout=10).request("GET", "/health")
                if answer.status == 200 and len(self.worker_pids()) >= workers:
                    return
            except OSError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"Label Studio did not answer within 120 s; see {log}")

class Log:
    def __init__(self):
        self.records: list[tuple[str, harness.Answer]] = []
        self.loops = 0
        self.empty = 0
        self.lock = threading.Lock()

    def add(self, op: str, answer: harness.Answer) -> None:
        with self.lock:
            self.records.append((op, answer))


def loop_once(client: LSClient, project: int, log: Log) -> str:
    answer = client.request("GET", f"/api/projects/{project}/next/")
    log.add("next", answer)
    if answer.status == 404:
        with log.lock:
            log.empty += 1
        return "empty"
    if answer.status != 200:
        return "failed:next"
    task = answer.json()
    url = urlsplit(task["data"]["audio"])
    answer = client.request("GET", url.path + (f"?{url.query}" if url.query else ""), headers={"Accept": "*/*"})
    log.add("audio", answer)
    if answer.status != 200 or not answer.body:
        return "failed:audio"
    answer = client.request("POST", f"/api/tasks/{task['id']}/annotations/?project={project}",
                            {"result": RESULT, "task": task["id"], "lead_time": 2.5, "was_cancelled": False,
                             "ground_truth": False})
    log.add("annotate", answer)
    if answer.status != 201:
        return "failed:annotate"
    with log.lock:
        log.loops += 1
    return "done"


def load_run(clients: list[LSClient], project: int, *, seconds: float, max_loops: int) -> Log:
    log = Log()
    deadline = time.monotonic() + seconds
    budget = [max_loops]
    budget_lock = threading.Lock()

    def annotator(client):
        while time.monotonic() < deadline:
            with budget_lock:
                if budget[0] <= 0:
                    return
                budget[0] -= 1
            if loop_once(client, project, log) == "empty":
                return

    threads = [threading.Thread(target=annotator, args=(c,), daemon=True) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 120)
    return log


def op_table(log: Log) -> dict:
    rows = {}
    for op in OPS:
        ok = [a.seconds * 1000 for o, a in log.records if o == op and a.status in (200, 201)]
        bad = collections.Counter(a.status or a.error for o, a in log.records
                                  if o == op and a.status not in (200, 201) and not (o == "next" and a.status == 404))
        rows[op] = harness.latency_row(ok, bad)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--annotators", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=15, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=2, help="unmeasured seconds before")
    parser.add_argument("--max-loops", type=int, default=6000)
    parser.add_argument("--tasks", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=0, help="gunicorn workers (default 2 x cores + 1, as loop.py)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    package, version = ls_package()

    workspace = harness.Workspace("labelstudio", keep=args.keep)
    try:
        wall = time.monotonic()
        pg = harness.Postgres(workdir=workspace.path, durable=True).init()
        workspace.pg = pg
        pg.createdb("labelstudio")
        data_dir = workspace.path / "ls-data"
        data_dir.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL", "PYTHONPATH"))}
        env.update({
            "DJANGO_SETTINGS_MODULE": "core.settings.label_studio", "DJANGO_DB": "default",
            "POSTGRE_NAME": "labelstudio", "POSTGRE_USER": "postgres", "POSTGRE_PASSWORD": "",
            "POSTGRE_HOST": HOST, "POSTGRE_PORT": str(pg.port), "BASE_DATA_DIR": str(data_dir),
            "DEBUG": "false", "LOG_LEVEL": "WARNING",
            # No network here: Sentry (on by default, 2% of requests traced) could only fail.
            "SENTRY_DSN": "", "FRONTEND_SENTRY_DSN": "",
            # Each process would ask PyPI for the newest version at import (skipped under uwsgi).
            "LATEST_VERSION_CHECK": "false",
        })
        started = time.monotonic()
        subprocess.run([LS_PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=package, env=env,
                       check=True, stdout=subprocess.DEVNULL)
        say(f"Label Studio {version} migrated in {time.monotonic() - started:.0f} s")
        emails = ["owner@bench.example"] + [f"bench{i:03d}@bench.example" for i in range(1, args.annotators + 1)]
        subprocess.run([LS_PYTHON, "-c", SETUP_USERS, json.dumps(emails), harness.PASSWORD], cwd=package, env=env,
                       check=True)
        clips = workspace.path / "clips"
        clips.mkdir()
        sources = sorted(p for p in harness.FIXTURE_CLIPS.iterdir() if p.suffix in {".flac", ".ogg"})
        mp3s = []
        for source in sources:
            target = clips / (source.stem + ".mp3")
            subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(source), "-ac", "1",
                            "-ar", "16000", "-c:a", "libmp3lame", "-b:a", "48k", str(target)], check=True)
            mp3s.append(target)

        workers = args.workers or harness.machine_workers()
        server = LabelStudio(package, env, workspace.path / "gunicorn.log", workers=workers)
        workspace.servers.append(server)
        owner = LSClient(server.port, timeout=300)
        owner.login(emails[0])
        answer = owner.request("POST", "/api/projects/", {"title": "Bench", "label_config": LABEL_CONFIG})
        if answer.status != 201:
            raise RuntimeError(f"project: {answer.status} {answer.body[:300]!r}")
        project = answer.json()["id"]
        body, content_type = multipart(mp3s)
        answer = owner.raw("POST", f"/api/projects/{project}/import", body, content_type)
        if answer.status != 201:
            raise RuntimeError(f"upload: {answer.status} {answer.body[:300]!r}")
        answer = owner.request("GET", f"/api/tasks/?project={project}&page_size=100")
        urls = [task["data"]["audio"] for task in answer.json()["tasks"]]
        if len(urls) != len(mp3s):
            raise RuntimeError(f"expected {len(mp3s)} uploaded tasks, got {urls}")
        rest = [{"audio": urls[i % len(urls)]} for i in range(args.tasks - len(urls))]
        answer = owner.request("POST", f"/api/projects/{project}/import", rest)
        if answer.status != 201:
            raise RuntimeError(f"import: {answer.status} {answer.body[:300]!r}")
        pg.sql("VACUUM ANALYZE", database="labelstudio")
        durability = ", ".join(f"{name}={setting}" for name, setting in pg.sql(
            "SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes', "
            "'wal_sync_method') ORDER BY name", database="labelstudio"))
        allowed = pg.sql("SELECT maximum_annotations FROM project WHERE id = %s", [project],
                         database="labelstudio")[0][0]
        audio_bytes = sum(p.stat().st_size for p in mp3s) / len(mp3s)
        say(f"Machine: {os.cpu_count()} cores (shared), load average {os.getloadavg()[0]:.2f}; Label Studio "
            f"{version} under gunicorn {workers} sync workers (core.wsgi, DEBUG off, Django's CONN_MAX_AGE "
            f"as Label Studio sets it); PostgreSQL {pg.bindir.parent.name} throwaway, durable ({durability}); "
            f"{args.tasks} tasks (10 uploaded MP3s, mean {audio_bytes / 1000:.0f} kB; the rest point at them); "
            f"maximum_annotations {allowed}")

        started = time.monotonic()
        clients = [LSClient(server.port, timeout=60, user_agent=f"ls-bench/{email}") for email in emails[1:]]
        for client, email in zip(clients, emails[1:]):
            client.login(email)
        for client in clients:
            client.timeout = 30.0
        say(f"Signed in {len(clients)} annotators through POST /user/login/ in {time.monotonic() - started:.1f} s")

        load_run(clients, project, seconds=args.warmup, max_loops=args.max_loops)
        load_before = os.getloadavg()[0]
        cpu_app = harness.cpu_by_pid(server.worker_pids())
        db_mark = harness.postgres_cpu_mark(pg)
        started = time.monotonic()
        log = load_run(clients, project, seconds=args.seconds, max_loops=args.max_loops)
        elapsed = time.monotonic() - started
        cpu_app = harness.cpu_used_between(cpu_app, harness.cpu_by_pid(server.worker_pids()))
        # Label Studio opens a connection per request: most backends end inside the window.
        cpu_db = harness.postgres_cpu_since(pg, db_mark)
        rate = log.loops / elapsed
        say(f"\n== {args.annotators} annotators: {log.loops} loops in {elapsed:.1f} s = {rate:.1f} loops/s "
            f"({3 * rate:.0f} requests/s); no-task answers {log.empty}; load average "
            f"{load_before:.2f} -> {os.getloadavg()[0]:.2f}")
        per_loop = harness.cpu_per_loop_say(cpu_app, cpu_db, log.loops)
        table = op_table(log)
        harness.latency_table_say(table)
        over = pg.sql("SELECT count(*) FROM (SELECT task_id FROM task_completion WHERE NOT was_cancelled "
                      "GROUP BY task_id HAVING count(*) > %s) x", [allowed], database="labelstudio")[0][0]
        errors = sum(sum(row["errors"].values()) for row in table.values())
        say(f"\nTasks with more annotations than maximum_annotations ({allowed}): {over}")
        say(f"Summary: Label Studio {version}, {args.annotators} annotators, {args.seconds:g} s: {rate:.1f} loops/s, "
            f"CPU {per_loop:.1f} ms/loop, errors {errors}, next p50/p95/p99 {table['next']['p50']:.1f}/"
            f"{table['next']['p95']:.1f}/{table['next']['p99']:.1f} ms; whole run {time.monotonic() - wall:.0f} s")
        return 0
    finally:
        workspace.cleanup()


if __name__ == "__main__":
    sys.exit(main())
