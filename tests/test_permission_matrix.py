"""Who may do what: every endpoint x {alice, bob, sam, ada, ingest token, anonymous} x method.

alice holds a live assignment. Everyone else gets 404 for it (401 when not signed in),
whatever the method, and every denial leaves exactly one ``access.denied`` event.
"""

import pytest
from rest_framework.test import APIClient

from reviews.models import Assignment, AuditEvent
from tests.helpers import INGEST_TOKEN, session_client

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


# --- Checkers (issue 11): the review endpoints and the checker role ----------------------
REVIEW_ENDPOINTS = {
    "": {"get"},
    "audio-token/": {"post"},
    "audio/": {"get"},
    "accept/": {"post"},
    "reject/": {"post"},
    "adjudicate/": {"post"},
}
REVIEW_ACTORS = ["cleo", "dave", "alice", "bob", "sam", "ada", "ingest", "anonymous"]


@pytest.fixture
def review_world(world, project, alice):
    """alice submitted her clip; cleo (checker) holds the review of it; dave is another checker."""
    from reviews import permissions, services
    from tests.helpers import make_user

    clients, assignment = world
    project.review_mode = "all"
    project.save()
    services.transcription_submit(reviewer=alice, assignment_id=assignment["id"], text="hello",
                                  labels={"speaker": ["adult"]})
    for name in ("cleo", "dave"):
        user = make_user(name, permissions.CHECKER)
        project.members.add(user)
        clients[name] = session_client(user)
    item = clients["cleo"].post("/api/v1/reviews/next/").json()
    return clients, item


@pytest.mark.parametrize("suffix", list(REVIEW_ENDPOINTS))
@pytest.mark.parametrize("actor", REVIEW_ACTORS)
def test_cleos_review_endpoints(review_world, actor, suffix):
    from reviews.models import Review

    clients, item = review_world
    url = f"/api/v1/reviews/{item['id']}/{suffix}"
    for method in METHODS:
        before = denials()
        response = call(clients[actor], method, url)
        if actor == "cleo":
            if method in REVIEW_ENDPOINTS[suffix]:
                # Through access control; an empty body may still be invalid, a check is not an adjudication.
                assert response.status_code in (200, 201, 400, 404 if suffix == "audio/" else 400), (method, suffix)
            else:
                assert response.status_code == 405, (method, suffix)
            continue
        expected = 401 if actor == "anonymous" else 404
        assert response.status_code == expected, (actor, method, suffix, response.content)
        assert set(response.json()) == {"code", "detail"} and "hello" not in response.content.decode()
        assert denials() == before + 1, (actor, method, suffix)
        if actor == "dave":  # a checker; the others fail on the role, before any object
            event = AuditEvent.objects.filter(action="access.denied").latest("id")
            assert event.actor_name == actor and event.object_id == item["id"]
    assert Review.objects.get(pk=item["id"]).checker.username == "cleo"


@pytest.mark.parametrize(
    "url, method, expected",
    [
        ("/api/v1/reviews/next/", "post",
         # dave gets nothing (the one submission is cleo's to review): 204, still allowed.
         {"cleo": 201, "dave": 204, "alice": 404, "bob": 404, "sam": 404, "ada": 404, "ingest": 404,
          "anonymous": 401}),
        ("/api/v1/me/feedback/", "get",
         {"cleo": 404, "dave": 404, "alice": 200, "bob": 200, "sam": 404, "ada": 404, "ingest": 404,
          "anonymous": 401}),
        ("/api/v1/reviews/00000000-0000-0000-0000-000000000000/", "get",
         {"cleo": 404, "dave": 404, "alice": 404, "bob": 404, "sam": 404, "ada": 404, "ingest": 404,
          "anonymous": 401}),
        ("/api/v1/reviews/not-a-uuid/accept/", "post",
         {"cleo": 404, "dave": 404, "alice": 404, "bob": 404, "sam": 404, "ada": 404, "ingest": 404,
          "anonymous": 401}),
    ],
    ids=["review-next", "feedback", "missing-review", "malformed-review-id"],
)
def test_review_collection_endpoints(review_world, url, method, expected):
    clients, _ = review_world
    for actor, status in expected.items():
        before = denials()
        response = call(clients[actor], method, url)
        assert response.status_code == status, (actor, response.content)
        assert denials() == before + (1 if status in (401, 404) else 0), actor


