"""Who may do what: every endpoint x {alice, bob, sam, ada, ingest token, anonymous} x method.

alice holds a live assignment. Everyone else gets 404 for it (401 when not signed in),
whatever the method, and every denial leaves exactly one ``access.denied`` event.
"""

import pytest
from rest_framework.test import APIClient

from reviews.models import Assignment, AuditEvent
from tests.conftest import INGEST_TOKEN, session_client

METHODS = ["get", "post", "put", "patch", "delete"]
# Assignment-scoped endpoints and the methods they support for their owner.
OBJECT_ENDPOINTS = {
    "": {"get"},
    "audio-token/": {"post"},
    "audio/": {"get"},
    "draft/": {"put"},
    "submit/": {"post"},
    "skip/": {"post"},
    "flag/": {"post"},
}
ACTORS = ["alice", "bob", "sam", "ada", "ingest", "anonymous"]


@pytest.fixture
def world(project, ingest, alice, bob, sam, ada, ingest_user):
    ingest(2)
    clients = {
        "alice": session_client(alice), "bob": session_client(bob), "sam": session_client(sam),
        "ada": session_client(ada), "anonymous": APIClient(),
    }
    clients["ingest"] = APIClient()
    clients["ingest"].credentials(HTTP_AUTHORIZATION=f"Token {INGEST_TOKEN}")
    assignment = clients["alice"].post("/api/v1/assignments/next/").json()
    return clients, assignment


def call(client, method, url):
    return getattr(client, method)(url, {}, format="json")


def denials() -> int:
    return AuditEvent.objects.filter(action="access.denied").count()


@pytest.mark.parametrize("suffix", list(OBJECT_ENDPOINTS))
@pytest.mark.parametrize("actor", ACTORS)
def test_alices_assignment_endpoints(world, actor, suffix):
    clients, assignment = world
    url = f"/api/v1/assignments/{assignment['id']}/{suffix}"
    for method in METHODS:
        before = denials()
        response = call(clients[actor], method, url)
        if actor == "alice":
            if method in OBJECT_ENDPOINTS[suffix]:
                # The owner gets through access control; an empty body may still be invalid.
                assert response.status_code in (200, 201, 400, 404 if suffix == "audio/" else 400), (method, suffix)
            else:
                assert response.status_code == 405, (method, suffix)
            continue
        expected = 401 if actor == "anonymous" else 404
        assert response.status_code == expected, (actor, method, suffix, response.content)
        body = response.json()
        assert set(body) == {"code", "detail"} and assignment["clip"]["id"] not in response.content.decode()
        assert denials() == before + 1, (actor, method, suffix)
        if actor in ("bob",):
            event = AuditEvent.objects.filter(action="access.denied").latest("id")
            assert event.actor_name == "bob" and event.object_id == assignment["id"]
    assert Assignment.objects.get(pk=assignment["id"]).reviewer.username == "alice"


@pytest.mark.parametrize(
    "url, method, expected",
    [
        ("/api/v1/assignments/next/", "post",
         {"alice": 201, "bob": 201, "sam": 404, "ada": 404, "ingest": 404, "anonymous": 401}),
        ("/api/v1/me/progress/", "get",
         {"alice": 200, "bob": 200, "sam": 404, "ada": 404, "ingest": 404, "anonymous": 401}),
        ("/api/v1/clips/", "post",
         # The matrix posts JSON; ingest takes multipart only, so the service gets a 415.
         {"alice": 404, "bob": 404, "sam": 404, "ada": 404, "ingest": 415, "anonymous": 401}),
        ("/api/v1/assignments/00000000-0000-0000-0000-000000000000/", "get",
         {"alice": 404, "bob": 404, "sam": 404, "ada": 404, "ingest": 404, "anonymous": 401}),
        ("/api/v1/assignments/not-a-uuid/submit/", "post",
         {"alice": 404, "bob": 404, "sam": 404, "ada": 404, "ingest": 404, "anonymous": 401}),
    ],
    ids=["next", "progress", "ingest", "missing-assignment", "malformed-id"],
)
def test_collection_endpoints(world, url, method, expected):
    clients, _ = world
    for actor, status in expected.items():
        before = denials()
        response = call(clients[actor], method, url)
        assert response.status_code == status, (actor, response.content)
        assert denials() == before + (1 if status in (401, 404) else 0), actor


@pytest.mark.parametrize(
    "path, expected",
    [
        ("/workspace/", {"alice": 200, "bob": 200, "sam": 404, "ada": 404, "anonymous": 302}),
        ("/admin/reviews/clip/", {"alice": 302, "bob": 302, "sam": 302, "ada": 200, "anonymous": 302}),
    ],
)
def test_pages(world, path, expected):
    clients, _ = world
    for actor, status in expected.items():
        response = clients[actor].get(path)
        assert response.status_code == status, actor
        if status == 302:
            assert "/login/" in response["Location"]


def test_reviewers_hold_no_model_wide_clip_permission(world, alice):
    from django.contrib.auth.models import Group

    assert not Group.objects.get(name="reviewer").permissions.exists()
    assert not alice.user_permissions.exists()
    assert not alice.has_perm("reviews.review_clip")  # no global grant
    held = Assignment.objects.get(reviewer=alice)
    assert alice.has_perm("reviews.review_clip", held.clip)


@pytest.mark.parametrize("ending", ["submit", "skip", "flag"])
def test_the_object_grant_lives_exactly_as_long_as_the_lease(world, alice, ending):
    from django.contrib.auth import get_user_model

    clients, assignment = world
    clip = Assignment.objects.get(pk=assignment["id"]).clip
    assert get_user_model().objects.get(pk=alice.pk).has_perm("reviews.review_clip", clip)
    body = {"submit": {"text": "hi", "labels": {"speaker": ["adult"]}}, "skip": {"reason": "noise"},
            "flag": {"reason": "upsetting"}}[ending]
    assert clients["alice"].post(f"/api/v1/assignments/{assignment['id']}/{ending}/", body,
                                 format="json").status_code in (200, 201)
    assert not get_user_model().objects.get(pk=alice.pk).has_perm("reviews.review_clip", clip)
