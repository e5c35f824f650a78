"""Generate real documents for fixtures, tests and benchmarks.

Why this module exists: tests need PDFs and EPUBs with known text on known
pages (and of any length, for chunking), and broken ones of each kind. They
are written with pymupdf (PDF) and zipfile (EPUB, so the OPF can carry what
real files carry: comments in the spine, non-linear items, DRM markers).
Everything is deterministic for a given seed.
"""

from __future__ import annotations

import random
import struct
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path

import pymupdf

WORDS = (
    "archive binder cobalt delta ember falcon garnet harbor indigo juniper kestrel lantern "
    "meadow nectar orchid pepper quartz raven saffron timber umber velvet willow xenon yarrow "
    "zephyr amber basil cedar dune fennel glacier hazel iris jasper kelp lotus maple nutmeg "
    "olive poppy quill reed sorrel thistle violet walnut"
).split()


def sentence(rng: random.Random, n: int = 12) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def page_text(rng: random.Random, paragraphs: int = 3) -> str:
    return "\n\n".join(" ".join(sentence(rng) for _ in range(3)) for _ in range(paragraphs))


def _safe(line: str) -> str:
    # pymupdf writes a line that starts with '[<' and ends with '>]' unencoded (FACTS.md)
    return line.replace("[<", "[ <") if line.startswith("[<") else line


def write_pdf(
    path: Path,
    pages: Sequence[str],
    *,
    encrypt_user: str | None = None,
    encrypt_owner: str | None = None,
    metadata: dict[str, str] | None = None,
    labels: list[dict[str, object]] | None = None,
    lang: str | None = None,
) -> Path:
    """A PDF with one text page per entry of ``pages`` (an empty string: a blank
    page); ``metadata``: its info dictionary (pymupdf's keys: title, author,
    ...), ``labels``: page label rules (``Document.set_page_labels``),
    ``lang``: the catalog's /Lang."""
    doc = pymupdf.open()
    for text in pages:
        page = doc.new_page(width=595, height=842)
        if text:
            rect = pymupdf.Rect(50, 50, 545, 792)
            body = "\n".join(_safe(line) for line in text.splitlines())
            if page.insert_textbox(rect, body, fontsize=9, fontname="helv") < 0:
                raise ValueError("page text does not fit; use shorter pages")
    if metadata:
        doc.set_metadata(metadata)
    if labels:
        doc.set_page_labels(labels)
    if lang:
        doc.xref_set_key(doc.pdf_catalog(), "Lang", pymupdf.get_pdf_str(lang))
    kwargs: dict[str, object] = {"garbage": 3, "deflate": True}
    if encrypt_user is not None or encrypt_owner is not None:
        kwargs.update(
            encryption=pymupdf.PDF_ENCRYPT_AES_256,
            user_pw=encrypt_user or "",
            owner_pw=encrypt_owner or "owner-secret",
        )
    doc.save(path, **kwargs)
    doc.close()
    return path


def write_long_pdf(path: Path, n_pages: int, seed: int = 1, marker: str | None = None) -> list[str]:
    """An ``n_pages`` PDF; page i (1-based) contains the word ``pageNNNNN``. Returns texts."""
    rng = random.Random(seed)
    texts = []
    for i in range(1, n_pages + 1):
        extra = f" {marker}" if marker else ""
        texts.append(f"page{i:05d}{extra}\n" + page_text(rng, 2))
    write_pdf(path, texts)
    return texts


def write_looping_pdf(path: Path) -> Path:
    """A small PDF whose page tree lists its own Pages node among its kids
    (a loop a naive reader follows for ever), with one real page."""
    stream = b"BT /F1 12 Tf 20 100 Td (a loop in the page tree) Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 2 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (i, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    path.write_bytes(bytes(out))
    return path


def png_bytes(size: int = 8) -> bytes:
    pix = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, size, size), False)
    pix.set_rect(pix.irect, (200, 30, 30))
    return bytes(pix.tobytes("png"))


def write_image_pdf(path: Path, n_pages: int = 2) -> Path:
    """A 'scanned' PDF: image-only pages, no text layer."""
    doc = pymupdf.open()
    img = png_bytes(64)
    for _ in range(n_pages):
        page = doc.new_page(width=595, height=842)
        page.insert_image(pymupdf.Rect(50, 50, 545, 792), stream=img)
    doc.save(path)
    doc.close()
    return path


