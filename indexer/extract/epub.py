"""EPUB: one record per spine item, in reading order (page number = spine position).

Why this module exists: an EPUB is a zip holding ``META-INF/container.xml``,
which names the OPF package document, whose ``<spine>`` lists the content
documents in reading order. ebooklib reads the package for us; this module adds
what a robust indexer needs around it:

* clear reasons for the ways real files are broken (not a zip, truncated zip,
  no container.xml, missing OPF, no spine, DRM-encrypted content);
* a file the manifest lists but the zip lacks or cannot decompress (a cover
  image, a stylesheet, the NCX, even a chapter: common in hand-made or damaged
  books) does not lose the book, as it does in ebooklib: such a chapter is a
  failed page, the rest is indexed, and the table of contents (NCX or nav,
  which the text does not need) may be missing or malformed;
* a reference spelt loosely (another case, ``\\`` for ``/``, a leading ``/``:
  books made on Windows or by hand) finds its file;
* spine positions that match the OPF: ebooklib 0.20 turns XML comments inside
  ``<spine>`` into ``(None, None)`` entries, which would shift every page number;
  non-linear items still count, an itemref to a missing item keeps its position;
* text from XHTML, HTML, OEBPS 1.2 documents, DTBook and SVG with the block
  structure kept (see ``html.py``); an item of another type is read through
  its manifest ``fallback`` chain; image spine items have no text, so an
  image-only book is ``empty``, not an error;
* OEBPS 1.2 packages, whose elements ebooklib cannot find (another
  namespace), are read by ``_Package``, by local names.

pymupdf can open EPUBs too, but it lays them out into pages first, about 40x
slower (see FACTS.md), so it is not used here.
"""

from __future__ import annotations

import posixpath as zip_path  # zip member names, joined as ebooklib joins them
import re
import warnings
import zipfile
import zlib
from typing import Any
from urllib.parse import unquote

from lxml import etree

from indexer.errors import ExtractError

from .archive import local, zip_reason
from .base import (
    Extracted,
    Meta,
    Page,
    Recognised,
    clean_text,
    one_line,
    page_read,
    read_head,
)
from .html import markup_to_text
from .ocr import OcrSpec, recognise

# Font obfuscation (IDPF and Adobe) is not DRM: the text stays readable.
_FONT_OBFUSCATION = {"http://www.idpf.org/2008/embedding", "http://ns.adobe.com/pdf/enc#RC"}
_ENC_NS = "http://www.w3.org/2001/04/xmlenc#"


def _check_container(path: str) -> None:
    head = read_head(path)
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            if "META-INF/container.xml" not in names and not any(
                _loose(n) == "meta-inf/container.xml" for n in names
            ):
                raise ExtractError("not an EPUB: no META-INF/container.xml")
            if any(info.flag_bits & 0x1 for info in zf.infolist()):
                raise ExtractError("encrypted: the zip archive needs a password")
            if "META-INF/encryption.xml" in names:
                _check_encryption(zf.read("META-INF/encryption.xml"))
    except zipfile.BadZipFile:
        raise ExtractError(zip_reason(head, "an EPUB")) from None
    except (OSError, EOFError, zipfile.LargeZipFile, zlib.error, UnicodeDecodeError) as e:
        # UnicodeDecodeError: a member name flagged UTF-8 that is not
        raise ExtractError(f"damaged zip ({one_line(e, 120)})") from None
    except NotImplementedError as e:  # zipfile: a format version or method it lacks
        raise ExtractError(f"unsupported zip ({one_line(e, 120)})") from None


def _check_encryption(data: bytes) -> None:
    try:
        root = etree.fromstring(data, etree.XMLParser(recover=True, resolve_entities=False))
    except etree.XMLSyntaxError:
        return
    if root is None:
        return
    for method in root.iter(f"{{{_ENC_NS}}}EncryptionMethod"):
        if method.get("Algorithm") not in _FONT_OBFUSCATION:
            raise ExtractError("DRM-protected: the content documents are encrypted")


_CONTAINER_NS = "urn:oasis:names:tc:opendocument:xmlns:container"


