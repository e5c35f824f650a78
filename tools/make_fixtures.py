"""Write the bundled fixtures/ folder: small good, empty and broken documents.

Run from the repository root: ``python tools/make_fixtures.py``. The output is
committed; EXPECTED.tsv (same columns as the shared corpus's MANIFEST.tsv)
says what indexing each file must give, and tests check it.
"""

from __future__ import annotations

import codecs
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools.docgen import png_bytes, write_epub, write_image_pdf, write_pdf  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent / "fixtures"

ROWS: list[
    tuple[str, str, str, str, str, str]
] = []  # path, expect, pages, probe_page, phrase, notes


def row(
    path: str,
    expect: str,
    pages: int | str = "",
    probe_page: int | str = "",
    phrase: str = "",
    notes: str = "",
) -> None:
    ROWS.append((path, expect, str(pages), str(probe_page), phrase, notes))


def main() -> None:
    for sub in ("good", "empty", "broken"):
        (ROOT / sub).mkdir(parents=True, exist_ok=True)

    # --- good -----------------------------------------------------------------
    write_pdf(
        ROOT / "good/field-guide.pdf",
        [
            "A Field Guide to Lighthouses\n\nThe keeper climbs the spiral stair at dusk.",
            "Chapter two\n\nFog signals were sounded by a steam whistle near the harbour mouth.",
            "",  # a blank page still counts as a page
            "Appendix\n\nThe lamp burned whale oil until kerosene replaced it.",
        ],
    )
    row("good/field-guide.pdf", "ok", 4, 2, "steam whistle near the harbour", "page 3 is blank")

    write_pdf(
        ROOT / "good/owner-password-only.pdf",
        ["Permissions are restricted but anyone may read this tidal almanac."],
        encrypt_user="",
        encrypt_owner="owner-secret",
    )
    row(
        "good/owner-password-only.pdf",
        "ok",
        1,
        1,
        "anyone may read this tidal almanac",
        "encrypted with an owner password only: opens with the empty password",
    )

    write_epub(
        ROOT / "good/voyage.epub",
        [
            ("Cover", "The Voyage of the Marigold"),
            (
                "Departure",
                "The crew weighed anchor before the morning tide turned.\n\n"
                "Gulls followed the wake for a mile.",
            ),
            ("Storm", "Lightning split the mizzen mast in the second night watch."),
            ("Landfall", "At last the lookout sighted the basalt cliffs of the island."),
        ],
    )
    row(
        "good/voyage.epub",
        "ok",
        4,
        3,
        "split the mizzen mast",
        "spine has an XML comment and a non-linear first item; page = spine position",
    )

    (ROOT / "good/notes.txt").write_text(
        "Shopping list for the expedition:\nrope, lanterns, dried apricots, a brass sextant.\n",
        encoding="utf-8",
    )
    row("good/notes.txt", "ok", "", 1, "dried apricots a brass sextant", "UTF-8")

    (ROOT / "good/latin1.txt").write_bytes(
        "Le café du port servait une crème brûlée délicieuse aux marins.\n".encode("latin-1")
    )
    row("good/latin1.txt", "ok", "", 1, "une crème brûlée délicieuse", "ISO-8859-1")

    (ROOT / "good/utf16.txt").write_bytes(
        codecs.BOM_UTF16_LE
        + "Die Übersetzung der Seekarte dauerte drei Wochen.\n".encode("utf-16-le")
    )
    row("good/utf16.txt", "ok", "", 1, "Übersetzung der Seekarte dauerte", "UTF-16 LE with BOM")

    (ROOT / "good/readme.md").write_text(
        "# Harbour log\n\n* Tuesday: **calm seas**, visibility excellent\n"
        "* Wednesday: the pilot boat returned with fresh oysters\n",
        encoding="utf-8",
    )
    row("good/readme.md", "ok", "", 1, "pilot boat returned with fresh oysters", "Markdown")

    (ROOT / "good/page.html").write_bytes(
        b'<!DOCTYPE html><html><head><meta charset="windows-1252"><title>Tide tables</title>'
        b"<style>body{color:red}</style><script>var hidden = 'scriptword';</script></head>"
        b"<body><h1>Tide tables</h1><p>High water at the na\xefve quay \x96 six o\x92clock."
        b"</p><ul><li>Neap tides follow the quarter moon</li></ul></body></html>"
    )
    row(
        "good/page.html",
        "ok",
        "",
        1,
        "Neap tides follow the quarter moon",
        "windows-1252 declared in <meta>; script and style text is not indexed",
    )

    # --- empty ----------------------------------------------------------------
    write_image_pdf(ROOT / "empty/scanned.pdf", 2)
    row("empty/scanned.pdf", "empty", 2, "", "", "image-only pages: no text layer")
    write_epub(
        ROOT / "empty/blank-chapters.epub",
        [("", ""), ("", "")],
        spine_comment=False,
        nonlinear_first=False,
    )
    row("empty/blank-chapters.epub", "empty", 2, "", "", "chapters without text")

    # --- broken ---------------------------------------------------------------
    good = (ROOT / "good/field-guide.pdf").read_bytes()
    (ROOT / "broken/truncated.pdf").write_bytes(good[:200])
    row("broken/truncated.pdf", "error", notes="first 200 bytes of a PDF")
    (ROOT / "broken/image-renamed.pdf").write_bytes(png_bytes())
    row("broken/image-renamed.pdf", "error", notes="a PNG named .pdf")
    (ROOT / "broken/zero-bytes.pdf").write_bytes(b"")
    row("broken/zero-bytes.pdf", "error", notes="zero bytes")
    write_pdf(
        ROOT / "broken/password.pdf", ["Top secret harbour defences."], encrypt_user="user-secret"
    )
    row("broken/password.pdf", "error", notes="needs a user password")
    (ROOT / "broken/not-a-zip.epub").write_bytes(b"This is plain text, not a zip archive.\n")
    row("broken/not-a-zip.epub", "error", notes="not a zip")
    epub = (ROOT / "good/voyage.epub").read_bytes()
    (ROOT / "broken/truncated.epub").write_bytes(epub[: len(epub) // 2])
    row("broken/truncated.epub", "error", notes="first half of a zip")
    write_epub(ROOT / "broken/missing-opf.epub", [("One", "text")], omit_opf=True)
    row("broken/missing-opf.epub", "error", notes="container.xml names an OPF that is not there")
    write_epub(ROOT / "broken/no-spine.epub", [("One", "text")], omit_spine=True)
    row("broken/no-spine.epub", "error", notes="OPF without <spine>")
    write_epub(ROOT / "broken/drm.epub", [("One", "secret words")], drm=True)
    row("broken/drm.epub", "error", notes="content listed in META-INF/encryption.xml")

    header = ("path", "expect", "pages", "probe_page", "probe_phrase", "notes")
    lines = ["\t".join(header)] + ["\t".join(r) for r in ROWS]
    (ROOT / "EXPECTED.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {len(ROWS)} fixtures under {ROOT}")


if __name__ == "__main__":
    main()
