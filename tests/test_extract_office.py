"""indexer/extract/office.py (and archive.py): DOCX and ODT pages, notes,
metadata, and hostile archives and XML."""

from __future__ import annotations

import re
import time
import zipfile
from pathlib import Path

import pytest

from indexer.errors import ExtractError
from indexer.extract import archive, kind_of
from indexer.extract.office import extract_docx, extract_odt
from tools.docgen import write_pdf
from tools.formatgen import write_docx, write_odt

PAGES = ["opening words\n\nsecond paragraph", "middle page quokka", "last page wombat"]


@pytest.mark.parametrize("rendered", [False, True])
def test_docx_pages_follow_its_page_breaks(tmp_path: Path, rendered: bool) -> None:
    x = extract_docx(str(write_docx(tmp_path / "a.docx", PAGES, rendered=rendered)))
    assert x.page_count == 3
    assert dict(x.pages) == {
        1: "opening words\nsecond paragraph",
        2: "middle page quokka",
        3: "last page wombat",
    }


def test_docx_notes_boxes_deletions_and_metadata(tmp_path: Path) -> None:
    path = write_docx(
        tmp_path / "a.docx",
        PAGES,
        title="A Report",
        author="Ann Author",
        footnote="see the appendix",
        deleted="withdrawn sentence",
        textbox="boxed aside",
    )
    x = extract_docx(str(path))
    pages = dict(x.pages)
    assert x.page_count == 4 and pages[4] == "see the appendix"  # the notes: one more page
    assert pages[1].count("boxed aside") == 1  # mc:Choice read, its mc:Fallback copy not
    assert "withdrawn" not in " ".join(pages.values())
    assert x.meta is not None
    assert (x.meta.title, x.meta.authors, x.meta.language) == ("A Report", "Ann Author", "en-GB")
    assert x.meta.created == "2021-03-04T05:06:07Z"


@pytest.mark.parametrize("rendered", [False, True])
def test_odt_pages_follow_its_page_breaks_and_spaces(tmp_path: Path, rendered: bool) -> None:
    path = write_odt(tmp_path / "a.odt", PAGES, rendered=rendered, title="Bericht", author="Otto")
    x = extract_odt(str(path))
    assert x.page_count == 3
    assert dict(x.pages)[2] == "middle page quokka"  # words joined by <text:s/>
    assert x.meta is not None and (x.meta.title, x.meta.authors) == ("Bericht", "Otto")


def test_a_file_without_page_breaks_is_paged_like_text(tmp_path: Path) -> None:
    long = "\n\n".join(f"paragraph {i} " + "lorem ipsum " * 40 for i in range(60))
    x = extract_docx(str(write_docx(tmp_path / "a.docx", [long])))
    assert x.page_count > 5
    assert all(len(text) <= 4_000 for _n, text in x.pages)


def _docx_with_document(path: Path, document: str) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("word/document.xml", document)
    return path


def test_doctype_entities_are_never_expanded_or_fetched(tmp_path: Path) -> None:
    laughs = "".join(
        f'<!ENTITY l{i} "&l{i - 1};&l{i - 1};&l{i - 1};&l{i - 1};">' for i in range(1, 12)
    )
    document = (
        '<?xml version="1.0"?><!DOCTYPE w:document [<!ENTITY l0 "ha">'
        + laughs
        + '<!ENTITY secret SYSTEM "file:///etc/passwd"><!ENTITY remote SYSTEM '
        '"http://192.0.2.1/x">]><w:document xmlns:w="http://schemas.openxmlformats.org/'
        'wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>kept words &secret; &remote; '
        "&l11;</w:t></w:r></w:p></w:body></w:document>"
    )
    started = time.monotonic()
    x = extract_docx(str(_docx_with_document(tmp_path / "e.docx", document)))
    assert time.monotonic() - started < 5
    text = " ".join(t for _n, t in x.pages)
    assert "kept words" in text
    assert "root:" not in text and "haha" not in text


def test_a_zip_bomb_member_is_refused_before_it_is_inflated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(archive, "MAX_MEMBER", 1024 * 1024)
    path = tmp_path / "bomb.docx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("word/document.xml", "<w:document>" + " " * (3 * 1024 * 1024) + "</w:document>")
    assert path.stat().st_size < 50_000
    with pytest.raises(ExtractError, match=r"word/document.xml inflates to 3 MiB.*zip bomb"):
        extract_docx(str(path))


def test_bad_office_files_have_one_line_reasons(tmp_path: Path) -> None:
    pdf = write_pdf(tmp_path / "x.pdf", ["a pdf"])
    cases = {
        "renamed.docx": (pdf.read_bytes(), "not a DOCX (the file is a PDF)"),
        "old.docx": (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600, "encrypted: a password"),
        "trunc.odt": (write_odt(tmp_path / "t.odt", PAGES).read_bytes()[:300], "damaged zip"),
        "empty.docx": (b"", "empty file"),
    }
    for name, (data, reason) in cases.items():
        (tmp_path / name).write_bytes(data)
        extractor = extract_docx if name.endswith("docx") else extract_odt
        with pytest.raises(ExtractError, match=re.escape(reason)):
            extractor(str(tmp_path / name))
    with zipfile.ZipFile(tmp_path / "other.docx", "w") as z:
        z.writestr("hello.txt", "not word")
    with pytest.raises(ExtractError, match="not a DOCX: no word/document.xml"):
        extract_docx(str(tmp_path / "other.docx"))


def test_an_odt_saved_with_a_password_says_so(tmp_path: Path) -> None:
    manifest = (
        '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0">'
        '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml">'
        '<manifest:encryption-data manifest:checksum="x"/></manifest:file-entry>'
        "</manifest:manifest>"
    )
    with zipfile.ZipFile(tmp_path / "locked.odt", "w") as z:
        z.writestr("content.xml", b"\x8f\x00 cipher bytes")
        z.writestr("META-INF/manifest.xml", manifest)
    with pytest.raises(ExtractError, match="encrypted: a password is required"):
        extract_odt(str(tmp_path / "locked.odt"))


def test_the_new_kinds_by_extension() -> None:
    assert [kind_of(n) for n in ("a.docx", "a.ODT", "b.fb2", "b.fb2.zip", "c.zip", "k.azw3")] == [
        "docx",
        "odt",
        "fb2",
        "fb2",
        None,
        "mobi",
    ]
    assert kind_of("d.djvu") == kind_of("d.djv") == "djvu"