def _read_book(path: str):  # type: ignore[no-untyped-def]
    """(book, {zip name: why it could not be read} for the files the manifest
    lists that the zip lacks or cannot decompress, the OPF's folder in the zip,
    the OPF's root element)."""
    from ebooklib import epub

    unreadable: dict[str, str] = {}
    loose: dict[str, str] = {}  # _loose(zip member name) -> the name

    class Reader(epub.EpubReader):  # type: ignore[misc]
        opf = b""  # the package document's bytes, as ebooklib read them

        def read_file(self, name: str) -> bytes:
            try:
                try:
                    data: bytes = super().read_file(name)
                    if name == self.opf_file:
                        self.opf = data
                    return data
                except KeyError:
                    # books made on Windows or by hand: another case, backslashes,
                    # a leading slash
                    if not loose:
                        loose.update((_loose(n), n) for n in reversed(self.zf.namelist()))
                    real = loose.get(_loose(name)) or loose.get(_loose(_href_path(name)))
                    if real is None:
                        raise
                    return self.zf.read(real)  # type: ignore[no-any-return]
            except (KeyError, zipfile.BadZipFile, zlib.error, NotImplementedError) as e:
                # the container and the OPF are needed; anything else is read
                # as empty and noted
                if name == "META-INF/container.xml" or name == self.opf_file:
                    raise
                unreadable[zip_path.normpath(name)] = (
                    "missing from the archive"
                    if isinstance(e, KeyError)
                    else f"unreadable in the archive ({one_line(e, 80)})"
                )
                return b""

        def _parse_ncx(self, data: bytes) -> None:
            try:
                super()._parse_ncx(data)
            except Exception:  # the table of contents only; the text does not need it
                pass

        def _parse_nav(self, data: bytes, base_path: str, navtype: str = "toc") -> None:
            try:
                super()._parse_nav(data, base_path, navtype)
            except Exception:  # as above
                pass

        def _load_container(self) -> None:
            opf = _package_path(self.read_file("META-INF/container.xml"))
            if opf is None:
                raise epub.EpubException(0, "the container names no package document")
            self.opf_file = opf
            self.opf_dir = zip_path.dirname(opf)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            reader = Reader(path, {"ignore_ncx": True})
            try:
                book = reader.load()
                reader.process()
            except AttributeError:  # a package ebooklib cannot read: OEBPS 1.2's
                package = _Package(path)
                return package, {}, package.opf_dir, package.root
            return book, unreadable, reader.opf_dir, _opf_root(reader.opf)
        except epub.EpubException as e:
            if "container" in str(e).lower():
                raise ExtractError("OPF package document missing or unreadable") from None
            raise ExtractError(f"damaged EPUB ({one_line(e, 120)})") from None
        except KeyError as e:
            raise ExtractError(f"damaged EPUB: {e.args[0] if e.args else e}") from None
        except TypeError:
            # ebooklib iterates a spine it did not find
            raise ExtractError("OPF has no spine") from None
        except (zipfile.BadZipFile, etree.XMLSyntaxError, OSError, EOFError, zlib.error) as e:
            raise ExtractError(f"damaged EPUB ({one_line(e, 120)})") from None
        except NotImplementedError as e:  # zipfile: a compression method it lacks
            raise ExtractError(f"unsupported EPUB ({one_line(e, 120)})") from None


def _loose(name: str) -> str:
    """A zip member name as a sloppy reference may spell it: any case, ``\\``
    for ``/``, a leading ``/``."""
    return zip_path.normpath(name.replace("\\", "/")).lstrip("/").lower()


def _is_text_item(media_type: str) -> bool:
    """A content document: XHTML, HTML, SVG (its text, titles and
    descriptions), DTBook, OEBPS 1.2's documents, other XML."""
    mt = media_type.lower()
    return "html" in mt or "dtbook" in mt or "oeb1-document" in mt or mt.endswith("xml")


# what a package is parsed with: damaged markup recovered, no entity expanded,
# nothing fetched
_XML = etree.XMLParser(recover=True, resolve_entities=False, no_network=True)


def _package_path(container: bytes) -> str | None:
    """The package document the container names: OCF's default rendition is
    the first ``<rootfile>`` of the package type (ebooklib keeps the *last*,
    and fails on one without a path)."""
    tree = etree.fromstring(container, _XML)
    for rootfile in () if tree is None else tree.iter(f"{{{_CONTAINER_NS}}}rootfile"):
        opf = rootfile.get("full-path")
        if opf and rootfile.get("media-type") == "application/oebps-package+xml":
            return str(opf)
    return None


def _opf_root(opf: bytes) -> Any:
    """The package document's root element, or None."""
    return etree.fromstring(opf, _XML) if opf.strip() else None


def _fallbacks(root: Any) -> dict[str, str]:
    """Each manifest item's ``fallback`` (by id), read in any namespace or
    none (OEBPS 1.2 has its own)."""
    fallbacks: dict[str, str] = {}
    for el in () if root is None else root.iter():
        if local(el.tag) == "item" and el.get("id") and el.get("fallback"):
            fallbacks[str(el.get("id"))] = str(el.get("fallback"))
    return fallbacks


