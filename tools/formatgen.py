"""Generate real files of the formats beyond PDF and EPUB: DOCX, ODT, FB2, MOBI, DjVu.

Why this module exists: no office suite, Kindle tool or DjVu encoder is
installed in CI, so the tests write these formats themselves, by their
specifications (OOXML, ODF, FictionBook 2.0, the MobileRead wiki's MOBI
header, DjVuLibre's tools), each with known text on a known page. The files
open in the programs they are for: MuPDF reads the MOBI, DjVuLibre the DjVu.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from html import escape
from pathlib import Path

import pymupdf

_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def _zip(path: Path, files: dict[str, str | bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            stored = name == "mimetype"
            z.writestr(name, data, compress_type=zipfile.ZIP_STORED if stored else None)
    return path


def write_docx(
    path: Path,
    pages: Sequence[str],
    *,
    rendered: bool = False,
    title: str = "",
    author: str = "",
    footnote: str = "",
    deleted: str = "",
    textbox: str = "",
) -> Path:
    """A DOCX whose ``pages`` (paragraphs split at blank lines) are separated
    by hard page breaks, or with ``rendered`` by Word's
    ``lastRenderedPageBreak`` marks only. ``deleted``: a tracked deletion on
    page 1 (not text); ``textbox``: a text box on page 1 with its
    ``mc:Fallback`` copy (the text once); ``footnote``: a footnote."""
    body = []
    for n, text in enumerate(pages):
        for i, para in enumerate(text.split("\n\n")):
            lead = ""
            if n and i == 0:
                lead = (
                    "<w:r><w:lastRenderedPageBreak/></w:r>"
                    if rendered
                    else '<w:r><w:br w:type="page"/></w:r>'
                )
            runs = f'<w:r><w:t xml:space="preserve">{escape(para)}</w:t></w:r>'
            body.append(f"<w:p>{lead}{runs}</w:p>")
    if deleted:
        body.insert(
            0, f"<w:p><w:del><w:r><w:delText>{escape(deleted)}</w:delText></w:r></w:del></w:p>"
        )
    if textbox:
        box = f"<w:txbxContent><w:p><w:r><w:t>{escape(textbox)}</w:t></w:r></w:p></w:txbxContent>"
        body.insert(
            0,
            '<w:p><w:r><mc:AlternateContent><mc:Choice Requires="wps"><w:drawing>'
            f"<wps:txbx>{box}</wps:txbx></w:drawing></mc:Choice><mc:Fallback><w:pict>"
            f"<v:textbox>{box}</v:textbox></w:pict></mc:Fallback></mc:AlternateContent></w:r></w:p>",
        )
    if footnote:
        body.append('<w:p><w:r><w:footnoteReference w:id="1"/></w:r></w:p>')
    ns = (
        f'xmlns:w="{_W}" xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006" '
        'xmlns:wps="http://schemas.microsoft.com/office/word/2010/wordprocessingShape" '
        'xmlns:v="urn:schemas-microsoft-com:vml"'
    )
    document = (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document {ns}><w:body>'
        + "".join(body)
        + "<w:sectPr/></w:body></w:document>"
    )
    files: dict[str, str | bytes] = {
        "[Content_Types].xml": (
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
            'content-types"><Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/word/document.xml" ContentType="application/vnd.'
            'openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>'
        ),
        "word/document.xml": document,
    }
    if footnote:
        files["word/footnotes.xml"] = (
            f'<?xml version="1.0"?><w:footnotes xmlns:w="{_W}"><w:footnote w:id="1"><w:p>'
            f"<w:r><w:t>{escape(footnote)}</w:t></w:r></w:p></w:footnote></w:footnotes>"
        )
    if title or author:
        files["docProps/core.xml"] = (
            '<?xml version="1.0"?><cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/'
            'package/2006/metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/" '
            'xmlns:dcterms="http://purl.org/dc/terms/">'
            f"<dc:title>{escape(title)}</dc:title><dc:creator>{escape(author)}</dc:creator>"
            "<dc:language>en-GB</dc:language>"
            "<dcterms:created>2021-03-04T05:06:07Z</dcterms:created></cp:coreProperties>"
        )
    return _zip(path, files)


_ODF = (
    'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
    'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
    'xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0" '
    'xmlns:fo="urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0" '
    'xmlns:dc="http://purl.org/dc/elements/1.1/" '
    'xmlns:meta="urn:oasis:names:tc:opendocument:xmlns:meta:1.0"'
)


def write_odt(
    path: Path, pages: Sequence[str], *, rendered: bool = False, title: str = "", author: str = ""
) -> Path:
    """An ODT whose ``pages`` start with a paragraph of a style that breaks
    the page before it, or with ``rendered`` after LibreOffice's
    ``text:soft-page-break``. Spaces are written as ``text:s`` runs."""
    body = []
    for n, text in enumerate(pages):
        for i, para in enumerate(text.split("\n\n")):
            style = ' text:style-name="PageBreak"' if n and i == 0 and not rendered else ""
            if n and i == 0 and rendered:
                body.append("<text:soft-page-break/>")
            words = escape(para).split(" ")
            body.append(f"<text:p{style}>" + '<text:s text:c="1"/>'.join(words) + "</text:p>")
    content = (
        f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {_ODF}>'
        '<office:automatic-styles><style:style style:name="PageBreak" style:family="paragraph">'
        '<style:paragraph-properties fo:break-before="page"/></style:style>'
        "</office:automatic-styles><office:body><office:text>"
        + "".join(body)
        + "</office:text></office:body></office:document-content>"
    )
    meta = (
        f'<?xml version="1.0"?><office:document-meta {_ODF}><office:meta>'
        f"<dc:title>{escape(title)}</dc:title><meta:initial-creator>{escape(author)}"
        "</meta:initial-creator><dc:language>de</dc:language>"
        "<meta:creation-date>2020-01-02T03:04:05</meta:creation-date>"
        "</office:meta></office:document-meta>"
    )
    return _zip(
        path,
        {
            "mimetype": "application/vnd.oasis.opendocument.text",
            "content.xml": content,
            "meta.xml": meta,
        },
    )


def write_fb2(
    path: Path,
    sections: Sequence[tuple[str, str]],
    *,
    title: str = "",
    author: tuple[str, str] = ("", ""),
    encoding: str = "utf-8",
    zipped: bool = False,
    part: str = "",
) -> Path:
    """An FB2 book of ``sections`` ((title, text) pairs). ``part``: the
    sections are inside one section of that title (a part of the book)."""
    secs = "".join(
        f"<section><title><p>{escape(t)}</p></title>"
        + "".join(f"<p>{escape(p)}</p>" for p in text.split("\n\n"))
        + "</section>"
        for t, text in sections
    )
    if part:
        secs = f"<section><title><p>{escape(part)}</p></title>{secs}</section>"
    xml = (
        f'<?xml version="1.0" encoding="{encoding}"?>'
        '<FictionBook xmlns="http://www.gribuser.ru/xml/fictionbook/2.0" '
        'xmlns:l="http://www.w3.org/1999/xlink"><description><title-info>'
        f"<genre>prose</genre><author><first-name>{escape(author[0])}</first-name>"
        f"<last-name>{escape(author[1])}</last-name></author>"
        f'<book-title>{escape(title)}</book-title><date value="1869-01-01">1869</date>'
        "<lang>ru</lang></title-info></description>"
        f"<body>{secs}</body>"
        '<binary id="cover.jpg" content-type="image/jpeg">AAAA</binary></FictionBook>'
    )
    data = xml.encode(encoding)
    if zipped:
        return _zip(path, {path.name.removesuffix(".zip"): data})
    path.write_bytes(data)
    return path


def write_mobi(
    path: Path, chapters: Sequence[str], *, title: str = "", author: str = "", drm: bool = False
) -> Path:
    """A MOBI 6 book (uncompressed text records) of ``chapters`` (HTML
    bodies), with an EXTH block naming ``author``; ``drm`` marks its text
    encrypted (as a bought Kindle book's is)."""
    html = (
        "<html><head><guide></guide></head><body>"
        + "<mbp:pagebreak/>".join(chapters)
        + "</body></html>"
    ).encode()
    records = [html[i : i + 4096] for i in range(0, len(html), 4096)]
    name = (title or path.stem).encode()
    exth_records = b"".join(
        struct.pack(">II", kind, 8 + len(v)) + v
        for kind, v in ((100, author.encode()), (524, b"en"), (503, name))
        if v
    )
    exth = b"EXTH" + struct.pack(">II", 12 + len(exth_records), 3) + exth_records
    exth += b"\0" * (-len(exth) % 4)
    mobi = bytearray(232)
    mobi[0:4] = b"MOBI"
    struct.pack_into(">IIIII", mobi, 4, 232, 2, 65001, 12345, 6)
    for at in range(0x18, 0x40, 4):
        struct.pack_into(">I", mobi, at, 0xFFFFFFFF)
    full_name_at = 16 + 232 + len(exth)
    struct.pack_into(">III", mobi, 0x40, len(records) + 1, full_name_at, len(name))
    struct.pack_into(">I", mobi, 0x4C, 9)
    struct.pack_into(">II", mobi, 0x58, 6, 0xFFFFFFFF)
    struct.pack_into(">I", mobi, 0x70, 0x40)  # EXTH flags: there is an EXTH block
    struct.pack_into(">I", mobi, 0x98, 0xFFFFFFFF)
    struct.pack_into(">HH", mobi, 0xB0, 1, len(records))
    palmdoc = struct.pack(">HHIHHHH", 1, 0, len(html), len(records), 4096, 2 if drm else 0, 0)
    record0 = palmdoc + bytes(mobi) + exth + name + b"\0" * (4 - len(name) % 4 + 4)
    every = [record0, *records, b"\xe9\x8e\r\n"]
    header = name[:31].ljust(32, b"\0") + struct.pack(
        ">HHIIIIII4s4sIIH", 0, 0, 0, 0, 0, 0, 0, 0, b"BOOK", b"MOBI", 0, 0, len(every)
    )
    offset = len(header) + 8 * len(every) + 2
    table = b""
    for i, record in enumerate(every):
        table += struct.pack(">I", offset) + bytes([0]) + i.to_bytes(3, "big")
        offset += len(record)
    path.write_bytes(header + table + b"\0\0" + b"".join(every))
    return path


def write_djvu(path: Path, pages: Sequence[str]) -> Path:
    """A bundled DjVu of one bitonal image page per entry, each with its text
    as the hidden text layer (as OCR would leave it); '' leaves a page with
    no text layer. Needs DjVuLibre (``djvulibre-bin``)."""
    with tempfile.TemporaryDirectory() as tmp:
        singles = []
        for n, text in enumerate(pages, 1):
            doc = pymupdf.open()
            page = doc.new_page(width=300, height=200)
            page.insert_text((20, 50), (text.splitlines() or [""])[0][:40], fontsize=12)
            pix = page.get_pixmap(dpi=72, colorspace=pymupdf.csGRAY)
            w, h, samples = pix.width, pix.height, pix.samples
            bits = bytearray()
            for y in range(h):
                row = samples[y * w : (y + 1) * w]
                for x in range(0, w, 8):
                    byte = 0
                    for k in range(8):
                        byte = byte << 1 | (x + k < w and row[x + k] < 128)
                    bits.append(byte)
            pbm = Path(tmp, f"{n}.pbm")
            pbm.write_bytes(f"P4\n{w} {h}\n".encode() + bytes(bits))
            single = Path(tmp, f"{n}.djvu")
            subprocess.run(["cjb2", str(pbm), str(single)], check=True)
            if text:
                quoted = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
                layer = Path(tmp, f"{n}.txt")
                layer.write_text(f'(page 0 0 {w} {h} "{quoted}")\n', encoding="utf-8")
                script = f"select 1; set-txt {layer}"
                subprocess.run(["djvused", str(single), "-e", script, "-s"], check=True)
            singles.append(str(single))
        subprocess.run(["djvm", "-c", str(path), *singles], check=True)
    return path


def write_samples(folder: Path) -> list[Path]:
    """One file of each format here (DjVu where DjVuLibre is installed), for
    ``tools/mutate.py`` and by-hand runs."""
    folder.mkdir(parents=True, exist_ok=True)
    pages = ["first page of the sample", "second page\n\nwith two paragraphs"]
    made = [
        write_docx(folder / "sample.docx", pages, title="Sample", footnote="a note"),
        write_docx(folder / "rendered.docx", pages, rendered=True),
        write_odt(folder / "sample.odt", pages, title="Beispiel"),
        write_fb2(folder / "sample.fb2", [("One", pages[0]), ("Two", pages[1])], part="Part"),
        write_fb2(folder / "sample.fb2.zip", [("One", pages[0])], zipped=True),
        write_mobi(folder / "sample.mobi", [f"<p>{p}</p>" for p in pages], author="A. Writer"),
    ]
    if shutil.which("cjb2"):
        made.append(write_djvu(folder / "sample.djvu", [*pages, ""]))
    return made


if __name__ == "__main__":
    written = write_samples(Path(sys.argv[1] if len(sys.argv) > 1 else "format-samples"))
    print(f"{len(written)} files written")