_CONTAINER = """<?xml version="1.0" encoding="UTF-8"?>
<container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">
  <rootfiles>
    <rootfile full-path="{opf}" media-type="application/oebps-package+xml"/>
  </rootfiles>
</container>
"""

_XHTML = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE html>
<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops">
<head><title>{title}</title><style>p {{ margin: 0 }}</style></head>
<body>
<h1>{title}</h1>
{body}
</body>
</html>
"""


def _zip_write(zf: zipfile.ZipFile, name: str, data: str | bytes, stored: bool = False) -> None:
    info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    zf.writestr(info, data)


def write_epub(
    path: Path,
    chapters: Sequence[tuple[str, str]],
    *,
    spine_comment: bool = True,
    nonlinear_first: bool = True,
    opf_path: str = "OEBPS/content.opf",
    omit_opf: bool = False,
    drm: bool = False,
    omit_spine: bool = False,
    missing: Sequence[str] = (),
    dublin_core: str = "",
) -> Path:
    """An EPUB 3 whose spine lists ``chapters`` ((title, text) pairs) in order.

    With ``nonlinear_first`` the first chapter is ``linear="no"`` (it still
    counts as spine position 1); ``spine_comment`` puts an XML comment inside
    <spine>, as real files do. ``missing``: files the manifest lists but the zip
    lacks, as in sloppy real books: ``c2.xhtml`` (a chapter) or ``nav.xhtml`` are
    left out; any other name (``cover.jpg``, ``style.css``, ``toc.ncx``) is
    added to the manifest only."""
    media = {"jpg": "image/jpeg", "css": "text/css", "ncx": "application/x-dtbncx+xml"}
    items, refs = [], []
    for name in missing:
        if name != "nav.xhtml" and not (name.startswith("c") and name.endswith(".xhtml")):
            kind = media.get(name.rsplit(".", 1)[-1], "application/octet-stream")
            items.append(f'<item id="x-{name}" href="{name}" media-type="{kind}"/>')
    for i in range(1, len(chapters) + 1):
        items.append(f'<item id="c{i}" href="c{i}.xhtml" media-type="application/xhtml+xml"/>')
        linear = ' linear="no"' if (nonlinear_first and i == 1) else ""
        if spine_comment and i == 2:
            refs.append("<!-- the chapters -->")
        refs.append(f'<itemref idref="c{i}"{linear}/>')
    spine = "" if omit_spine else f"<spine>\n{chr(10).join(refs)}\n</spine>"
    opf = f"""<?xml version="1.0" encoding="UTF-8"?>
<package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="uid">
<metadata xmlns:dc="http://purl.org/dc/elements/1.1/">
<dc:identifier id="uid">urn:uuid:{zlib.crc32(path.name.encode()):012d}</dc:identifier>
{dublin_core or f"<dc:title>{path.stem}</dc:title><dc:language>en</dc:language>"}
<meta property="dcterms:modified">2024-01-01T00:00:00Z</meta>
</metadata>
<manifest>
<item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>
{chr(10).join(items)}
</manifest>
{spine}
</package>
"""
    base = opf_path.rsplit("/", 1)[0]
    nav = _XHTML.format(
        title="Contents",
        body='<nav epub:type="toc"><ol>'
        + "".join(f'<li><a href="c{i}.xhtml">{t}</a></li>' for i, (t, _) in enumerate(chapters, 1))
        + "</ol></nav>",
    )
    with zipfile.ZipFile(path, "w") as zf:
        _zip_write(zf, "mimetype", "application/epub+zip", stored=True)
        _zip_write(zf, "META-INF/container.xml", _CONTAINER.format(opf=opf_path))
        if drm:
            _zip_write(zf, "META-INF/encryption.xml", _ENCRYPTION)
        if not omit_opf:
            _zip_write(zf, opf_path, opf)
        if "nav.xhtml" not in missing:
            _zip_write(zf, f"{base}/nav.xhtml", nav)
        for i, (title, text) in enumerate(chapters, start=1):
            if f"c{i}.xhtml" in missing:
                continue
            body = "\n".join(f"<p>{para}</p>" for para in text.split("\n\n"))
            data = _XHTML.format(title=title, body=body).encode()
            if drm:
                data = bytes(random.Random(i).randrange(256) for _ in range(len(data)))
            _zip_write(zf, f"{base}/c{i}.xhtml", data)
    return path


_ENCRYPTION = """<?xml version="1.0" encoding="UTF-8"?>
<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container"
            xmlns:enc="http://www.w3.org/2001/04/xmlenc#">
  <enc:EncryptedData>
    <enc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/>
    <enc:CipherData><enc:CipherReference URI="OEBPS/c1.xhtml"/></enc:CipherData>
  </enc:EncryptedData>