def _href_path(href: str) -> str:
    """A manifest href as a path: without its fragment, percent-decoded."""
    return unquote(href.split("#", 1)[0])


class _Item:
    """A manifest item of ``_Package``, as ebooklib's items look to ``extract_epub``."""

    def __init__(
        self, zf: zipfile.ZipFile, zip_name: str, file_name: str, id: str, media_type: str
    ) -> None:
        self.zf, self.zip_name, self.file_name = zf, zip_name, file_name
        self.id, self.media_type = id, media_type

    @property
    def content(self) -> bytes:
        try:
            return self.zf.read(self.zip_name)
        except KeyError:
            real = {_loose(n): n for n in self.zf.namelist()}.get(_loose(self.zip_name))
            if real is None:
                raise ExtractError(f"{self.file_name} missing from the archive") from None
            return self.zf.read(real)


class _Package:
    """An OPF read without ebooklib, for the packages it cannot read (OEBPS
    1.2's, whose elements are in another namespace): the manifest, the spine
    and the Dublin Core, by local name. Reads as ebooklib's book does, as far
    as ``extract_epub`` asks."""

    def __init__(self, path: str) -> None:
        self.zf = zipfile.ZipFile(path)
        names = {_loose(n): n for n in self.zf.namelist()}
        full = _package_path(self.zf.read(names["meta-inf/container.xml"]))
        if full is None or _loose(full) not in names:
            raise ExtractError("OPF package document missing or unreadable")
        self.root = root = _opf_root(self.zf.read(names[_loose(full)]))
        if root is None:
            raise ExtractError("OPF package document missing or unreadable")
        self.opf_dir = zip_path.dirname(full)
        self.items: dict[str, _Item] = {}
        self.spine: list[tuple[str, str]] = []
        for el in root.iter():
            tag = local(el.tag).lower()
            if tag == "item" and el.get("id") and el.get("href"):
                href = _href_path(str(el.get("href")))
                name = zip_path.normpath(zip_path.join(self.opf_dir, href))
                self.items[str(el.get("id"))] = _Item(
                    self.zf, name, href, str(el.get("id")), str(el.get("media-type") or "")
                )
            elif tag == "itemref" and el.get("idref"):
                self.spine.append((str(el.get("idref")), str(el.get("linear") or "yes")))
        if not self.spine:
            raise ExtractError("OPF has no spine items")

    def get_item_with_id(self, idref: str) -> _Item | None:
        return self.items.get(idref)

    def close(self) -> None:
        self.zf.close()


def extract_epub(path: str, ocr: OcrSpec | None = None) -> Extracted:
    """Text of every spine item; ``page_count`` is the number of OPF itemrefs.
    ``ocr``: a page that is a picture (a bitmap spine item, or a page of no
    text around one image: a comic's, a scanned book's) is recognised."""
    _check_container(path)
    book, unreadable, opf_dir, opf = _read_book(path)
    fallbacks = _fallbacks(opf)
    spine = [idref for idref, _linear in book.spine if idref is not None]
    if not spine:
        raise ExtractError("OPF has no spine items")
    pages: list[Page] = []
    failed: list[tuple[int, int, str]] = []
    images: list[int] = []
    recognised: dict[int, Recognised] = {}
    for position, idref in enumerate(spine, start=1):
        item = book.get_item_with_id(idref)
        for _hop in range(8):  # a type a reader need not know: its fallback chain
            mt = (item.media_type or "").lower() if item is not None else ""
            if item is None or _is_text_item(mt) or mt.startswith("image/"):
                break  # (a bitmap page is the page: its fallback is a reader's stand-in)
            fallback = fallbacks.get(getattr(item, "id", None) or "")
            item = book.get_item_with_id(fallback) if fallback else None
        if item is not None and (item.media_type or "").lower().startswith("image/"):
            if not _recognised(ocr, item, position, pages, recognised, failed):
                images.append(position)
        if item is None or not _is_text_item(item.media_type or ""):
            continue
        name = zip_path.normpath(zip_path.join(opf_dir, _href_path(item.file_name)))
        if name in unreadable:
            failed.append((position, position, f"chapter {item.file_name} {unreadable[name]}"))
            continue
        try:
            # (the bytes as stored: ebooklib's get_content() rebuilds an XHTML
            # chapter, losing its DOCTYPE and moving <title> into the body)
            content = item.content
            text = clean_text(markup_to_text(content))
        except Exception as e:  # one bad chapter must not lose the book
            failed.append((position, position, f"unreadable chapter ({one_line(e, 120)})"))
            continue
        finally:
            page_read()
        if text:
            pages.append((position, text))
        elif b"<img" in content or b"<image" in content:  # (a cover, a scanned page)
            picture = _page_image(book, item, content) if ocr is not None else None
            if not _recognised(ocr, picture, position, pages, recognised, failed):
                images.append(position)
    meta = _meta(opf)
    if isinstance(book, _Package):
        book.close()
    return Extracted(
        len(spine), 1, len(spine), pages, failed, meta, images=images, recognised=recognised
    )


