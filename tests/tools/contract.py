"""Run schemathesis against a live server, as a reviewer, a checker, a supervisor and the ingest service.

Uses $DATABASE_URL's server: creates a scratch database there, seeds the demo into it,
serves it with gunicorn on a free port on 127.0.0.1, and removes everything afterwards.
Checks: no 5xx, no response that violates the schema, no accepted invalid input.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import psycopg2

ROOT = Path(__file__).resolve().parents[2]
PY = str(ROOT / ".venv" / "bin" / "python")
MAX_EXAMPLES = os.environ.get("CONTRACT_MAX_EXAMPLES", "25")
# CI uses a fixed seed so a red run can be replayed; CONTRACT_SEED=random explores anew.
SEED = os.environ.get("CONTRACT_SEED", "20261126")
CHECKS = "not_a_server_error,response_schema_conformance,negative_data_rejection"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def scratch_database(base_url: str) -> tuple[str, callable]:
    parsed = urlparse(base_url)
    name = f"annotator_contract_{os.getpid()}"
    admin = psycopg2.connect(dbname="postgres", user=parsed.username or "postgres", host=parsed.hostname,
                             port=parsed.port or 5432, password=parsed.password)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cursor.execute(f'CREATE DATABASE "{name}"')

    def drop():
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()

    return urlunparse(parsed._replace(path="/" + name)), drop


def session_identity(base: str, username: str, password: str, otp: str = "") -> tuple[dict, list[str]]:
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    body = json.dumps({"username": username, "password": password, "otp_token": otp}).encode()
    request = urllib.request.Request(f"{base}/api/v1/auth/login/", data=body,
                                     headers={"Content-Type": "application/json"})
    with opener.open(request) as response:
        assert response.status == 200, response.status
        csrf_token = json.loads(response.read())["csrf_token"]
    session = {cookie.name: cookie.value for cookie in jar}["sessionid"]
    # The session goes through schemathesis' OpenAPI-aware auth (so its "missing auth"
    # cases really drop it); the CSRF token (kept in the session) rides as a header.
    return {"cookieAuth": session}, ["-H", f"X-CSRFToken: {csrf_token}"]


def config_file(workdir: Path, who: str, auth: dict) -> Path:
    path = workdir / f"schemathesis-{who.replace(' ', '-')}.toml"
    path.write_text("".join(f'[auth.openapi.{scheme}]\napi_key = "{value}"\n\n' for scheme, value in auth.items()))
    return path


def main() -> int:
    base_db = os.environ.get("DATABASE_URL")
    if not base_db:
        print("contract: DATABASE_URL must point at a PostgreSQL server", file=sys.stderr)
        return 2
    database_url, drop = scratch_database(base_db)
    workdir = Path(tempfile.mkdtemp(prefix="annotator-contract-"))
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "ANNOTATOR_VAR_DIR": str(workdir),
           "MEDIA_ROOT": str(workdir / "media"), "ALLOWED_HOSTS": "127.0.0.1"}
    server = None
    try:
        for command in (["migrate", "--noinput", "-v", "0"], ["collectstatic", "--noinput", "-v", "0"],
                        ["seed_demo"]):
            subprocess.run([PY, "manage.py", *command], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
        server = subprocess.Popen([str(ROOT / ".venv/bin/gunicorn"), "annotator.wsgi", "--bind",
                                   f"127.0.0.1:{port}", "--workers", "3", "--timeout", "60"], cwd=ROOT, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=5)
                break
            except OSError:  # not listening yet, or still booting
                time.sleep(0.2)
        sam_code = subprocess.run([PY, "manage.py", "demo_totp", "sam"], cwd=ROOT, env=env, check=True,
                                  capture_output=True, text=True).stdout.strip()
        identities = {
            "reviewer alice": session_identity(base, "alice", "alice-demo-pass"),
            "checker cleo": session_identity(base, "cleo", "cleo-demo-pass"),
            "supervisor sam": session_identity(base, "sam", "sam-demo-pass", sam_code),
            "ingest service": ({"serviceToken": "Token demo-ingest-token-not-for-production"}, []),
        }
        failures = 0
        for who, (auth, headers) in identities.items():
            print(f"== schemathesis as {who}", flush=True)
            result = subprocess.run(
                [str(ROOT / ".venv/bin/st"), "--config-file", str(config_file(workdir, who, auth)), "run",
                 f"{base}/api/v1/schema/", "--checks", CHECKS,
                 "--max-examples", MAX_EXAMPLES, "--workers", "1", "--phases", "examples,coverage,fuzzing",
                 "--exclude-path", "/api/v1/auth/logout/", "--suppress-health-check", "all",
                 "--generation-database", "none", *([] if SEED == "random" else ["--seed", SEED]), *headers],
                cwd=ROOT, env={**env, "SCHEMATHESIS_HOOKS": ""},
            )
            failures += result.returncode != 0
        return 1 if failures else 0
    finally:
        if server:
            server.terminate()
            server.wait(timeout=20)
        drop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