</encryption>
"""


def write_corpus(
    root: Path,
    n_pdfs: int,
    pages: tuple[int, int],
    n_epubs: int = 0,
    n_texts: int = 0,
    seed: int = 7,
) -> dict[str, int]:
    """A synthetic corpus for benchmarks: returns counts."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    total_pages = 0
    for i in range(n_pdfs):
        n = rng.randint(*pages)
        write_pdf(root / f"doc{i:05d}.pdf", [page_text(rng, 2) for _ in range(n)])
        total_pages += n
    for i in range(n_epubs):
        chapters = [(f"Chapter {c}", page_text(rng, 6)) for c in range(1, rng.randint(5, 30))]
        write_epub(root / f"book{i:04d}.epub", chapters)
    for i in range(n_texts):
        (root / f"note{i:05d}.txt").write_text(page_text(rng, 4))
    return {"pdfs": n_pdfs, "pdf_pages": total_pages, "epubs": n_epubs, "texts": n_texts}


def mark_zip_encrypted(path: Path) -> Path:
    """Set the 'encrypted' flag on every entry of a zip, as a password-protected
    zip (``zip -P``) has it; the data stays as it was. Enough for a reader to
    ask for a password, without a zip tool on the machine."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        pos = zf.start_dir
    for info in infos:  # local headers: the flags at offset 6
        data[info.header_offset + 6] |= 0x1
    for _ in infos:  # central directory records: the flags at offset 8
        assert data[pos : pos + 4] == b"PK\x01\x02"
        data[pos + 8] |= 0x1
        n, m, k = struct.unpack_from("<HHH", data, pos + 28)
        pos += 46 + n + m + k
    path.write_bytes(bytes(data))
    return path


# -- the peer benchmark's corpus (tools/bench_peers.py) ------------------------------

_PROSE: list[str] = []


def prose_words() -> list[str]:
    """Real English prose, the same on every machine: the text of Python's own
    help topics (``pydoc_data``, about 65,000 words), not lorem ipsum."""
    if not _PROSE:
        from pydoc_data.topics import topics

        _PROSE.extend(" ".join(topics[k] for k in sorted(topics)).split())
    return _PROSE


def prose_page(rng: random.Random, words: int = 330) -> str:
    """About a page of prose (2 KB), from a random place, in lines of 12 words."""
    text = prose_words()
    start = rng.randrange(len(text) - words)
    chunk = text[start : start + words]
    return "\n".join(" ".join(chunk[i : i + 12]) for i in range(0, len(chunk), 12))


def write_peer_corpus(root: Path, size: float = 1.0, seed: int = 1, shape: str = "mixed") -> dict:
    """The benchmark corpus, deterministic for ``size`` and ``seed``.

    ``mixed`` (size 1: issue 13's library): 2,000 PDFs of 10-40 pages, 5 of
    1,000-5,000 pages, 200 EPUBs of about 25 chapters, 200 text files; each
    count times ``size`` (at least one big PDF). ``pdf`` and ``epub``: only
    those parts. ``tiny``: 100,000 text files of a few KB times ``size``, in
    folders of 1,000. Returns the counts (files, PDF pages, chapters)."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    counts = {"files": 0, "pdf_pages": 0, "chapters": 0}
    if shape == "tiny":
        for i in range(round(100_000 * size)):
            folder = root / f"d{i // 1000:04d}"
            if i % 1000 == 0:
                folder.mkdir(exist_ok=True)
            (folder / f"note{i:06d}.txt").write_text(prose_page(rng, rng.randint(200, 600)))
            counts["files"] += 1
        return counts
    if shape in ("mixed", "pdf"):
        plan = [(10, 40)] * round(2000 * size) + [(1000, 5000)] * max(1, round(5 * size))
        for i, (low, high) in enumerate(plan):
            n = rng.randint(low, high)
            write_pdf(root / f"pdf{i:05d}.pdf", [prose_page(rng) for _ in range(n)])
            counts["files"] += 1
            counts["pdf_pages"] += n
    if shape in ("mixed", "epub"):
        for i in range(round(200 * size)):
            chapters = [
                (f"Chapter {c}", prose_page(rng, rng.randint(600, 1500)))
                for c in range(1, rng.randint(15, 35))
            ]
            write_epub(root / f"book{i:04d}.epub", chapters)
            counts["files"] += 1
            counts["chapters"] += len(chapters)
    if shape == "mixed":
        for i in range(round(200 * size)):
            (root / f"note{i:04d}.txt").write_text(prose_page(rng, 800))
            counts["files"] += 1
    return counts


def write_raw_epub(path: Path, opf: str, files: dict[str, str | bytes]) -> Path:
    """An EPUB of the given package document (at ``content.opf``) and files,
    for the packages ``write_epub`` does not make (EPUB 2, OEBPS 1.2, legacy
    media types, fallback chains)."""
    container = (
        '<?xml version="1.0"?><container version="1.0" '
        'xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles>'
        '<rootfile full-path="content.opf" media-type="application/oebps-package+xml"/>'
        "</rootfiles></container>"
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        z.writestr("META-INF/container.xml", container)
        z.writestr("content.opf", opf)
        for name, data in files.items():
            z.writestr(name, data)
    return path


def write_scanned_pdf(
    path: Path,
    texts: list[str],
    dpi: int = 200,
    noise: float = 0.002,
    angle: float = 1.5,
    seed: int = 1,
) -> Path:
    """An image-only PDF, one page per text: each text typeset on a page
    turned by ``angle`` degrees (a scanner's skew), rendered at ``dpi``, a
    share ``noise`` of its pixels flipped, and placed as the page's only
    content: what a scanner makes of a printed page."""
    rng = random.Random(seed)
    out = pymupdf.open()
    for text in texts:
        src = pymupdf.open()
        page = src.new_page()
        box = pymupdf.Rect(60, 60, 552, 760)
        page.insert_textbox(box, text, fontsize=13, morph=(box.tl, pymupdf.Matrix(angle)))
        pix = page.get_pixmap(dpi=dpi, colorspace=pymupdf.csGRAY)
        samples = bytearray(pix.samples)
        for _ in range(int(noise * len(samples))):
            i = rng.randrange(len(samples))
            samples[i] = 255 - samples[i]
        noisy = pymupdf.Pixmap(pymupdf.csGRAY, pix.width, pix.height, bytes(samples), False)
        dest = out.new_page(width=page.rect.width, height=page.rect.height)
        dest.insert_image(dest.rect, stream=noisy.tobytes("png"))
    out.save(str(path), garbage=3, deflate=True)
    return path


def scan_pixmaps(texts: list[str], dpi: int = 200, noise: float = 0.002, seed: int = 1) -> list:
    """The pages ``write_scanned_pdf`` would place, as grey pixmaps."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        pdf = pymupdf.open(write_scanned_pdf(Path(tmp) / "scan.pdf", texts, dpi, noise, seed=seed))
        return [page.get_pixmap(dpi=dpi, colorspace=pymupdf.csGRAY) for page in pdf]


def write_tiff(path: Path, pixmaps: list, dpi: int = 200) -> Path:
    """A multi-page TIFF of grey 8-bit pixmaps, uncompressed (one frame a
    page), as scanners write them: MuPDF reads TIFF but does not write it."""
    out = bytearray(b"II*\x00\x00\x00\x00\x00")
    link = 4  # where the offset of the next IFD goes
    for pix in pixmaps:
        data_at = len(out)
        out += bytes(pix.samples)
        res_at = len(out)
        out += struct.pack("<II", dpi, 1)
        tags = [
            (256, 4, pix.width),
            (257, 4, pix.height),
            (258, 3, 8),
            (259, 3, 1),
            (262, 3, 1),
            (273, 4, data_at),
            (277, 3, 1),
            (278, 4, pix.height),
            (279, 4, len(pix.samples)),
            (282, 5, res_at),
            (283, 5, res_at),
            (296, 3, 2),
        ]
        if len(out) % 2:
            out += b"\x00"
        ifd_at = len(out)
        struct.pack_into("<I", out, link, ifd_at)
        out += struct.pack("<H", len(tags))
        for tag, kind, value in tags:
            if kind == 3:
                out += struct.pack("<HHIHH", tag, kind, 1, value, 0)
            else:
                out += struct.pack("<HHII", tag, kind, 1, value)
        link = len(out)
        out += b"\x00\x00\x00\x00"
    path.write_bytes(bytes(out))
    return path
