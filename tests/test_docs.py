"""The documentation stays true: the generated configuration reference matches the code, and every relative link and
image in README.md and docs/**/*.md points at a file that exists (and, with #anchor, at a heading in it)."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"

_spec = importlib.util.spec_from_file_location("config_reference", REPO / "tools" / "config_reference.py")
config_reference = sys.modules.setdefault("config_reference", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(config_reference)


def test_configuration_reference_is_current():
    expected = config_reference.generate()
    current = (DOCS / "configuration.md").read_text()
    assert current == expected, "docs/configuration.md is stale: run python tools/config_reference.py"


def test_configuration_reference_lists_every_key():
    text = (DOCS / "configuration.md").read_text()
    for key in ("data.root", "train.max_steps", "eval.every", "model.tricks.ema_decay", "model.lambda_l1",
                "model.lambda_identity", "model.domain_weight"):
        assert f"`{key}`" in text


def test_configuration_reference_reads_source_comments():
    comments = config_reference.field_comments(config_reference.config_lib.TrainConfig)
    assert comments["decay_steps"].startswith("learning rate constant")
    assert "rollback" in comments["on_nonfinite"]  # a comment block above the field, not beside it
    assert "max_steps" not in comments or comments["max_steps"] == ""


# ---- links ----

LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~)")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, markup and punctuation dropped, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip())  # links keep their text
    text = text.lower().replace("`", "").replace("*", "")
    text = re.sub(r"[^\w\- ]", "", text)  # keeps letters, digits, _, -, spaces (unicode letters too)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    in_fence = False
    for line in path.read_text().splitlines():
        if FENCE.match(line.strip()):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            base = slug(match.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            out.add(base if n == 0 else f"{base}-{n}")
    return out


def links(path: Path) -> list[tuple[int, str]]:
    """(line number, target) of every markdown link and image outside code blocks and inline code."""
    found = []
    in_fence = False
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if FENCE.match(line.strip()):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        line = re.sub(r"`[^`]*`", "", line)
        found += [(number, m.group(1)) for m in LINK.finditer(line)]
        found += [(number, m.group(1)) for m in re.finditer(r"<img[^>]*\ssrc=\"([^\"]+)\"", line)]
    return found


def broken_links(path: Path) -> list[str]:
    problems = []
    for number, target in links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto: ...
            continue
        file_part, _, anchor = target.partition("#")
        destination = (path.parent / file_part).resolve() if file_part else path
        where = f"{path.relative_to(REPO)}:{number}: {target}"
        if not destination.exists():
            problems.append(f"{where} (no such file)")
        elif anchor and destination.suffix == ".md" and anchor not in anchors(destination):
            problems.append(f"{where} (no heading #{anchor})")
    return problems


def doc_pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def test_slug_is_githubs():
    assert slug("Horse → zebra on a CPU: quality against training time") == \
        "horse--zebra-on-a-cpu-quality-against-training-time"
    assert slug("The studio: `translate serve`") == "the-studio-translate-serve"
    assert slug("Batch 4: the swings calmed (2026-12-05, same machine)") == \
        "batch-4-the-swings-calmed-2026-12-05-same-machine"


def test_link_checker_finds_broken_links(tmp_path):
    (tmp_path / "there.md").write_text("# A heading\n\ntext\n")
    page = tmp_path / "page.md"
    page.write_text("[ok](there.md) [ok](there.md#a-heading) ![gone](gone.png) [bad](there.md#nope)\n"
                    "`[code](ignored.md)`\n```\n[fenced](ignored.md)\n```\n[web](https://example.com)\n")
    global REPO
    saved, REPO = REPO, tmp_path
    try:
        problems = broken_links(page)
    finally:
        REPO = saved
    assert problems == ["page.md:1: gone.png (no such file)", "page.md:1: there.md#nope (no heading #nope)"]


@pytest.mark.parametrize("page", doc_pages(), ids=lambda p: p.relative_to(DOCS).as_posix())
def test_docs_links_resolve(page):
    assert broken_links(page) == []


def test_readme_links_resolve():
    assert broken_links(REPO / "README.md") == []


def test_every_test_that_reliability_md_names_exists():
    text = (DOCS / "reliability.md").read_text()
    named = re.findall(r"`([\w/]+\.py)::(test_\w+)`", text)
    assert len(named) > 40
    missing = [f"{path}::{name}" for path, name in named
               if not re.search(rf"def {name}\b", (REPO / "tests" / path).read_text())]
    assert missing == []
