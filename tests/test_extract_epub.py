"""indexer/extract/epub.py: spine positions, block structure, broken books."""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import pytest

from indexer.errors import ExtractError
from indexer.extract.epub import extract_epub
from tests.conftest import FIXTURES
from tools.docgen import mark_zip_encrypted, write_epub


def test_spine_positions_survive_comments_and_nonlinear_items() -> None:
    x = extract_epub(str(FIXTURES / "good/voyage.epub"))
    assert x.page_count == 4
    pages = dict(x.pages)
    assert "Voyage of the Marigold" in pages[1]  # linear="no", still position 1
    assert "mizzen mast" in pages[3]
    assert "basalt cliffs" in pages[4]


def test_block_structure_becomes_line_breaks() -> None:
    text = dict(extract_epub(str(FIXTURES / "good/voyage.epub")).pages)[2]
    lines = text.splitlines()
    assert lines[0] == "Departure"
    assert "The crew weighed anchor before the morning tide turned." in lines
    assert "Gulls followed the wake for a mile." in lines


def test_image_only_book_is_empty_not_an_error() -> None:
    x = extract_epub(str(FIXTURES / "empty/blank-chapters.epub"))
    assert x.page_count == 2 and x.pages == []


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("not-a-zip.epub", "not an EPUB (not a zip archive)"),
        ("truncated.epub", "damaged zip archive"),
        ("missing-opf.epub", "OPF package document missing"),
        ("no-spine.epub", "OPF has no spine"),
        ("drm.epub", "DRM-protected"),
    ],
)
def test_broken_epubs_give_one_line_reasons(name: str, reason: str) -> None:
    with pytest.raises(ExtractError) as info:
        extract_epub(str(FIXTURES / "broken" / name))
    assert str(info.value).startswith(reason)


def test_zero_byte_and_image_epubs(tmp_path: Path) -> None:
    (tmp_path / "zero.epub").write_bytes(b"")
    (tmp_path / "photo.epub").write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 100)
    with pytest.raises(ExtractError, match="empty file"):
        extract_epub(str(tmp_path / "zero.epub"))
    with pytest.raises(ExtractError, match="JPEG image"):
        extract_epub(str(tmp_path / "photo.epub"))


def test_first_rootfile_is_the_default_rendition(corpus: Path) -> None:
    # container.xml lists three packages; only the first says "Test passes".
    x = extract_epub(str(corpus / "epub/ocf-package_multiple.epub"))
    assert "passes" in x.pages[0][1] and "fails" not in x.pages[0][1]


def test_malformed_xhtml_is_recovered(tmp_path: Path) -> None:
    path = write_epub(tmp_path / "unclosed.epub", [("One", "an <b>unclosed bold paragraph")])
    assert "unclosed bold paragraph" in extract_epub(str(path)).pages[0][1]


@pytest.mark.parametrize(
    "missing", [["cover.jpg", "style.css"], ["toc.ncx"], ["nav.xhtml"], ["cover.jpg", "c2.xhtml"]]
)
def test_files_the_manifest_lists_but_the_zip_lacks(tmp_path: Path, missing: list[str]) -> None:
    """ebooklib gives up on the whole book; a missing chapter is a failed page,
    anything else (images, styles, the table of contents) is not needed."""
    chapters = [("One", "the first chapter"), ("Two", "the second chapter"), ("Three", "the end")]
    path = write_epub(tmp_path / "sloppy.epub", chapters, spine_comment=False, missing=missing)
    x = extract_epub(str(path))
    assert x.page_count == 3
    if "c2.xhtml" in missing:
        assert x.pages == [(1, "One\nthe first chapter"), (3, "Three\nthe end")]
        assert x.failed == [(2, 2, "chapter c2.xhtml missing from the archive")]
    else:
        assert [n for n, _ in x.pages] == [1, 2, 3]
        assert x.failed == []


def test_a_password_protected_zip_is_an_encrypted_error(tmp_path: Path) -> None:
    path = write_epub(tmp_path / "locked.epub", [("One", "secret")], spine_comment=False)
    mark_zip_encrypted(path)
    with pytest.raises(ExtractError) as e:
        extract_epub(str(path))
    assert str(e.value) == "encrypted: the zip archive needs a password"


def test_a_chapter_the_zip_cannot_decompress_is_a_failed_page(tmp_path: Path) -> None:
    chapters = [("One", "first " * 200), ("Two", "second " * 200), ("Three", "third " * 200)]
    path = write_epub(tmp_path / "damaged.epub", chapters, spine_comment=False)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("OEBPS/c2.xhtml")
    n, m = struct.unpack_from("<HH", data, info.header_offset + 26)
    start = info.header_offset + 30 + n + m  # the chapter's deflated bytes
    data[start : start + info.compress_size] = b"\xff" * info.compress_size
    path.write_bytes(bytes(data))
    x = extract_epub(str(path))
    assert [n for n, _ in x.pages] == [1, 3]
    assert len(x.failed) == 1
    assert x.failed[0][:2] == (2, 2)
    assert x.failed[0][2].startswith("chapter c2.xhtml unreadable in the archive (")