_IMAGE_REF = re.compile(
    rb"""<(?:\w+:)?(?:img|image)\b[^>]*?(?:src|href)\s*=\s*["']([^"']+)""", re.I
)


def _page_image(book: Any, item: Any, content: bytes) -> Any | None:
    """The manifest item of the one picture a page of no text shows."""
    refs = _IMAGE_REF.findall(content)
    if len(refs) != 1:
        return None
    href = refs[0].decode("utf-8", "replace")
    name = zip_path.normpath(zip_path.join(zip_path.dirname(item.file_name), _href_path(href)))
    found = book.get_item_with_href(name)
    media = (getattr(found, "media_type", "") or "").lower()
    return found if media.startswith("image/") else None  # (an SVG: _recognised says no)


def _recognised(
    ocr: OcrSpec | None,
    picture: Any | None,
    position: int,
    pages: list[Page],
    recognised: dict[int, Recognised],
    failed: list[tuple[int, int, str]],
) -> bool:
    """OCR the page's picture: True where that was done (its text, if any,
    in ``pages``)."""
    media = (getattr(picture, "media_type", "") or "").lower()
    if ocr is None or picture is None or media == "image/svg+xml":
        return False
    try:
        text, confidence = recognise(picture.content, ocr.languages, 300, ocr.timeout)
    except ExtractError as e:
        failed.append((position, position, str(e)))
        return True
    finally:
        page_read()
    recognised[position] = ocr.record(300, confidence)
    if text.strip():
        pages.append((position, clean_text(text)))
        return True
    return False


def _meta(opf: Any) -> Meta | None:
    """The package's Dublin Core, read by local name (EPUB 2 and 3, and
    OEBPS 1.2's ``dc:Title``): the main ``dc:title``; the ``dc:creator``s
    whose role (EPUB 2's ``opf:role``, EPUB 3's ``role`` refinement) is
    author or unstated (all of them where none is); ``dc:language``;
    ``dc:subject`` as keywords; ``dc:description``; the publication
    ``dc:date`` (EPUB 2 may list several events), else the first; the
    package's unique ``dc:identifier``, else the first."""
    found = () if opf is None else opf.iter()
    metadata = next((el for el in found if local(el.tag) == "metadata"), None)
    if metadata is None:
        return None
    refined: dict[tuple[str, str], str] = {}  # (id, property) -> value
    elements: list[tuple[str, Any, str]] = []  # (local name, element, its text)
    for el in metadata.iter(etree.Element):  # (not its comments)
        name = local(el.tag).lower()
        text = " ".join("".join(el.itertext()).split())
        if name == "meta" and el.get("refines") and el.get("property"):
            refined[(str(el.get("refines")).lstrip("#"), str(el.get("property")))] = text
        elif text:
            elements.append((name, el, text))

    def attr(el: Any, name: str) -> str | None:  # in the OPF namespace, or none
        return next((str(v) for k, v in el.attrib.items() if local(k) == name), None)

    def values(name: str) -> list[tuple[Any, str]]:
        return [(el, text) for n, el, text in elements if n == name]

    def role(el: Any) -> str | None:
        return attr(el, "role") or refined.get((str(el.get("id")), "role"))

    titles = values("title")
    main = [t for el, t in titles if refined.get((str(el.get("id")), "title-type")) == "main"]
    creators = values("creator")
    authors = [t for el, t in creators if role(el) in (None, "aut")] or [t for _el, t in creators]
    dates = values("date")
    published = [t for el, t in dates if (attr(el, "event") or "").endswith("publication")]
    undated = [t for el, t in dates if attr(el, "event") is None]

    def first(found: list[str]) -> str | None:
        return found[0] if found else None

    # the package's unique identifier (its <package unique-identifier="...">)
    identifiers = values("identifier")
    uid = opf.get("unique-identifier")
    unique = [t for el, t in identifiers if uid and el.get("id") == uid]

    return Meta.of(
        title=first(main or [t for _el, t in titles]),
        authors="; ".join(authors) or None,
        language=first([t for _el, t in values("language")]),
        subject=first([t for _el, t in values("description")]),
        keywords=", ".join(t for _el, t in values("subject")) or None,
        created=first(published or undated or [t for _el, t in dates]),
        identifier=first(unique or [t for _el, t in identifiers]),
    )
