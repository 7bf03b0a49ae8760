"""Languages (issue 12): the Arabic catalogues are complete, compiled and current; every page
template marks its text; a reviewer's choice of language is kept and mirrors the page; error
details follow the language while their codes never do.

The catalogue checks read the .po files with a small reader of their own (no extra package)
and run GNU gettext (makemessages, msgfmt) on a copy of the project, so a string added
without a translation fails here, not in front of an Arabic-speaking reviewer."""

import ast
import gettext
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.template.base import Lexer, TokenType

from reviews.models import AuditEvent
from tests.helpers import session_client

ROOT = Path(__file__).resolve().parent.parent
LOCALE = ROOT / "locale"
DOMAINS = ("django", "djangojs")
# The same arguments as `make messages`.
MAKEMESSAGES_ARGS = ["--ignore=tests", "--ignore=var", "--ignore=docs", "--ignore=.venv", "--add-location=file",
                     "--no-obsolete"]


def po_entries(path: Path) -> list[dict]:
    """Each entry of a .po file: msgid, msgid_plural, msgstr forms and flags (header included)."""
    entries, entry, field = [], None, None
    for line in path.read_text(encoding="utf-8").splitlines() + [""]:
        line = line.strip()
        if not line:
            if entry:
                entries.append(entry)
            entry = None
            continue
        if line.startswith("#~"):  # an obsolete entry: not in the catalogue
            continue
        entry = entry or {"flags": set(), "msgid": "", "msgid_plural": None, "msgstr": {}}
        if line.startswith("#,"):
            entry["flags"] |= {flag.strip() for flag in line[2:].split(",")}
        elif line.startswith("#"):
            continue
        elif match := re.match(r"(msgctxt|msgid_plural|msgid|msgstr)(?:\[(\d+)\])? (\".*\")$", line):
            name, index, text = match.groups()
            field = ("msgstr", int(index or 0)) if name == "msgstr" else (name, None)
            if name == "msgstr":
                entry["msgstr"][field[1]] = ast.literal_eval(text)
            else:
                entry[name] = ast.literal_eval(text)
        elif line.startswith('"'):
            if field[0] == "msgstr":
                entry["msgstr"][field[1]] += ast.literal_eval(line)
            else:
                entry[field[0]] += ast.literal_eval(line)
    return entries


def untranslated(entries: list[dict]) -> list[str]:
    """The msgids that would show English (or a guess) to an Arabic reader."""
    return [entry["msgid"] for entry in entries if entry["msgid"] and (
        "fuzzy" in entry["flags"] or not entry["msgstr"] or not all(entry["msgstr"].values())
        or (entry["msgid_plural"] is not None and len(entry["msgstr"]) != 6))]


def test_the_second_language_is_arabic_and_right_to_left():
    from django.utils.translation import get_language_info

    assert [code for code, _ in settings.LANGUAGES] == ["en", "ar"]
    assert get_language_info("ar")["bidi"] is True
    assert settings.LOCALE_PATHS == [LOCALE]


@pytest.mark.parametrize("domain", DOMAINS)
def test_every_arabic_entry_is_translated_and_none_is_fuzzy(domain):
    entries = po_entries(LOCALE / "ar" / "LC_MESSAGES" / f"{domain}.po")
    header = entries[0]
    assert header["msgid"] == "" and "fuzzy" not in header["flags"]
    assert "Language: ar\n" in header["msgstr"][0] and "nplurals=6;" in header["msgstr"][0]
    assert len(entries) > 50  # the catalogue is the real one, not an empty file
    assert untranslated(entries) == []


def test_the_reader_sees_a_missing_or_fuzzy_translation(tmp_path):
    # The check above must be able to fail: an empty, a fuzzy and a short plural entry.
    po = tmp_path / "x.po"
    po.write_text('msgid ""\nmsgstr "Language: ar\\n"\n\nmsgid "Play"\nmsgstr ""\n\n#, fuzzy\nmsgid "Pause"\n'
                  'msgstr "x"\n\nmsgid "%s clip"\nmsgid_plural "%s clips"\nmsgstr[0] "a"\nmsgstr[1] "b"\n\n'
                  'msgid "Skip"\nmsgstr "تخطٍّ"\n', encoding="utf-8")
    assert untranslated(po_entries(po)) == ["Play", "Pause", "%s clip"]


