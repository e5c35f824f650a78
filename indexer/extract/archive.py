"""Zip containers and the XML inside them, read safely: EPUB, DOCX, ODT, FB2.ZIP.

Why this module exists: four formats are a zip of XML documents, and each
meets the same hostile input. A zip that is not one, or is truncated, gets a
one-line reason saying what the file really is; a member that inflates to
more than ``MAX_MEMBER`` bytes (a zip bomb: 10 GB of zeros in a 10 MB file)
is refused before a byte of it is inflated, from the size the central
directory declares (zipfile never inflates past that size, so a lying
directory cannot get round it); XML is parsed with no entity expanded, no DTD
loaded and nothing fetched over the network, so a DOCTYPE that declares
external entities (``<!ENTITY x SYSTEM "file:///etc/passwd">``) or a billion
laughs stays inert.
"""

from __future__ import annotations

import zipfile
import zlib
from typing import Any

from lxml import etree

from indexer.errors import ExtractError

from .base import describe_content, one_line, read_head

# The most one member of an archive may inflate to. The largest chapter in
# the corpus is 292 KB; a 100 MB text file is a long one.
MAX_MEMBER = 256 * 1024 * 1024

# Damaged markup recovered, no entity expanded, no DTD loaded, nothing fetched.
SAFE_XML = etree.XMLParser(
    recover=True, resolve_entities=False, load_dtd=False, no_network=True, huge_tree=True
)


def open_zip(path: str, what: str) -> zipfile.ZipFile:
    """The archive at ``path``, or ExtractError saying why ``what`` (``"a
    DOCX"``) cannot be read: not a zip (and what it is instead), damaged,
    password-protected."""
    head = read_head(path)
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise ExtractError(zip_reason(head, what)) from None
    except (OSError, EOFError, zipfile.LargeZipFile, zlib.error, UnicodeDecodeError) as e:
        raise ExtractError(f"damaged zip ({one_line(e, 120)})") from None
    except NotImplementedError as e:
        raise ExtractError(f"unsupported zip ({one_line(e, 120)})") from None
    if any(info.flag_bits & 0x1 for info in zf.infolist()):
        zf.close()
        raise ExtractError("encrypted: the zip archive needs a password")
    return zf


def zip_reason(head: bytes, what: str) -> str:
    """Why a file that zipfile refused is not ``what``, from its first bytes."""
    content = describe_content(head)
    if content == "a zip archive":
        return "damaged zip archive (truncated or corrupt)"
    if head.startswith(b"\xd0\xcf\x11\xe0") and what in ("a DOCX", "an ODT"):
        # an OLE2 compound file: how Office saves a document with a password
        return "encrypted: a password is required (an Office file saved with one)"
    if content == "unrecognised content":
        return f"not {what} (not a zip archive)"
    return f"not {what} (the file is {content})"


def member(zf: zipfile.ZipFile, name: str) -> zipfile.ZipInfo | None:
    """The member called ``name``, also when the archive spells it with
    another case or with backslashes (archives made on Windows)."""
    try:
        return zf.getinfo(name)
    except KeyError:
        pass
    wanted = name.replace("\\", "/").lstrip("/").lower()
    for info in zf.infolist():
        if info.filename.replace("\\", "/").lstrip("/").lower() == wanted:
            return info
    return None


def read_member(zf: zipfile.ZipFile, name: str, limit: int | None = None) -> bytes:
    """The bytes of member ``name``; ExtractError when it is missing, damaged
    or would inflate past ``limit`` (``MAX_MEMBER``)."""
    limit = MAX_MEMBER if limit is None else limit
    info = member(zf, name)
    if info is None:
        raise ExtractError(f"{name} missing from the archive")
    if info.file_size > limit:
        raise ExtractError(
            f"{name} inflates to {info.file_size // (1024 * 1024)} MiB, over the "
            f"{limit // (1024 * 1024)} MiB limit (a zip bomb?)"
        )
    try:
        return zf.read(info)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as e:
        raise ExtractError(f"{name} is damaged in the archive ({one_line(e, 80)})") from None
    except NotImplementedError as e:
        raise ExtractError(f"{name} uses an unsupported compression ({one_line(e, 80)})") from None


def parse_xml(data: bytes, what: str) -> Any:
    """The root element of XML bytes (recovered where damaged, with entities
    left unexpanded); ExtractError when nothing can be recovered."""
    try:
        root = etree.fromstring(data, SAFE_XML)
    except etree.XMLSyntaxError as e:
        raise ExtractError(f"{what} is not well-formed XML ({one_line(e, 80)})") from None
    if root is None:
        raise ExtractError(f"{what} is not XML")
    return root


def local(tag: object) -> str:
    """An element's tag without its namespace ('' for comments and the like)."""
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""
