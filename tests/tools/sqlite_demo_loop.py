"""The reviewer loop on the embedded SQLite demo (run by tests/test_queue_sqlite.py in its own
process): seed the demo, then lease, fetch, save a draft with a segment and submit through the API."""

import os
import sys

import django

os.environ["DATABASE_URL"] = "sqlite:///" + sys.argv[1]
os.environ["DJANGO_SETTINGS_MODULE"] = "annotator.settings"
os.environ["MEDIA_ROOT"] = sys.argv[1] + "-media"
django.setup()

# Django must be set up before the app's modules can be imported.
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402

call_command("migrate", verbosity=0)
call_command("seed_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115
JSON = "application/json"
client = Client()
assert client.post("/api/v1/auth/login/", {"username": "alice", "password": "alice-demo-pass"},
                   content_type=JSON).status_code == 200
assignment = client.post("/api/v1/assignments/next/", {}, content_type=JSON).json()
urls, speakers = assignment["urls"], assignment["label_schema"]["segments"]["speakers"]
token = client.post(urls["audio_token"], {}, content_type=JSON).json()["token"]
print("audio", client.get(urls["audio"], HTTP_X_AUDIO_TOKEN=token).status_code)
segment = {"start_ms": 0, "end_ms": 500, "speaker": speakers[0], "text": ""}
print("draft", client.put(urls["draft"], {"text": "hello", "labels": {}, "segments": [segment], "version": 0},
                          content_type=JSON).status_code)
labels = {g["key"]: [g["labels"][0]["key"]] for g in assignment["label_schema"]["groups"] if g["required"]}
print("submit", client.post(urls["submit"], {"text": "hello", "labels": labels, "segments": [segment]},
                            content_type=JSON).status_code)