def _gettext_tools():
    missing = [tool for tool in ("xgettext", "msgmerge", "msguniq", "msgfmt") if not shutil.which(tool)]
    assert not missing, f"GNU gettext is needed for these tests (make system-test-deps installs it): {missing}"


def test_makemessages_finds_no_new_or_changed_string(tmp_path):
    """Run makemessages on a copy of the project: every string the code and templates mark now
    must already be in the committed catalogue, translated (a changed string comes back fuzzy)."""
    _gettext_tools()
    copy = tmp_path / "project"
    copy.mkdir()
    for name in ("annotator", "reviews", "templates", "static", "locale"):
        shutil.copytree(ROOT / name, copy / name, ignore=shutil.ignore_patterns("__pycache__", "*.mo"))
    shutil.copy(ROOT / "manage.py", copy / "manage.py")
    for domain in DOMAINS:
        result = subprocess.run(  # noqa: S603 - fixed arguments
            [sys.executable, "manage.py", "makemessages", "-l", "ar", "-d", domain, *MAKEMESSAGES_ARGS],
            cwd=copy, capture_output=True, text=True, timeout=120, check=False)
        assert result.returncode == 0, result.stderr
        fresh = po_entries(copy / "locale" / "ar" / "LC_MESSAGES" / f"{domain}.po")
        committed = po_entries(LOCALE / "ar" / "LC_MESSAGES" / f"{domain}.po")
        assert untranslated(fresh) == [], f"{domain}: translate these (README, Languages)"
        assert {e["msgid"] for e in fresh} == {e["msgid"] for e in committed}, f"{domain}: run `make messages`"


@pytest.mark.parametrize("domain", DOMAINS)
def test_the_compiled_catalogues_are_up_to_date(tmp_path, domain):
    _gettext_tools()
    po = LOCALE / "ar" / "LC_MESSAGES" / f"{domain}.po"
    fresh = tmp_path / f"{domain}.mo"
    subprocess.run(["msgfmt", "--check", "-o", str(fresh), str(po)], check=True, timeout=60)  # noqa: S603,S607
    with fresh.open("rb") as expected, (po.with_suffix(".mo")).open("rb") as committed:
        assert gettext.GNUTranslations(committed)._catalog == gettext.GNUTranslations(expected)._catalog, (
            f"run `make compile-messages` ({po.name} changed since its .mo was compiled)")


# --- Templates: no text outside {% translate %} / {% blocktranslate %} ---------------------

VISIBLE_ATTRIBUTES = {"aria-label", "title", "placeholder", "alt"}
NOT_WORDS = {"code", "kbd", "script", "style"}  # commands, key names, code


class _Text(HTMLParser):
    def __init__(self):
        super().__init__()
        self.found, self.skipping = [], 0

    def handle_starttag(self, tag, attrs):
        self.skipping += tag in NOT_WORDS
        self.found += [f"{name}={value!r}" for name, value in attrs
                       if name in VISIBLE_ATTRIBUTES and value and re.search(r"[A-Za-z]{2}", value)]

    def handle_endtag(self, tag):
        self.skipping -= tag in NOT_WORDS

    def handle_data(self, data):
        if not self.skipping and re.search(r"[A-Za-z]{2}", data):
            self.found.append(data.strip())


def plain_text(source: str) -> list[str]:
    """Words a template shows that no translate tag covers (variables and tags removed)."""
    kept, inside_block = [], False
    for token in Lexer(source).tokenize():
        if token.token_type == TokenType.BLOCK:
            name = token.contents.split()[0]
            inside_block = name in ("blocktranslate", "blocktrans") or (
                inside_block and name not in ("endblocktranslate", "endblocktrans"))
        elif token.token_type == TokenType.TEXT and not inside_block:
            kept.append(token.contents)
    parser = _Text()
    parser.feed("".join(kept))
    return parser.found


