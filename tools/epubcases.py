"""Write an EPUB for each case the EPUB 2 and 3 specifications allow, in both versions.

Why this module exists: real books use every corner of the specifications
(OPF 2.0.1, EPUB 3.3, OCF, OEBPS 1.2 before them), and the corpus holds only
some. Each case here is a small book with a known phrase at a known spine
position, written in EPUB 2 (an NCX, ``opf:role``) and EPUB 3 (a nav
document, ``refines``); ``tests/test_epub_cases.py`` requires every phrase on
its page and every book's metadata read.

    python -m tools.epubcases OUT_DIR     # writes OUT_DIR/<case>-epub<2|3>.epub
"""

from __future__ import annotations

import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

VERSIONS = (2, 3)
XHTML_NS = "http://www.w3.org/1999/xhtml"
_OPF_NS = "http://www.idpf.org/2007/opf"


def xhtml(body: str, title: str = "Chapter", doctype: str = "") -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>{doctype}\n'
        f'<html xmlns="{XHTML_NS}"><head><title>{title}</title></head>'
        f"<body>{body}</body></html>"
    )


@dataclass
class Book:
    """What a case puts in its book; ``write`` adds the container, the
    package document and the table of contents its version has."""

    version: int
    items: list[str] = field(default_factory=list)  # <item .../> elements
    spine: list[str] = field(default_factory=list)  # <itemref .../> elements
    files: dict[str, str | bytes] = field(default_factory=dict)  # zip name -> data
    metadata: str = ""  # extra metadata elements
    toc: str = "both"  # "both" (the version's own), "ncx", "nav", "none"
    spine_toc: bool = True  # <spine toc="ncx"> (EPUB 2)
    rootfiles: list[str] = field(default_factory=lambda: ["OEBPS/content.opf"])
    legacy: bool = False  # an OEBPS 1.2 package (its own namespace, dc:Title...)

    def chapter(self, id: str, body: str, href: str | None = None, props: str = "") -> None:
        """An XHTML chapter in the manifest and the spine."""
        href = href or f"{id}.xhtml"
        prop = f' properties="{props}"' if props and self.version == 3 else ""
        self.items.append(
            f'<item id="{id}" href="{quote(href)}" media-type="application/xhtml+xml"{prop}/>'
        )
        self.spine.append(f'<itemref idref="{id}"/>')
        self.files[f"OEBPS/{href}"] = xhtml(body)


@dataclass
class Case:
    phrase: str  # found on page ``position``
    position: int
    build: Callable[[Book], None]
    authors: str = "Ann Author"
    absent: tuple[str, ...] = ()  # words that must not be indexed


def _metadata(version: int, title: str) -> str:
    """Dublin Core for both versions: a title, an author and an editor (whose
    role EPUB 2 says with ``opf:role``, EPUB 3 with a refinement), a language,
    a date, an identifier."""
    if version == 2:
        creators = (
            '<dc:creator opf:role="aut" opf:file-as="Author, Ann">Ann Author</dc:creator>'
            '<dc:creator opf:role="edt">Ed Editor</dc:creator>'
            '<dc:date opf:event="modification">2020-02-02</dc:date>'
            '<dc:date opf:event="publication">1999-09-09</dc:date>'
        )
    else:
        creators = (
            '<dc:creator id="c1">Ann Author</dc:creator>'
            '<meta refines="#c1" property="role" scheme="marc:relators">aut</meta>'
            '<dc:creator id="c2">Ed Editor</dc:creator>'
            '<meta refines="#c2" property="role" scheme="marc:relators">edt</meta>'
            "<dc:date>1999-09-09</dc:date>"
            '<meta property="dcterms:modified">2020-02-02T00:00:00Z</meta>'
        )
    return (
        f"<dc:title>{title}</dc:title>{creators}<dc:language>en-GB</dc:language>"
        '<dc:identifier id="uid">urn:isbn:9780000000002</dc:identifier>'
    )


