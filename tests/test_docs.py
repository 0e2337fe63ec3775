"""The README and docs/ point at things that exist: every relative link and image resolves (anchors
to a heading of the target page), and every repository path quoted in code resolves too."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
CODE_PATH = re.compile(r"`((?:\.\./)?(?:fastdiff|tests|assets|checkpoints|docs)/[\w./-]*)`")


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The anchors of a page's headings (not of comments in its code blocks)."""
    prose = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.M | re.S)
    return {anchor(line.lstrip("#")) for line in prose.splitlines() if line.startswith("#")}


def links(page: Path) -> list[str]:
    return [target for target in LINK.findall(page.read_text()) if not re.match(r"[a-z]+:", target)]


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_links_and_images_resolve(page):
    broken = []
    for target in links(page):
        path, _, fragment = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists() or (fragment and fragment not in anchors(resolved)):
            broken.append(target)
    assert not broken, f"{page.name}: broken links {broken}"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_quoted_paths_exist(page):
    quoted = CODE_PATH.findall(page.read_text())
    base = {ROOT / "README.md": ROOT}.get(page, page.parent)
    missing = [path for path in quoted if not (base / path).exists() and not (ROOT / path).exists()]
    assert not missing, f"{page.name}: quoted paths that do not exist {missing}"
