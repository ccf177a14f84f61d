"""A campaign description is Markdown, rendered on the detail page with everything dangerous removed."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.test import Client

from core.markdown import render_markdown


class _MarkdownBlock(HTMLParser):
    """Collects the tags, attributes and text inside ``<div class="markdown">`` of a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.depth = 0
        self.found = False
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        if self.depth:
            if tag not in ("br", "hr", "img", "input"):
                self.depth += 1
            self.tags.append((tag, dict(attrs)))
        elif tag == "div" and ("class", "markdown") in attrs:
            self.depth, self.found = 1, True

    def handle_startendtag(self, tag, attrs):
        if self.depth:
            self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        if self.depth and tag not in ("br", "hr", "img", "input"):
            self.depth -= 1

    def handle_data(self, data):
        if self.depth:
            self.text.append(data)


def _description_on_page(client: Client, campaign) -> _MarkdownBlock:
    response = client.get(f"/campaigns/{campaign.pk}/")
    assert response.status_code == 200
    block = _MarkdownBlock()
    block.feed(response.content.decode())
    assert block.found, "the description block is missing from the page"
    return block


@pytest.fixture
def page(owner) -> Client:
    client = Client()
    client.force_login(owner)
    return client


def test_the_description_markdown_is_rendered_on_the_detail_page(page, make_campaign):
    campaign = make_campaign(
        description="## Plan\n\nRun **step1** first, then *step2*.\n\n- tract 9813\n- tract 9697\n\n"
        "See [the ticket](https://rubinobs.atlassian.net/browse/DM-1) and `pipetask run`.\n\n"
        "| band | visits |\n|---|---|\n| g | 12 |\n"
    )
    block = _description_on_page(page, campaign)
    tags = [tag for tag, _ in block.tags]
    for tag in ("h2", "strong", "em", "ul", "li", "a", "code", "table", "td"):
        assert tag in tags, tag
    link = next(attrs for tag, attrs in block.tags if tag == "a")
    assert link["href"] == "https://rubinobs.atlassian.net/browse/DM-1"
    assert set(link["rel"].split()) == {"noopener", "noreferrer", "nofollow"}
    assert "Run step1 first" in "".join(block.text)


DANGEROUS = [
    pytest.param("Before <script>alert('xss')</script> after", id="script-tag"),
    pytest.param('<img src="x" onerror="alert(1)">', id="img-onerror"),
    pytest.param('<p onclick="alert(1)">click me</p>', id="onclick"),
    pytest.param("[click me](javascript:alert(1))", id="markdown-javascript-link"),
    pytest.param('<a href="javascript:alert(1)">click me</a>', id="html-javascript-link"),
    pytest.param('<a href="JaVaScRiPt:alert(1)">click me</a>', id="mixed-case-javascript"),
    pytest.param('<a href="jav&#x61;script:alert(1)">click me</a>', id="entity-javascript"),
    pytest.param('<a href=" javascript:alert(1)">click me</a>', id="space-javascript"),
    pytest.param("[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)", id="data-uri"),
    pytest.param('<iframe src="https://evil.example"></iframe>', id="iframe"),
    pytest.param('<svg onload="alert(1)"><circle r="1"/></svg>', id="svg-onload"),
    pytest.param('<style>body{display:none}</style><div style="position:fixed">x</div>', id="style"),
    pytest.param('<form action="https://evil.example"><input name="p"></form>', id="form"),
    pytest.param("<scr<script>ipt>alert(1)</script>", id="nested-script"),
]


@pytest.mark.parametrize("description", DANGEROUS)
def test_dangerous_html_in_the_description_is_stripped_on_the_detail_page(page, make_campaign, description):
    campaign = make_campaign(description=description)
    block = _description_on_page(page, campaign)
    allowed = {"p", "a", "strong", "em", "div", "span", "code", "pre"}
    for tag, attrs in block.tags:
        assert tag in allowed, f"<{tag}> survived"
        assert not [name for name in attrs if name.startswith("on")], attrs
        assert "style" not in attrs
        href = (attrs.get("href") or "").strip().lower()
        assert href == "" or href.startswith(("http://", "https://", "mailto:")), href


@pytest.mark.parametrize("description", DANGEROUS)
def test_render_markdown_never_returns_script_handlers_or_javascript_urls(description):
    html = str(render_markdown(description)).lower()
    assert "<script" not in html
    assert "onerror=" not in html and "onclick=" not in html and "onload=" not in html
    assert 'href="javascript:' not in html
    assert "<iframe" not in html and "<svg" not in html and "<form" not in html and "<style" not in html


def test_other_text_fields_are_escaped_not_rendered(page, make_campaign):
    campaign = make_campaign(reason="<b>bold?</b> <script>alert(1)</script>", scope="<i>tract</i>")
    html = page.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert "&lt;b&gt;bold?&lt;/b&gt;" in html
    assert "<script>alert(1)</script>" not in html
    assert "&lt;i&gt;tract&lt;/i&gt;" in html


def test_a_javascript_link_in_the_links_field_is_refused_before_it_reaches_a_page(owner, demo_repo):
    from django.core.exceptions import ValidationError

    from campaigns import services
    from tests.conftest import definition

    with pytest.raises(ValidationError) as excinfo:
        services.campaign_create(user=owner, data=definition(links=[{"label": "x", "url": "javascript:alert(1)"}]))
    assert "links[0].url" in excinfo.value.message_dict
