"""Accounts and sessions: lockout, two-factor sign-in, session limits, ending sessions."""

from datetime import timedelta

import pytest
import time_machine
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from reviews.models import ServiceToken, UserSession
from tests.helpers import INGEST_TOKEN, PASSWORD, events, speech_bytes, totp_now


def web_login(client, username, password=PASSWORD):
    return client.post("/accounts/login/", {"username": username, "password": password})


# --- Lockout -------------------------------------------------------------------------

def test_five_failures_lock_that_username_at_that_address(alice):
    attacker = Client(REMOTE_ADDR="203.0.113.9")
    for _ in range(4):
        assert web_login(attacker, "alice", "wrong").status_code == 200
    assert web_login(attacker, "alice", "wrong").status_code == 429  # the fifth failure locks
    locked = web_login(attacker, "alice")  # even the right password
    assert locked.status_code == 429 and "Too many failed sign-ins" in locked.content.decode()
    assert "_auth_user_id" not in attacker.session
    # alice at her own desk is not locked out by someone else's guessing.
    assert web_login(Client(REMOTE_ADDR="198.51.100.4"), "alice").status_code == 302
    assert len(events("auth.login_failed")) >= 6


def test_lockout_ends_after_the_cool_off(alice):
    attacker = Client(REMOTE_ADDR="203.0.113.9")
    for _ in range(5):
        web_login(attacker, "alice", "wrong")
    assert web_login(attacker, "alice").status_code == 429
    with time_machine.travel(timezone.now() + timedelta(minutes=16)):
        assert web_login(attacker, "alice").status_code == 302


def test_the_api_login_is_locked_out_alike(alice):
    client = APIClient(REMOTE_ADDR="203.0.113.9")
    for attempt in range(5):
        response = client.post("/api/v1/auth/login/", {"username": "alice", "password": "wrong"}, format="json")
        expected = 401 if attempt < 4 else 429
        assert response.status_code == expected and response.json()["code"] in ("invalid_credentials", "locked_out")
    locked = client.post("/api/v1/auth/login/", {"username": "alice", "password": PASSWORD}, format="json")
    assert locked.status_code == 429 and locked.json()["code"] == "locked_out" and locked["Retry-After"] == "900"
    # Failures on the web form and the API count together.
    assert web_login(Client(REMOTE_ADDR="203.0.113.9"), "alice").status_code == 429


@pytest.mark.parametrize("proxies, expected_locked", [(1, "198.51.100.7"), (0, "10.0.0.2")])
def test_the_client_address_behind_a_proxy(settings, alice, proxies, expected_locked):
    settings.TRUSTED_PROXY_COUNT = proxies

    def via_proxy(client_address):
        # The proxy at 10.0.0.2 appends the address it saw; anything before it is client-supplied.
        return Client(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=f"1.2.3.4, {client_address}")

    for _ in range(5):
        web_login(via_proxy("198.51.100.7"), "alice", "wrong")
    assert events("auth.login_failed")[0].client_ip == expected_locked
    other_client = via_proxy("198.51.100.8")
    assert web_login(other_client, "alice").status_code == (302 if proxies else 429)


# --- Two-factor sign-in ------------------------------------------------------------------

def test_supervisor_must_confirm_a_second_factor_on_pages_and_api(sam):
    browser = Client()
    assert web_login(browser, "sam").status_code == 302
    page = browser.get("/")
    assert page.status_code == 302 and page["Location"].startswith("/accounts/mfa/")
    api = browser.get("/api/v1/me/progress/")
    assert api.status_code == 403 and api.json()["code"] == "mfa_required"
    enrolment = browser.get("/accounts/mfa/")
    assert "Secret key" in enrolment.content.decode()

    assert browser.post("/accounts/mfa/", {"token": "000000"}).status_code == 200
    assert events("auth.mfa")[-1].outcome == "denied"
    from django_otp.oath import totp
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.get(user=sam)
    # django-otp slows down guessing after a wrong code: wait out the throttle.
    with time_machine.travel(timezone.now() + timedelta(seconds=5), tick=False):
        code = f"{totp(device.bin_key):06d}"
        assert browser.post("/accounts/mfa/?next=/", {"token": code}).status_code == 302
    assert TOTPDevice.objects.get(user=sam).confirmed
    assert events("auth.mfa")[-1].outcome == "allowed"
    home = browser.get("/")
    assert home.status_code == 302 and home["Location"] == "/console/"
    assert browser.get("/console/").status_code == 200
    # A supervisor is not a reviewer: now the API answers as it would for any non-reviewer.
    assert browser.get("/api/v1/me/progress/").status_code == 404