def test_page_templates_mark_all_their_text_for_translation():
    # The admin's own templates are Django's (translated by Django) and stay as they are.
    found = {str(path.relative_to(ROOT)): plain_text(path.read_text())
             for path in sorted((ROOT / "templates").rglob("*.html")) if "admin" not in path.parts}
    assert len(found) > 20
    assert {path: words for path, words in found.items() if words} == {}


def test_the_template_check_sees_plain_text():
    assert plain_text('<p title="Open it">Hello {{ name }}</p>{% translate "Fine" %}<kbd>K</kbd>') == [
        "title='Open it'", "Hello"]
    assert plain_text("{% blocktranslate %}Hello {{ name }}{% endblocktranslate %}<b>Bye</b>") == ["Bye"]


# --- The language in use --------------------------------------------------------------------

def test_choosing_arabic_keeps_it_and_mirrors_the_page(client, alice):
    client.force_login(alice)
    response = client.post("/i18n/setlang/", {"language": "ar", "next": "/workspace/"})
    assert response.status_code == 302 and response["Location"] == "/workspace/"
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "ar"
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME]["httponly"]
    page = client.get("/workspace/").content.decode()
    assert '<html lang="ar" dir="rtl">' in page
    assert "فرّغ هذا المقطع" in page and "اختصارات لوحة المفاتيح" in page
    assert 'value="en" lang="en" class="link-button">English</button>' in page  # the way back, in English
    catalogue = client.get("/jsi18n/").content.decode()
    ready = "المقطع جاهز".encode("ascii", "backslashreplace").decode()  # JSON-escaped in the catalogue
    assert "django.pluralidx" in catalogue and ready in catalogue  # the scripts' words come in Arabic too


def test_english_stays_the_default(client, alice):
    client.force_login(alice)
    page = client.get("/workspace/", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9").content.decode()
    assert '<html lang="en" dir="ltr">' in page and "Transcribe this clip" in page
    assert 'value="ar" lang="ar" class="link-button">العربيّة</button>' in page


def test_a_browser_asking_for_arabic_gets_it_before_choosing(client, db):
    page = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="ar").content.decode()
    assert 'dir="rtl"' in page and "تسجيل الدخول" in page


def test_error_details_follow_the_language_and_codes_do_not(alice, ingest):
    from reviews import leases

    client = session_client(alice)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "ar"
    response = client.get("/api/v1/assignments/00000000-0000-0000-0000-000000000000/")
    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "detail": "غير موجود."}
    ingest(1)
    assignment = leases.assignment_next(reviewer=alice)
    refused = client.post(f"/api/v1/assignments/{assignment.pk}/submit/", {"text": "x", "labels": {}}, format="json")
    assert refused.status_code == 400
    assert refused.json() == {"code": "invalid_labels", "detail": "بعض الوسوم غير صالحة.",
                              "fields": {"speaker": "مطلوب."}}  # the page compares this word in its own catalogue
    english = session_client(alice).get("/api/v1/assignments/00000000-0000-0000-0000-000000000000/")
    assert english.json() == {"code": "not_found", "detail": "Not found."}
    # The audit trail records refusals by code: no Arabic word enters it.
    denied = list(AuditEvent.objects.filter(outcome="denied").values_list("details", flat=True))
    assert denied and not any(re.search("[\u0600-\u06ff]", str(details)) for details in denied)


def test_someone_waiting_for_a_second_factor_can_switch_language(sam, client):
    client.force_login(sam)  # a supervisor: the second factor is still owed
    assert client.get("/console/").status_code == 302
    switched = client.post("/i18n/setlang/", {"language": "ar", "next": "/accounts/mfa/"})
    assert switched.status_code == 302 and switched["Location"] == "/accounts/mfa/"
    assert client.get("/jsi18n/").status_code == 200
    assert "أكّد أنك أنت" in client.get("/accounts/mfa/").content.decode()


def test_arabic_plurals_in_python_take_all_six_forms(alice):
    from django.utils import translation
    from django.utils.translation import ngettext

    with translation.override("ar"):
        forms = [ngettext("Too many failed sign-ins. Try again in %(count)d minute.",
                          "Too many failed sign-ins. Try again in %(count)d minutes.", n) % {"count": n}
                 for n in (0, 1, 2, 3, 11, 100)]
    assert len(set(forms)) == 6 and forms[1].endswith("دقيقة.") and forms[2].endswith("دقيقتين.")