@pytest.mark.parametrize(
    "path, expected",
    [
        ("/review/", {"cleo": 200, "alice": 404, "sam": 404, "ada": 404, "anonymous": 302}),
        ("/workspace/feedback/", {"cleo": 404, "alice": 200, "bob": 200, "sam": 404, "ada": 404, "anonymous": 302}),
    ],
)
def test_review_pages(review_world, path, expected):
    clients, _ = review_world
    for actor, status in expected.items():
        response = clients[actor].get(path)
        assert response.status_code == status, actor


def test_checkers_hold_no_model_wide_clip_permission(review_world):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from reviews.models import Review

    clients, item = review_world
    assert not Group.objects.get(name="checker").permissions.exists()
    cleo = get_user_model().objects.get(username="cleo")
    clip = Review.objects.get(pk=item["id"]).clip
    assert not cleo.has_perm("reviews.review_clip") and cleo.has_perm("reviews.review_clip", clip)
    assert clients["cleo"].post(f"/api/v1/reviews/{item['id']}/accept/", {}, format="json").status_code == 200
    assert not get_user_model().objects.get(username="cleo").has_perm("reviews.review_clip", clip)


# --- Reviewer quality (issue 11, part 4): supervisors only --------------------------------
QUALITY_ACTORS = {"alice": 404, "bob": 404, "cleo": 404, "sam": 200, "ada": 404, "ingest": 404, "anonymous": 401}


@pytest.fixture
def quality_world(world, project):
    from reviews import permissions
    from tests.helpers import make_user

    clients, assignment = world
    cleo = make_user("cleo", permissions.CHECKER)
    project.members.add(cleo)
    clients["cleo"] = session_client(cleo)
    return clients


@pytest.mark.parametrize("url", ["/api/v1/quality/", "/api/v1/quality/?project=demo&view=day&sort=clips"])
def test_the_quality_api_is_for_supervisors_only(quality_world, url):
    for actor, status in QUALITY_ACTORS.items():
        for method in METHODS:
            before = denials()
            response = call(quality_world[actor], method, url)
            expected = status if method == "get" or status != 200 else 405
            assert response.status_code == expected, (actor, method, response.content[:200])
            assert denials() == before + (1 if expected in (401, 404) else 0), (actor, method)
            if expected in (401, 404):
                assert set(response.json()) == {"code", "detail"}


def test_the_quality_page_is_for_supervisors_only(quality_world):
    pages = {**QUALITY_ACTORS, "anonymous": 302}
    del pages["ingest"]  # a service token opens no page
    for actor, status in pages.items():
        response = quality_world[actor].get("/console/quality/")
        assert response.status_code == status, actor
        if status == 404:
            assert b"<table" not in response.content
    sam = quality_world["sam"]
    for method in ("post", "put", "patch", "delete"):
        assert getattr(sam, method)("/console/quality/").status_code == 405


def test_pauses_are_lifted_by_admins_only(quality_world, project, bob):
    from reviews.models import ReviewerPause

    pause = ReviewerPause.objects.create(reviewer=bob, project=project, paused_at="2026-11-20T10:00:00Z",
                                         reason="test")
    for actor in ("alice", "bob", "cleo", "sam", "anonymous"):
        response = quality_world[actor].post("/admin/reviews/reviewerpause/",
                                             {"action": "pauses_lift", "_selected_action": [str(pause.pk)]})
        assert response.status_code == 302 and "/login/" in response["Location"], actor
    pause.refresh_from_db()
    assert pause.lifted_at is None