def test_a_member_name_flagged_utf8_that_is_not_is_a_damaged_zip(tmp_path: Path) -> None:
    path = write_epub(tmp_path / "names.epub", [("One", "text")], spine_comment=False)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        pos = zf.start_dir  # the first central directory record: "mimetype"
    assert data[pos : pos + 4] == b"PK\x01\x02"
    data[pos + 9] |= 0x08  # general purpose flag 0x800: the name is UTF-8
    data[pos + 46] = 0xFF  # ... and its first byte is not
    path.write_bytes(bytes(data))
    with pytest.raises(ExtractError) as e:
        extract_epub(str(path))
    assert str(e.value).startswith("damaged zip (UnicodeDecodeError: ")


def _hand_made_epub(
    path: Path, container: str, rootfile: str, opf: str, href: str, chapter: str
) -> Path:
    """A one-chapter EPUB 2 whose names are given as a sloppy tool wrote them."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("mimetype", "application/epub+zip")
        zf.writestr(
            container,
            '<?xml version="1.0"?><container version="1.0" '
            'xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles>'
            f'<rootfile full-path="{rootfile}" media-type="application/oebps-package+xml"/>'
            "</rootfiles></container>",
        )
        zf.writestr(
            opf,
            '<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="2.0" '
            'unique-identifier="id"><metadata xmlns:dc="http://purl.org/dc/elements/1.1/">'
            '<dc:title>T</dc:title><dc:identifier id="id">x</dc:identifier></metadata>'
            f'<manifest><item id="c1" href="{href}" media-type="application/xhtml+xml"/>'
            '</manifest><spine><itemref idref="c1"/></spine></package>',
        )
        zf.writestr(
            chapter,
            '<html xmlns="http://www.w3.org/1999/xhtml"><body><p>the narwhal</p></body></html>',
        )
    return path


@pytest.mark.parametrize(
    ("container", "rootfile", "opf", "href", "chapter"),
    [
        (
            "META-INF/container.xml",
            "OEBPS/content.opf",
            "OEBPS/content.opf",
            "Text/Chapter1.xhtml",
            "OEBPS/text/chapter1.xhtml",
        ),  # another case
        (
            "META-INF/container.xml",
            "OEBPS/content.opf",
            "OEBPS/content.opf",
            "Text\\ch.xhtml",
            "OEBPS/Text/ch.xhtml",
        ),  # a Windows separator
        (
            "META-INF/container.xml",
            "OEBPS/content.opf",
            "OEBPS/content.opf",
            "/OEBPS/ch.xhtml",
            "OEBPS/ch.xhtml",
        ),  # from the zip's root
        (
            "META-INF/container.xml",
            "/OEBPS/content.opf",
            "OEBPS/content.opf",
            "ch.xhtml",
            "OEBPS/ch.xhtml",
        ),  # the package path too
        (
            "meta-inf/container.xml",
            "OEBPS/content.opf",
            "OEBPS/content.opf",
            "ch.xhtml",
            "OEBPS/ch.xhtml",
        ),  # the container's folder
    ],
)
def test_names_spelt_loosely_find_their_files(
    tmp_path: Path, container: str, rootfile: str, opf: str, href: str, chapter: str
) -> None:
    path = _hand_made_epub(tmp_path / "loose.epub", container, rootfile, opf, href, chapter)
    x = extract_epub(str(path))
    assert (x.pages, x.failed) == ([(1, "the narwhal")], [])


def test_a_rootfile_without_a_path_is_passed_over(tmp_path: Path) -> None:
    """A <rootfile> with no full-path (seen in hand-made books) is not the
    package: the next one is. (It was an AttributeError: found by mypy.)"""
    made = write_epub(tmp_path / "made.epub", [("One", "the first chapter"), ("Two", "another")])
    book = tmp_path / "book.epub"
    container = (
        '<?xml version="1.0"?><container version="1.0" '
        'xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles>'
        '<rootfile media-type="application/oebps-package+xml"/>'
        '<rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>'
        "</rootfiles></container>"
    )
    with zipfile.ZipFile(made) as src, zipfile.ZipFile(book, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "META-INF/container.xml":
                data = container.encode()
            dst.writestr(info, data)
    x = extract_epub(str(book))
    assert x.page_count == 2 and "the first chapter" in dict(x.pages)[1]


def test_dublin_core_metadata(tmp_path: Path) -> None:
    dc = (
        "<dc:title>Moby-Dick; or, The Whale</dc:title>"
        "<dc:creator>Herman Melville</dc:creator><dc:creator>A. Editor</dc:creator>"
        "<dc:language>en-US</dc:language><dc:subject>Whaling</dc:subject>"
        "<dc:subject>Sea stories</dc:subject><dc:date>1851-10-18</dc:date>"
    )
    path = write_epub(tmp_path / "moby.epub", [("One", "Call me Ishmael.")], dublin_core=dc)
    meta = extract_epub(str(path)).meta
    assert meta is not None
    assert (meta.title, meta.authors) == ("Moby-Dick; or, The Whale", "Herman Melville; A. Editor")
    assert (meta.language, meta.keywords, meta.created) == (
        "en-US",
        "Whaling, Sea stories",
        "1851-10-18",
    )
    bare = write_epub(
        tmp_path / "bare.epub", [("One", "text")], dublin_core="<dc:title> </dc:title>"
    )
    meta = extract_epub(str(bare)).meta  # a blank title is none; its identifier is kept
    assert meta is not None and meta.title is None
    assert meta.identifier is not None and meta.identifier.startswith("urn:uuid:")


def test_legacy_packages_svg_dtbook_and_fallback_chains_are_read(tmp_path: Path) -> None:
    """An OEBPS 1.2 package (its own namespace, which ebooklib fails on with
    "'NoneType' object has no attribute 'nsmap'"), OEBPS 1.2 documents in an
    EPUB 2 spine, SVG (its <text>, <tspan>, <title>, <desc>), DTBook, and a
    media type a reader need not know, reached through its fallback: each
    phrase on its spine position."""
    from tools.docgen import write_raw_epub

    legacy = write_raw_epub(
        tmp_path / "oeb12.epub",
        '<?xml version="1.0"?><package unique-identifier="id" '
        'xmlns="http://openebook.org/namespaces/oeb-package/1.0/"><metadata>'
        '<dc-metadata xmlns:dc="http://purl.org/dc/elements/1.0/"><dc:Title>Legacy Book'
        '</dc:Title><dc:Creator>A. Writer</dc:Creator><dc:Identifier id="id">x</dc:Identifier>'
        "</dc-metadata></metadata><manifest>"
        '<item id="c1" href="c%201.html" media-type="text/x-oeb1-document"/>'
        '<item id="css" href="s.css" media-type="text/x-oeb1-css"/></manifest>'
        '<spine><itemref idref="css"/><itemref idref="c1"/></spine></package>',
        {"c 1.html": "<html><body><p>legacy kraken phrase</p></body></html>", "s.css": "p{}"},
    )
    x = extract_epub(str(legacy))
    assert (x.page_count, x.pages, x.failed) == (2, [(2, "legacy kraken phrase")], [])
    assert x.meta is not None and (x.meta.title, x.meta.authors) == ("Legacy Book", "A. Writer")

    two = write_raw_epub(
        tmp_path / "epub2.epub",
        '<?xml version="1.0"?><package version="2.0" unique-identifier="id" '
        'xmlns="http://www.idpf.org/2007/opf"><metadata '
        'xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>B</dc:title>'
        '<dc:identifier id="id">x</dc:identifier></metadata><manifest>'
        '<item id="c1" href="c1.html" media-type="text/x-oeb1-document"/>'
        '<item id="s" href="s.svg" media-type="image/svg+xml"/>'
        '<item id="d" href="d.xml" media-type="application/x-dtbook+xml"/>'
        '<item id="o" href="o.bin" media-type="application/x-foo" fallback="o2"/>'
        '<item id="o2" href="o2.bin" media-type="application/x-bar" fallback="c4"/>'
        '<item id="c4" href="c4.xhtml" media-type="application/xhtml+xml"/></manifest>'
        '<spine><itemref idref="c1"/><itemref idref="s"/><itemref idref="d"/>'
        '<itemref idref="o"/></spine></package>',
        {
            "c1.html": "<html><body><p>first oeb phrase</p></body></html>",
            "s.svg": '<svg xmlns="http://www.w3.org/2000/svg"><title>svg title</title>'
            "<desc>svg description</desc><style>.a{fill:red}</style>"
            '<text x="1" y="1">svg text <tspan>and tspan</tspan></text></svg>',
            "d.xml": '<dtbook xmlns="http://www.daisy.org/z3986/2005/dtbook/"><book>'
            "<bodymatter><level1><p>dtbook phrase</p></level1></bodymatter></book></dtbook>",
            "o.bin": b"\x00binary",
            "o2.bin": b"\x00binary",
            "c4.xhtml": '<html xmlns="http://www.w3.org/1999/xhtml"><body><p>fallback phrase'
            "</p></body></html>",
        },
    )
    y = extract_epub(str(two))
    assert y.failed == [] and y.page_count == 4
    assert y.pages == [
        (1, "first oeb phrase"),
        (2, "svg title\nsvg description\nsvg text and tspan"),
        (3, "dtbook phrase"),
        (4, "fallback phrase"),
    ]