def test_admin_site_needs_the_second_factor_too(ada):
    browser = Client()
    web_login(browser, "ada")
    assert browser.get("/admin/").status_code == 302
    code = totp_now(ada)
    browser.post("/accounts/mfa/", {"token": code})
    assert browser.get("/admin/").status_code == 200


def test_api_login_asks_supervisors_for_the_code(sam):
    client = APIClient()
    without = client.post("/api/v1/auth/login/", {"username": "sam", "password": PASSWORD}, format="json")
    assert without.status_code == 401 and without.json()["code"] == "mfa_invalid"
    assert "_auth_user_id" not in client.session
    ok = client.post("/api/v1/auth/login/", {"username": "sam", "password": PASSWORD, "otp_token": totp_now(sam)},
                     format="json")
    assert ok.status_code == 200 and {k: ok.json()[k] for k in ("username", "role")} == {
        "username": "sam", "role": "supervisor"}
    assert ok.json()["csrf_token"]


def test_reviewers_need_the_second_factor_only_where_the_project_says_so(project, alice):
    browser = Client()
    web_login(browser, "alice")
    assert browser.get("/workspace/").status_code == 200
    project.require_reviewer_mfa = True
    project.save()
    # The session remembered "no second factor needed": switching it on signs members out,
    # and the next sign-in asks for the code.
    assert browser.get("/workspace/").status_code == 302
    web_login(browser, "alice")
    assert browser.get("/workspace/").status_code == 302
    browser.post("/accounts/mfa/", {"token": totp_now(alice)})
    assert browser.get("/workspace/").status_code == 200


def test_a_role_taken_away_ends_the_sessions_that_remembered_it(project, alice):
    browser = Client()
    web_login(browser, "alice")
    assert browser.get("/workspace/").status_code == 200
    alice.groups.clear()
    assert browser.get("/workspace/").status_code == 302  # signed out, back to the sign-in page
    assert not UserSession.objects.filter(user=alice).exists()


# --- Sessions --------------------------------------------------------------------------

def test_sign_in_gives_a_new_session_id(alice):
    browser = Client()
    browser.get("/accounts/login/")
    browser.cookies["sessionid"] = "attacker-chosen-session-key-0123456789"
    web_login(browser, "alice")
    assert browser.cookies["sessionid"].value != "attacker-chosen-session-key-0123456789"


def test_idle_sessions_end_after_thirty_minutes(alice):
    browser = Client()
    web_login(browser, "alice")
    start = timezone.now()
    with time_machine.travel(start + timedelta(minutes=25)):
        assert browser.get("/workspace/").status_code == 200  # activity keeps it alive
    with time_machine.travel(start + timedelta(minutes=50)):
        assert browser.get("/workspace/").status_code == 200
    with time_machine.travel(start + timedelta(minutes=50 + 31)):
        assert browser.get("/workspace/").status_code == 302


def test_sessions_end_twelve_hours_after_sign_in_however_active(alice):
    browser = Client()
    web_login(browser, "alice")
    start = timezone.now()
    for minutes in range(20, 12 * 60, 20):
        with time_machine.travel(start + timedelta(minutes=minutes)):
            assert browser.get("/workspace/").status_code == 200, minutes
    with time_machine.travel(start + timedelta(hours=12, minutes=5)):
        assert browser.get("/workspace/").status_code == 302


def test_signing_out_ends_every_session_of_the_user(alice):
    laptop, phone = Client(), Client()
    web_login(laptop, "alice")
    web_login(phone, "alice")
    assert phone.get("/workspace/").status_code == 200
    laptop.post("/accounts/logout/")
    assert phone.get("/workspace/").status_code == 302
    assert Session.objects.count() == 0
    assert events("auth.logout")[0].details == {"sessions_ended": 2}


def test_deactivation_ends_sessions_and_the_service_token(project, alice, ingest_user):
    browser = Client()
    web_login(browser, "alice")
    alice.is_active = False
    alice.save()
    assert browser.get("/workspace/").status_code == 302
    ingest_user.is_active = False
    ingest_user.save()
    assert ServiceToken.objects.get(user=ingest_user).revoked_at is not None
    ingest_user.is_active = True
    ingest_user.save()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {INGEST_TOKEN}")
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = client.post("/api/v1/clips/", {"audio": SimpleUploadedFile("a.flac", speech_bytes())},
                           format="multipart")
    assert response.status_code == 401