def write(book: Book, title: str, path: Path) -> Path:
    """The book, titled ``title``, at ``path``."""
    v3 = book.version == 3
    toc = book.toc if book.toc != "both" else ("nav" if v3 else "ncx")
    items = list(book.items)
    if toc == "nav":
        items.append(
            '<item id="nav" href="nav.xhtml" media-type="application/xhtml+xml"'
            + (' properties="nav"' if v3 else "")
            + "/>"
        )
        book.files["OEBPS/nav.xhtml"] = xhtml(
            '<nav xmlns:epub="http://www.idpf.org/2007/ops" epub:type="toc"><ol>'
            '<li><a href="intro.xhtml">Intro</a></li></ol></nav>',
            "Contents",
        )
    if toc == "ncx":
        items.append('<item id="ncx" href="toc.ncx" media-type="application/x-dtbncx+xml"/>')
        book.files["OEBPS/toc.ncx"] = (
            '<?xml version="1.0"?><ncx xmlns="http://www.daisy.org/z3986/2005/ncx/" '
            'version="2005-1"><head/><docTitle><text>T</text></docTitle><navMap>'
            '<navPoint id="p1" playOrder="1"><navLabel><text>Intro</text></navLabel>'
            '<content src="intro.xhtml"/></navPoint></navMap></ncx>'
        )
    spine_toc = ' toc="ncx"' if toc == "ncx" and book.spine_toc else ""
    opf = (
        f'<?xml version="1.0" encoding="UTF-8"?><package xmlns="{_OPF_NS}" '
        f'version="{"3.0" if v3 else "2.0"}" unique-identifier="uid">'
        '<metadata xmlns:dc="http://purl.org/dc/elements/1.1/" '
        f'xmlns:opf="{_OPF_NS}">{_metadata(book.version, title)}{book.metadata}</metadata>'
        f"<manifest>{''.join(items)}</manifest>"
        f"<spine{spine_toc}>{''.join(book.spine)}</spine></package>"
    )
    if book.legacy:
        opf = (
            '<?xml version="1.0"?><package unique-identifier="uid" '
            'xmlns="http://openebook.org/namespaces/oeb-package/1.0/"><metadata><dc-metadata '
            'xmlns:dc="http://purl.org/dc/elements/1.0/" '
            'xmlns:oebpackage="http://openebook.org/namespaces/oeb-package/1.0/">'
            f'<dc:Title>{title}</dc:Title><dc:Creator role="aut">Ann Author</dc:Creator>'
            '<dc:Creator role="edt">Ed Editor</dc:Creator><dc:Language>en-GB</dc:Language>'
            '<dc:Date event="publication">1999-09-09</dc:Date>'
            '<dc:Identifier id="uid">urn:isbn:9780000000002</dc:Identifier>'
            f"</dc-metadata></metadata><manifest>{''.join(book.items)}</manifest>"
            f"<spine>{''.join(book.spine)}</spine></package>"
        )
    rootfiles = "".join(
        f'<rootfile full-path="{r}" media-type="application/oebps-package+xml"/>'
        for r in book.rootfiles
    )
    container = (
        '<?xml version="1.0"?><container version="1.0" '
        'xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
        f"<rootfiles>{rootfiles}</rootfiles></container>"
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        z.writestr("META-INF/container.xml", container)
        z.writestr(book.rootfiles[0], opf)
        for name, data in book.files.items():
            z.writestr(name, data)
    return path


def _intro(book: Book) -> None:
    book.chapter("intro", "<h1>Intro</h1><p>An opening page with nothing to find.</p>")


# --- the cases --------------------------------------------------------------------


def _svg(book: Book) -> None:
    _intro(book)
    prop = ' properties="svg"' if book.version == 3 else ""
    book.items.append(f'<item id="pic" href="pic.svg" media-type="image/svg+xml"{prop}/>')
    book.spine.append('<itemref idref="pic"/>')
    book.files["OEBPS/pic.svg"] = (
        '<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 100">'
        "<title>svg title marten</title><desc>described</desc>"
        '<text x="1" y="10">svg text <tspan>tspan</tspan> phrase</text></svg>'
    )


def _dtbook(book: Book) -> None:
    _intro(book)
    book.items.append('<item id="dt" href="book.xml" media-type="application/x-dtbook+xml"/>')
    book.spine.append('<itemref idref="dt"/>')
    book.files["OEBPS/book.xml"] = (
        '<?xml version="1.0"?><dtbook xmlns="http://www.daisy.org/z3986/2005/dtbook/" '
        'version="2005-3"><book><bodymatter><level1><h1>Level</h1>'
        "<p>dtbook talking book ocelot</p></level1></bodymatter></book></dtbook>"
    )


def _oeb1(book: Book) -> None:
    _intro(book)
    book.items.append('<item id="o" href="old.htm" media-type="text/x-oeb1-document"/>')
    book.items.append('<item id="css" href="old.css" media-type="text/x-oeb1-css"/>')
    book.spine.append('<itemref idref="o"/>')
    book.files["OEBPS/old.htm"] = (
        '<?xml version="1.0"?><!DOCTYPE html PUBLIC "+//ISBN 0-9673008-1-9//DTD OEB 1.2 '
        'Document//EN" "http://openebook.org/dtds/oeb-1.2/oebdoc12.dtd">'
        "<html><body><p>oeb legacy document pangolin</p></body></html>"
    )
    book.files["OEBPS/old.css"] = "p { margin: 0 }"


def _oebps12(book: Book) -> None:
    book.legacy = True
    book.items.append('<item id="intro" href="intro.htm" media-type="text/x-oeb1-document"/>')
    book.spine.append('<itemref idref="intro"/>')
    book.files["OEBPS/intro.htm"] = "<html><body><p>An opening page.</p></body></html>"
    _oeb1(book)
    book.spine.pop(0)  # (_oeb1 added an XHTML intro of its own)
    book.items.pop(1)


def _fallback(book: Book) -> None:
    _intro(book)
    book.items.append(
        '<item id="foreign" href="data.foo" media-type="application/x-foreign" fallback="mid"/>'
    )
    book.items.append(
        '<item id="mid" href="data.bar" media-type="application/x-other" fallback="plain"/>'
    )
    book.items.append('<item id="plain" href="plain.xhtml" media-type="application/xhtml+xml"/>')
    book.spine.append('<itemref idref="foreign"/>')
    book.files["OEBPS/data.foo"] = b"\x00\x01 foreign bytes"
    book.files["OEBPS/data.bar"] = b"\x02 other bytes"
    book.files["OEBPS/plain.xhtml"] = xhtml("<p>reached through fallbacks quetzal</p>")


def _no_namespace(book: Book) -> None:
    _intro(book)
    book.items.append('<item id="h" href="h.html" media-type="application/xhtml+xml"/>')
    book.spine.append('<itemref idref="h"/>')
    book.files["OEBPS/h.html"] = "<html><body><p>plain html no namespace tapir</body></html>"


def _entities(book: Book) -> None:
    _intro(book)
    doctype = (
        '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.1//EN" '
        '"http://www.w3.org/TR/xhtml11/DTD/xhtml11.dtd" [<!ENTITY secret SYSTEM '
        '"file:///etc/passwd"><!ENTITY remote SYSTEM "http://192.0.2.1/e.txt">'
        '<!ENTITY l0 "lol"><!ENTITY l1 "&l0;&l0;&l0;&l0;&l0;&l0;&l0;&l0;">]>'
    )
    book.items.append('<item id="e" href="e.xhtml" media-type="application/xhtml+xml"/>')
    book.spine.append('<itemref idref="e"/>')
    book.files["OEBPS/e.xhtml"] = xhtml(
        "<p>entities stay inert wolverine &secret; &remote; &l1;</p>", doctype=doctype
    )


def _renditions(book: Book) -> None:
    # the default rendition is the first rootfile; a second one (another
    # layout of the same book) must not be the one read
    book.rootfiles = ["OEBPS/content.opf", "OEBPS/fixed.opf"]
    _intro(book)
    book.chapter("r", "<p>default rendition narwhal</p>")
    book.files["OEBPS/fixed.opf"] = "<package/>"


def _no_spine_toc(book: Book) -> None:
    book.spine_toc = False
    _intro(book)
    book.chapter("t", "<p>a spine without toc okapi</p>")


def _ncx_only(book: Book) -> None:
    book.toc = "ncx"
    _intro(book)
    book.chapter("n", "<p>only an ncx axolotl</p>")


def _nav_only(book: Book) -> None:
    book.toc = "nav"
    _intro(book)
    book.chapter("n", "<p>only a nav document manatee</p>")


def _no_toc(book: Book) -> None:
    book.toc = "none"
    _intro(book)
    book.chapter("n", "<p>no table of contents at all gecko</p>")


def _hrefs(book: Book) -> None:
    _intro(book)
    # a fragment, percent-encoding (a space) and a non-ASCII name
    book.items.append(
        '<item id="f" href="with%20space.xhtml#start" media-type="application/xhtml+xml"/>'
    )
    book.spine.append('<itemref idref="f"/>')
    book.files["OEBPS/with space.xhtml"] = xhtml("<p id='start'>fragment and space lemur</p>")
    book.chapter("u", "<p>non ascii name dugong</p>", href="kapitel-ü.xhtml")


def _properties(book: Book) -> None:
    _intro(book)
    book.chapter(
        "s", "<script>var hidden = 'script words';</script><p>scripted quokka</p>", props="scripted"
    )
    book.chapter("m", "<p>mathml and remote quoll</p>", props="mathml remote-resources")


def _obfuscated_fonts(book: Book) -> None:
    _intro(book)
    book.chapter("f", "<p>obfuscated fonts are no drm ibex</p>")
    for n, font in enumerate(("a.otf", "b.ttf")):
        book.items.append(f'<item id="font{n}" href="{font}" media-type="font/otf"/>')
        book.files[f"OEBPS/{font}"] = bytes(range(256)) * 8
    book.files["META-INF/encryption.xml"] = (
        '<?xml version="1.0"?><encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container"'
        ' xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData>'
        '<enc:EncryptionMethod Algorithm="http://www.idpf.org/2008/embedding"/>'
        '<enc:CipherData><enc:CipherReference URI="OEBPS/a.otf"/></enc:CipherData>'
        "</enc:EncryptedData><enc:EncryptedData>"
        '<enc:EncryptionMethod Algorithm="http://ns.adobe.com/pdf/enc#RC"/>'
        '<enc:CipherData><enc:CipherReference URI="OEBPS/b.ttf"/></enc:CipherData>'
        "</enc:EncryptedData></encryption>"
    )


def _remote(book: Book) -> None:
    _intro(book)
    # a remote image and stylesheet, and a manifest item that is a URL:
    # nothing is fetched (the test runs with no network)
    book.items.append('<item id="img" href="http://192.0.2.1/cover.jpg" media-type="image/jpeg"/>')
    book.items.append('<item id="aud" href="https://192.0.2.1/a.mp3" media-type="audio/mpeg"/>')
    book.chapter(
        "w",
        '<link rel="stylesheet" href="http://192.0.2.1/s.css"/>'
        '<img src="http://192.0.2.1/cover.jpg"/><p>remote resources stay remote kinkajou</p>',
        props="remote-resources",
    )


def _nonlinear(book: Book) -> None:
    book.chapter("note", "<p>a non linear note jerboa</p>")
    book.spine[-1] = '<itemref idref="note" linear="no"/>'
    book.chapter("main", "<p>the main text</p>")


CASES: dict[str, Case] = {
    "svg": Case("svg text tspan phrase", 2, _svg),
    "svg-title": Case("svg title marten", 2, _svg),
    "dtbook": Case("dtbook talking book ocelot", 2, _dtbook),
    "oeb1-document": Case("oeb legacy document pangolin", 2, _oeb1),
    "oebps-1.2-package": Case("oeb legacy document pangolin", 2, _oebps12),
    "fallback-chain": Case("reached through fallbacks quetzal", 2, _fallback),
    "html-no-namespace": Case("plain html no namespace tapir", 2, _no_namespace),
    "doctype-entities": Case(
        "entities stay inert wolverine", 2, _entities, absent=("root", "lollol")
    ),
    "renditions": Case("default rendition narwhal", 2, _renditions),
    "spine-without-toc": Case("a spine without toc okapi", 2, _no_spine_toc),
    "ncx-only": Case("only an ncx axolotl", 2, _ncx_only),
    "nav-only": Case("only a nav document manatee", 2, _nav_only),
    "no-toc": Case("no table of contents at all gecko", 2, _no_toc),
    "href-fragment-space": Case("fragment and space lemur", 2, _hrefs),
    "href-non-ascii": Case("non ascii name dugong", 3, _hrefs),
    "properties-scripted": Case("scripted quokka", 2, _properties, absent=("hidden",)),
    "properties-remote": Case("mathml and remote quoll", 3, _properties),
    "obfuscated-fonts": Case("obfuscated fonts are no drm ibex", 2, _obfuscated_fonts),
    "remote-resources": Case("remote resources stay remote kinkajou", 2, _remote),
    "non-linear": Case("a non linear note jerboa", 1, _nonlinear),
}


def write_case(folder: Path, name: str, version: int) -> Path:
    case = CASES[name]
    book = Book(version)
    case.build(book)
    return write(book, f"{name} in EPUB {version}", folder / f"{name}-epub{version}.epub")


def write_all(folder: Path) -> dict[Path, tuple[str, Case]]:
    """Every case in both versions: {path: (case name, case)}."""
    folder.mkdir(parents=True, exist_ok=True)
    return {
        write_case(folder, name, v): (name, case) for name, case in CASES.items() for v in VERSIONS
    }


if __name__ == "__main__":
    written = write_all(Path(sys.argv[1] if len(sys.argv) > 1 else "epub-cases"))
    print(f"{len(written)} books written")
