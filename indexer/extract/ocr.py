"""OCR: the text of a scanned page, through the system's Tesseract.

Why this module exists: a page with no text layer is a picture of text, and
many real libraries are scans. MuPDF renders the page at ``dpi`` (grey, as
PNG) and Tesseract (Debian's ``tesseract-ocr``, a program of the system, not
a Python package) reads it, one process per page with ``OMP_THREAD_LIMIT=1``
so that N workers use N cores. Its TSV output gives each word's confidence,
which pymupdf's own OCR call (``get_textpage_ocr``) does not; the text is
rebuilt from it line by line, paragraph by paragraph. ``problem`` says in
one line, before a run, why OCR cannot run here (no tesseract, a language
not installed), so that the run warns once instead of failing every page.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

from indexer.errors import ExtractError

from .base import Extracted, Recognised, describe_content, page_read, read_head

MODES = ("never", "auto", "always")
# auto: a page with no text whose images cover this share of it (summed: a
# scan may come in strips, as PCLm printers and some scanners write it)
SCAN_AREA = 0.5
# a page rendered larger than this many pixels is rendered at a lower DPI
# (an A0 poster at 300 dpi is 140 million): memory, not detail, is the limit
MAX_PIXELS = 40_000_000


@dataclass(frozen=True)
class OcrSpec:
    """How pages are recognised in a run."""

    mode: str = "auto"  # auto or always (never: no spec at all)
    languages: str = "eng"  # Tesseract's form: eng+deu
    dpi: int = 300
    timeout: float = 120.0  # seconds for one page

    def record(self, dpi: int, confidence: float | None) -> Recognised:
        """What the index records of a page recognised at ``dpi``."""
        return (engine(), self.languages, dpi, confidence)


def tesseract() -> str | None:
    return shutil.which("tesseract")


@functools.cache
def engine() -> str:
    """``tesseract 5.3.0``: the engine named in the index's OCR records."""
    program = tesseract()
    if program is None:
        return "tesseract"
    try:
        out = subprocess.run(
            [program, "--version"], capture_output=True, text=True, timeout=30
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "tesseract"
    first = out.splitlines()[0].strip() if out.strip() else "tesseract"
    return first[:40]


def installed_languages(program: str) -> set[str] | None:
    try:
        proc = subprocess.run([program, "--list-langs"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = (proc.stdout + proc.stderr).splitlines()
    return {ln.strip() for ln in lines if ln.strip() and " " not in ln.strip()}


def problem(spec: OcrSpec) -> tuple[str, str] | None:
    """Why OCR cannot run here, and the hint: None where it can."""
    program = tesseract()
    if program is None:
        return (
            "tesseract is not installed: scanned pages are not recognised",
            "apt-get install tesseract-ocr (or: brew install tesseract)",
        )
    have = installed_languages(program)
    if have is None:
        return ("tesseract does not run: scanned pages are not recognised", "check tesseract -v")
    missing = [lang for lang in spec.languages.split("+") if lang and lang not in have]
    if missing:
        where = os.environ.get("TESSDATA_PREFIX")
        return (
            f"OCR language {missing[0]} is not installed"
            + (f" in TESSDATA_PREFIX={where}" if where else "")
            + ": scanned pages are not recognised",
            f"apt-get install tesseract-ocr-{missing[0]}",
        )
    return None


def is_scan(page: Any) -> bool:
    """Do the page's images cover most of it (a scan, not a logo on a blank
    page)? Their areas on the page, summed."""
    area = abs(page.rect.width * page.rect.height)
    if area <= 0:
        return False
    try:
        infos = page.get_image_info()
    except Exception:
        return False
    r = page.rect
    covered = 0.0
    for info in infos:
        x0, y0, x1, y1 = info.get("bbox", (0, 0, 0, 0))
        covered += max(0.0, min(x1, r.x1) - max(x0, r.x0)) * max(0.0, min(y1, r.y1) - max(y0, r.y0))
        if covered >= SCAN_AREA * area:
            return True
    return False


def render(page: Any, dpi: int) -> tuple[bytes, int]:
    """The page as a grey PNG, at ``dpi`` or lower where that would be
    more than ``MAX_PIXELS``: the PNG and the DPI used."""
    import pymupdf

    inches = abs(page.rect.width * page.rect.height) / (72 * 72)
    if inches * dpi * dpi > MAX_PIXELS:
        dpi = max(50, int((MAX_PIXELS / inches) ** 0.5))
    pix = page.get_pixmap(dpi=dpi, colorspace=pymupdf.csGRAY, alpha=False)
    return pix.tobytes("png"), dpi


def recognise_page(page: Any, spec: OcrSpec) -> tuple[str, Recognised]:
    """The text Tesseract reads on a PDF page, and its record."""
    png, dpi = render(page, spec.dpi)
    text, confidence = recognise(png, spec.languages, dpi, spec.timeout)
    return text, spec.record(dpi, confidence)


def recognise(png: bytes, languages: str, dpi: int, timeout: float) -> tuple[str, float | None]:
    """Text and mean word confidence of an image (PNG bytes)."""
    program = tesseract()
    if program is None:
        raise ExtractError("OCR failed: tesseract is not installed")
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    try:
        proc = subprocess.run(
            [program, "stdin", "stdout", "-l", languages, "--dpi", str(dpi), "tsv"],
            input=png,
            capture_output=True,
            timeout=timeout,
            env=env,
        )
    except subprocess.TimeoutExpired:
        raise ExtractError(f"OCR timed out (more than {timeout:g} s for a page)") from None
    except OSError as e:
        raise ExtractError(f"OCR failed: {e.strerror or e}") from None
    if proc.returncode != 0:
        lines = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        why = " ".join(lines[-1].split())[:120] if lines else f"exit status {proc.returncode}"
        raise ExtractError(f"OCR failed: {why}")
    return parse_tsv(proc.stdout.decode("utf-8", "replace"))


def parse_tsv(tsv: str) -> tuple[str, float | None]:
    """Tesseract's TSV as text (words of a line joined by spaces, lines by
    newlines, paragraphs by a blank line) and the mean confidence of its
    words (None: no words)."""
    lines: dict[tuple[int, int, int], list[str]] = {}
    confidences: list[float] = []
    for row in tsv.splitlines()[1:]:
        cols = row.split("\t")
        if len(cols) < 12 or cols[0] != "5":
            continue
        word = cols[11].strip()
        try:
            conf = float(cols[10])
        except ValueError:
            continue
        if not word or conf < 0:
            continue
        key = (int(cols[2]), int(cols[3]), int(cols[4]))
        lines.setdefault(key, []).append(word)
        confidences.append(conf)
    out: list[str] = []
    last_par: tuple[int, int] | None = None
    for (block, par, _line), words in lines.items():
        if last_par is not None and (block, par) != last_par:
            out.append("")
        out.append(" ".join(words))
        last_par = (block, par)
    mean = round(sum(confidences) / len(confidences), 1) if confidences else None
    return "\n".join(out), mean


def extract_image(path: str, ocr: OcrSpec | None) -> Extracted:
    """An image file (PNG, JPEG, TIFF; each frame of a multi-page TIFF a
    page), read at its own resolution. Without ``ocr``: its pages, none with
    text (``no text: image only``)."""
    import pymupdf

    try:
        doc: Any = pymupdf.open(path)  # type: ignore[no-untyped-call]
    except Exception:
        what = describe_content(read_head(path))
        raise ExtractError(f"not an image ({what})" if what else "not a readable image") from None
    try:
        if doc.is_pdf or doc.page_count < 1:
            raise ExtractError("not an image")
        count = int(doc.page_count)
        if ocr is None:
            return Extracted(count, 1, count, images=list(range(1, count + 1)))
        pages, images, failed = [], [], []
        recognised: dict[int, Recognised] = {}
        for n in range(1, count + 1):
            try:
                try:
                    page = doc.load_page(n - 1)
                    infos = page.get_image_info()
                    xres = int(infos[0].get("xres") or 0) if infos else 0
                    native = xres if xres >= 50 else 72  # (as many pixels as the image has)
                    png, dpi = render(page, native)
                except Exception as e:  # MuPDF reads an image when it is drawn
                    why = " ".join(str(e).split())[:120] or type(e).__name__
                    raise ExtractError(f"damaged image ({why})") from None
                text, confidence = recognise(png, ocr.languages, xres or 300, ocr.timeout)
            except ExtractError as e:
                if count == 1:
                    raise
                failed.append((n, n, str(e)))
                continue
            finally:
                page_read()
            recognised[n] = ocr.record(xres or dpi, confidence)
            if text.strip():
                pages.append((n, text))
            else:
                images.append(n)
        return Extracted(count, 1, count, pages, failed, images=images, recognised=recognised)
    finally:
        doc.close()
