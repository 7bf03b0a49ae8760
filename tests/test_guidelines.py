"""Project guidelines (issue 12): an admin's Markdown reaches the workspace inert."""

import json
from html.parser import HTMLParser

from reviews.guidelines import guidelines_render
from tests.helpers import events, session_client

HOSTILE = """# Transcribing

Write *numbers* as words.<script>alert("md")</script>

<img src="x" onerror="alert('img')">

[help](javascript:alert('link')) [also](JaVaScRiPt:alert(1)) [data](data:text/html,<script>alert(2)</script>)
<a href="javascript:alert('raw')" onclick="alert('click')">raw link</a>

<div style="position:fixed" onmouseover="alert('div')"><iframe src="https://evil.example/"></iframe></div>

![tracker](https://evil.example/pixel.png) [fine](https://example.com/style-guide)
"""


class _Tags(HTMLParser):
    """Every element and attribute a browser would build from the HTML."""

    def __init__(self):
        super().__init__()
        self.tags, self.attributes = set(), []

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attributes.extend(attrs)


def parsed(html: str) -> _Tags:
    parser = _Tags()
    parser.feed(html)
    return parser


def test_hostile_markdown_renders_inert():
    html = guidelines_render(text=HOSTILE)
    found = parsed(html)
    assert found.tags <= {"h3", "p", "em", "a"}, found.tags
    assert {name for name, _ in found.attributes} <= {"href", "title", "target", "rel"}, found.attributes
    assert [value for name, value in found.attributes if name == "href"] == ["https://example.com/style-guide"]
    # Raw HTML shows as text the reviewer can read, never as markup.
    assert "&lt;script&gt;" in html and "&lt;img" in html and "&lt;iframe" in html
    assert "evil.example/pixel" not in html  # images from elsewhere are dropped
    # What Markdown is for still works: a heading under the panel's h2, emphasis, a safe link.
    assert "<h3>Transcribing</h3>" in html and "<em>numbers</em>" in html
    assert ('<a href="https://example.com/style-guide" target="_blank" rel="noopener noreferrer nofollow">fine</a>'
            in html)


def test_empty_guidelines_render_empty():
    assert guidelines_render(text="") == ""
    assert guidelines_render(text="  \n ") == ""


def test_the_assignment_carries_the_guidelines_html(project, ingest, alice):
    project.guidelines = "Say **um** as written.\n\n<script>alert(1)</script>"
    project.save()
    ingest(1)
    response = session_client(alice).post("/api/v1/assignments/next/")
    assert response.status_code == 201, response.content
    html = response.json()["guidelines_html"]
    assert "<strong>um</strong>" in html and "<script" not in html
    # The guidelines are page content, not an audit detail.
    lease = [e for e in events() if e.action == "assignment.lease" and e.actor_id == alice.pk]
    assert len(lease) == 1 and "um" not in json.dumps(lease[0].details)


def test_no_guidelines_is_an_empty_string(project, ingest, alice):
    ingest(1)
    response = session_client(alice).post("/api/v1/assignments/next/")
    assert response.status_code == 201 and response.json()["guidelines_html"] == ""
