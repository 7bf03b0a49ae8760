"""Project guidelines (issue 12): an admin's Markdown rendered to HTML the workspace may insert.

Two layers, so that neither alone has to be perfect: Python-Markdown with its raw-HTML
handlers removed (a ``<script>`` typed into the guidelines shows as text, it is never
passed through), then nh3 (the Ammonia sanitizer) with a small allow-list: no images (the
CSP forbids other origins and data: images would be a tracking or spoofing channel), no
attributes but a link's href/title, and only http(s)/mailto links (no javascript:).
"""

from functools import lru_cache

import markdown
import nh3
from markdown.treeprocessors import Treeprocessor

ALLOWED_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "code", "pre", "blockquote",
    "ul", "ol", "li", "a", "table", "thead", "tbody", "tr", "th", "td",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "th": {"align"}, "td": {"align"}}
URL_SCHEMES = {"http", "https", "mailto"}


class _HeadingsUnderPanel(Treeprocessor):
    """The panel's own title is an h2: the guidelines' "# Title" becomes h3, and so on, so the
    page's heading outline stays in order (axe's heading-order rule)."""

    def run(self, root):
        for element in root.iter():
            if len(element.tag) == 2 and element.tag[0] == "h" and element.tag[1] in "123456":
                element.tag = f"h{min(int(element.tag[1]) + 2, 6)}"


def _markdown() -> markdown.Markdown:
    md = markdown.Markdown(extensions=["tables", "sane_lists"], output_format="html")
    md.treeprocessors.register(_HeadingsUnderPanel(md), "headings_under_panel", 0)
    # Raw HTML becomes escaped text instead of markup; nh3 below is the second layer.
    md.preprocessors.deregister("html_block")
    md.inlinePatterns.deregister("html")
    return md


@lru_cache(maxsize=64)
def guidelines_render(*, text: str) -> str:
    """Safe HTML for a project's guidelines; empty string when there are none.

    Cached by text: every lease sends the guidelines and they change rarely.
    """
    if not text.strip():
        return ""
    html = _markdown().convert(text)
    return nh3.clean(
        html, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES, url_schemes=URL_SCHEMES,
        # Links open beside the workspace: following one must not lose the clip in hand.
        link_rel="noopener noreferrer nofollow", set_tag_attribute_values={"a": {"target": "_blank"}},
        strip_comments=True)
