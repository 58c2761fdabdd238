"""A project's page of a Python package index (the "simple" API): its files, their URLs and sha256 digests.

Both forms are read: HTML (PEP 503; each file an `<a href="URL#sha256=HEX">FILENAME</a>`) and JSON (PEP 691;
`files: [{filename, url, hashes: {sha256}}]`). Relative URLs are resolved against the page's own URL, so
any index that follows the standard works, including a `file://` directory tree.
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass
from html.parser import HTMLParser

JSON_MEDIA_TYPE = "application/vnd.pypi.simple.v1+json"


class IndexError_(Exception):
    """The page is not a simple-index project page."""


@dataclass(frozen=True)
class IndexFile:
    filename: str
    url: str  # without the #sha256= fragment
    sha256: str  # "" when the index gives none
    yanked: bool = False


def project_url(index_url: str, project: str) -> str:
    """The project's page under `index_url` (PEP 503: /<normalized name>/)."""
    return index_url.rstrip("/") + "/" + project + "/"


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.anchors: list[tuple[dict[str, str | None], str]] = []
        self._current: dict[str, str | None] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._current, self._text = dict(attrs), []

    def handle_data(self, data: str) -> None:
        if self._current is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._current is not None:
            self.anchors.append((self._current, "".join(self._text).strip()))
            self._current = None


def _split_fragment(page_url: str, href: str) -> tuple[str, str]:
    url, _, fragment = urllib.parse.urljoin(page_url, href).partition("#")
    digest = ""
    for part in fragment.split("&"):
        algorithm, _, value = part.partition("=")
        if algorithm == "sha256":
            digest = value.lower()
    return url, digest


def parse_page(body: bytes, page_url: str) -> list[IndexFile]:
    """The files a project page lists, HTML or JSON (told apart by the content itself)."""
    text = body.decode("utf-8", errors="replace")
    if text.lstrip().startswith("{"):
        return _parse_json(text, page_url)
    parser = _Anchors()
    parser.feed(text)
    files = []
    for attrs, label in parser.anchors:
        href = attrs.get("href")
        if not href:
            continue
        url, digest = _split_fragment(page_url, href)
        filename = label or urllib.parse.unquote(url.rsplit("/", 1)[-1])
        files.append(IndexFile(filename, url, digest, "data-yanked" in attrs))
    return files


def _parse_json(text: str, page_url: str) -> list[IndexFile]:
    try:
        data = json.loads(text)
        files = []
        for entry in data["files"]:
            url, fragment_digest = _split_fragment(page_url, entry["url"])
            digest = (entry.get("hashes") or {}).get("sha256", fragment_digest).lower()
            files.append(IndexFile(entry["filename"], url, digest, bool(entry.get("yanked"))))
        return files
    except (ValueError, KeyError, TypeError) as error:
        raise IndexError_(f"{page_url}: not a PEP 691 project page: {error}") from error