def test_a_signed_out_404_offers_no_switch_and_opens_no_session(client, alice, db):
    stray = client.get("/nowhere/")
    assert stray.status_code == 404 and settings.SESSION_COOKIE_NAME not in stray.cookies
    assert 'name="language"' not in stray.content.decode()
    client.force_login(alice)
    assert 'name="language"' in client.get("/nowhere/").content.decode()


def test_every_console_page_renders_in_arabic(project, ingest, alice, sam, settings):
    """Each console page, with an escalation and an anomaly to show, in Arabic: the
    translations' placeholders and plural forms all fit their templates."""
    from reviews import leases, services
    from reviews.audit import audit_denied

    settings.ANOMALY_WORK_START_HOUR, settings.ANOMALY_WORK_END_HOUR = 0, 0  # no off-hours noise
    ingest(1)
    assignment = leases.assignment_next(reviewer=alice)
    escalation = services.clip_flag(reviewer=alice, assignment_id=assignment.pk, reason="a person in distress")
    for _ in range(3):
        audit_denied(actor=alice, attempted="api", object_type="assignment", reason="not_yours")
    client = session_client(sam)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "ar"
    pages = {}
    for path in ("/console/", "/console/audit/?reviewer=alice", "/console/audit/?since=nonsense",
                 f"/console/clips/{assignment.clip_id}/", "/console/reviewers/alice/", "/console/anomalies/",
                 "/console/escalations/", f"/console/escalations/{escalation.pk}/", "/console/quality/",
                 "/console/quality/?view=day", "/console/quality/?days=0", "/console/anomalies/?kind=denied_attempts",
                 "/console/anomalies/?kind=nonsense", "/console/reviewers/alice/?after=nonsense"):
        response = client.get(path)
        pages[path] = response.content.decode()
        assert response.status_code in (200, 400), path
        assert '<html lang="ar" dir="rtl">' in pages[path], path
    assert "رُفض طلب alice 3 مرات في" in pages["/console/anomalies/"]  # Arabic's form for 3-10
    assert ">3 أحداث</a>" in pages["/console/anomalies/"]
    assert "مفتوح" in pages[f"/console/escalations/{escalation.pk}/"]  # the status word, translated
    assert "بعض حقول البحث غير صالحة." in pages["/console/audit/?since=nonsense"]
    assert "عدد أيام من 1 إلى" in pages["/console/quality/?days=0"]
    assert "الصفحة 1، " in pages["/console/anomalies/?kind=denied_attempts"]  # one kind, paged
    assert "رابط الحالات غير المعتادة هذا غير صالح." in pages["/console/anomalies/?kind=nonsense"]
    assert "هذا اليوم من بدايته" in pages["/console/reviewers/alice/?after=nonsense"]  # a bad timeline cursor


@pytest.mark.parametrize("path,script", [("/workspace/", "workspace.js"), ("/review/", "review.js"),
                                         ("/console/escalations/", "console.js")])
def test_the_player_loads_after_the_catalogue_and_before_the_page_script(path, script, alice, sam, db):
    """player.js takes its words from the catalogue as it loads: deferred scripts run in
    document order, so the catalogue must come first."""
    from reviews import permissions
    from tests.helpers import make_user

    user = {"/workspace/": alice, "/review/": make_user("carol", permissions.CHECKER)}.get(path, sam)
    page = session_client(user).get(path).content.decode()
    order = [page.find(name) for name in ('src="/jsi18n/"', "reviews/player.js", f"reviews/{script}")]
    assert -1 not in order and order == sorted(order), order


def test_the_checker_and_feedback_pages_render_in_arabic(alice, db):
    from reviews import permissions
    from tests.helpers import make_user

    checker = make_user("carol", permissions.CHECKER)
    for user, path, heading in ((checker, "/review/", "دقّق هذا التفريغ"), (alice, "/workspace/feedback/", "ملاحظاتي")):
        client = session_client(user)
        client.cookies[settings.LANGUAGE_COOKIE_NAME] = "ar"
        page = client.get(path).content.decode()
        assert '<html lang="ar" dir="rtl">' in page and heading in page, path
