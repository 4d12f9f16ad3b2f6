"""Every relative link in the README and the docs points to a file (and heading) that exists."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCUMENTS = sorted(
    [REPO / "README.md", *(REPO / "docs").glob("*.md"), *(REPO / "bench").glob("*.md")]
)

FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.MULTILINE)
EXTERNAL = ("http://", "https://", "mailto:")


def links(text: str) -> Iterator[str]:
    """The targets of the Markdown links in ``text``, code blocks and code spans left out."""
    prose = FENCE.sub("", text)
    # A link's text may be code ([`chute run`](...)): keep the brackets, drop the code.
    prose = INLINE_CODE.sub("code", prose)
    yield from LINK.findall(prose)


def anchors(text: str) -> set[str]:
    """GitHub's heading ids: lowercase, punctuation dropped, spaces to '-', repeats numbered."""
    seen: dict[str, int] = {}
    ids = set()
    for heading in HEADING.findall(FENCE.sub("", text)):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        ids.add(slug if count == 0 else f"{slug}-{count}")
    return ids


def broken_links(document: Path) -> list[str]:
    problems = []
    for target in links(document.read_text(encoding="utf-8")):
        if target.startswith(EXTERNAL):
            continue
        path, _, fragment = target.partition("#")
        resolved = (document.parent / path).resolve() if path else document
        if not resolved.exists():
            problems.append(f"{target}: no such file {resolved}")
        elif (
            fragment
            and resolved.suffix == ".md"
            and fragment not in anchors(resolved.read_text(encoding="utf-8"))
        ):
            problems.append(f"{target}: no heading #{fragment} in {resolved.name}")
    return problems


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves(document: Path) -> None:
    # GIVEN a Markdown document of the repository
    # WHEN every relative link in it is followed
    problems = broken_links(document)
    # THEN each reaches an existing file, and an existing heading when it names one
    assert problems == []


def test_the_readme_links_to_every_document_in_docs() -> None:
    # GIVEN the README (the front page) and the documents in docs/
    linked = {
        (REPO / target.partition("#")[0]).resolve()
        for target in links((REPO / "README.md").read_text(encoding="utf-8"))
        if not target.startswith(EXTERNAL)
    }
    # WHEN / THEN every document in docs/ is reachable from the front page
    assert sorted(p.name for p in (REPO / "docs").glob("*.md") if p.resolve() not in linked) == []


def test_a_broken_link_or_heading_is_reported(tmp_path: Path) -> None:
    # GIVEN a document with a good link, a missing file, a missing heading and links in code
    (tmp_path / "other.md").write_text("# Other\n\n## `chute run` — the main job\n")
    document = tmp_path / "doc.md"
    document.write_text(
        "# Doc\n\n[ok](other.md#chute-run--the-main-job) [self](#doc) [web](https://x.example)\n"
        "[gone](missing.md) [no heading](other.md#nowhere)\n"
        "`[code](missing-in-code.md)`\n\n```\n[fenced](missing-in-fence.md)\n```\n"
    )
    # WHEN it is checked
    problems = broken_links(document)
    # THEN exactly the broken prose links are reported
    assert len(problems) == 2
    assert problems[0].startswith("missing.md: no such file")
    assert problems[1] == "other.md#nowhere: no heading #nowhere in other.md"
