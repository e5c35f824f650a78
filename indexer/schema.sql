-- The index schema (version 7; upgrade.py upgrades older files). store.py applies it to a new file in one
-- transaction and records the version in PRAGMA user_version; later versions
-- add upgrade steps in store.py rather than editing this in place.
--
-- It stays an ordinary SQLite file: the FTS5 table is an external-content table
-- over `pages` in the form sqlite-utils and Datasette detect
-- (content=[pages]), with the standard unicode61 tokenizer, so any sqlite3
-- can open and search it.

-- One row per file seen under an indexed root, whatever became of it.
CREATE TABLE documents (
    id            INTEGER PRIMARY KEY,
    path          TEXT NOT NULL UNIQUE,     -- absolute path
    kind          TEXT NOT NULL,            -- pdf, epub, txt, md, html, fb2, mobi, docx, odt, djvu, image
    size          INTEGER NOT NULL,         -- bytes, when indexed
    mtime_ns      INTEGER NOT NULL,         -- modification time, when indexed
    sha256        TEXT,                     -- content hash (change and move detection)
    status        TEXT NOT NULL CHECK (status IN ('ok', 'empty', 'partial', 'error')),
    pages         INTEGER,                  -- page count (PDF pages, EPUB spine items, 1 for text)
    error         TEXT,                     -- one-line reason for 'error' and 'partial'
    failed_ranges TEXT,                     -- 'partial': JSON [[first, last, reason], ...]
    -- indexed_at: UTC, ISO 8601 (no comment at the end of a line before the
    -- closing parenthesis: SQLite's DROP COLUMN of the last column leaves the
    -- parenthesis inside it)
    indexed_at    TEXT NOT NULL,
    -- what the document says about itself (PDF info dictionary, EPUB OPF
    -- dc:*, a Markdown or HTML heading), NULL where it says nothing. authors:
    -- several joined by a semicolon, language as given (en, en-US, fr), created:
    -- ISO 8601, as far as it is known
    title         TEXT,
    authors       TEXT,
    language      TEXT,
    subject       TEXT,
    keywords      TEXT,
    created       TEXT,
    -- the document whose pages this one shares: the same bytes (sha256) at
    -- another path are indexed once, and this row holds no pages of its own
    duplicate_of  INTEGER REFERENCES documents(id) ON DELETE SET NULL,
    -- an ISBN, DOI or URN the document gives for itself (an EPUB's
    -- dc:identifier, an FB2's isbn, a Kindle book's EXTH)
    identifier    TEXT
);

-- What a no-change run compares for each file under a root (store.stats_under),
-- read from the index alone: 2.4x faster than through the path index and the
-- table (200,000 files: 0.26 s instead of 0.63 s).
CREATE INDEX documents_stat ON documents (path, size, mtime_ns, kind, status);

-- The writer looks a new document's hash up among those with pages (is it a
-- copy of one?), and a purge or change looks up a document's copies.
CREATE INDEX documents_sha256 ON documents (sha256) WHERE sha256 IS NOT NULL;
CREATE INDEX documents_duplicate ON documents (duplicate_of) WHERE duplicate_of IS NOT NULL;

-- One row per page that has text. A document's pages are written in the same
-- transaction as its documents row, so search never sees half a document.
CREATE TABLE pages (
    id      INTEGER PRIMARY KEY,
    doc_id  INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    page    INTEGER NOT NULL,                -- 1-based page / spine position
    text    TEXT NOT NULL,
    label   TEXT,                            -- printed page number (PDF page labels: xii, 237) where it differs
    line    INTEGER,                         -- a text or Markdown file's: the line the page starts at
    UNIQUE (doc_id, page)
);

-- A document's pages as a stretch of page ids, in two seeks: the lowest and
-- the highest id under its doc_id. A filtered search keeps FTS5 to the
-- stretch the filtered documents are in (search.py, _Index.bounds), and a
-- document's best page is looked for within its own.
CREATE INDEX pages_doc ON pages (doc_id);

-- The pages a search cannot find: one row for each page of a document that
-- has no text (``no text: image only``: it shows an image, a scan to OCR;
-- ``no text: blank``) or could not be read (``failed: <reason>``); ``no text``
-- alone for pages indexed before version 6, which did not record why. With
-- the pages, every page of every document read has a row: the ledger view.
-- (Only the pages without text are stored here, so the writer writes
-- nothing more for the usual page.)
CREATE TABLE page_gaps (
    doc_id  INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    page    INTEGER NOT NULL,
    label   TEXT,
    state   TEXT NOT NULL,
    PRIMARY KEY (doc_id, page)
);

-- The pages whose text OCR read (``--ocr``): by which engine, in which
-- languages, at which resolution, and the mean confidence of its words
-- (0-100, Tesseract's). A later ``--ocr`` run reads again the scans not
-- recognised yet, or recognised in other languages (plan.py).
CREATE TABLE page_ocr (
    doc_id     INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    page       INTEGER NOT NULL,
    engine     TEXT NOT NULL,
    languages  TEXT NOT NULL,
    dpi        INTEGER NOT NULL,
    confidence REAL,
    PRIMARY KEY (doc_id, page)
);

-- Every page of every document read, whether a search can find it: its
-- number, printed label, characters of text and state (text, no text: ...,
-- failed: ...). Copies (documents.duplicate_of) share the pages of theirs.
CREATE VIEW ledger AS
    SELECT d.path, p.doc_id, p.page, p.label, length(p.text) AS chars, 'text' AS state
    FROM pages p JOIN documents d ON d.id = p.doc_id
    UNION ALL
    SELECT d.path, g.doc_id, g.page, g.label, 0, g.state
    FROM page_gaps g JOIN documents d ON d.id = g.doc_id;

-- Written exactly in sqlite-utils' form: its detect_fts() and Datasette's look
-- for the literal text "content=[pages]" in this statement.
CREATE VIRTUAL TABLE [pages_fts] USING FTS5 ([text], tokenize='unicode61 remove_diacritics 2', content=[pages]);

-- New pages are indexed by the writer with one INSERT INTO pages_fts ... SELECT
-- per transaction, before it commits (and before it deletes any page): 2.6x
-- faster than a per-row AFTER INSERT trigger (tools/bench_fts_insert.py), and
-- half the writer's CPU of one statement per document on many small files.
-- Updates and deletes, including those other tools make, are kept in sync by
-- triggers.
CREATE TRIGGER [pages_ad] AFTER DELETE ON [pages] BEGIN
    INSERT INTO [pages_fts] ([pages_fts], rowid, [text]) VALUES ('delete', old.rowid, old.[text]);
END;
CREATE TRIGGER [pages_au] AFTER UPDATE OF [text] ON [pages] BEGIN
    INSERT INTO [pages_fts] ([pages_fts], rowid, [text]) VALUES ('delete', old.rowid, old.[text]);
    INSERT INTO [pages_fts] (rowid, [text]) VALUES (new.rowid, new.[text]);
END;

-- What the documents say about themselves, searchable: a title or author hit
-- ranks first (search.py). Same form as pages_fts (Datasette's search box
-- finds it on the documents table), same tokenizer, every documents row in it
-- (so FTS5's 'rebuild' and 'integrity-check' agree). Like the pages, new rows
-- are indexed by the writer in one INSERT ... SELECT per transaction (a
-- per-row trigger cost 60 us a document, more than the rest of its row:
-- store_write.index_documents_after); deletes and updates by triggers.
CREATE VIRTUAL TABLE [documents_fts] USING FTS5 ([title], [authors], [subject], [keywords], tokenize='unicode61 remove_diacritics 2', content=[documents]);
CREATE TRIGGER [documents_ad] AFTER DELETE ON [documents] BEGIN
    INSERT INTO [documents_fts] ([documents_fts], rowid, [title], [authors], [subject], [keywords])
    VALUES ('delete', old.rowid, old.title, old.authors, old.subject, old.keywords);
END;
CREATE TRIGGER [documents_au] AFTER UPDATE OF [title], [authors], [subject], [keywords] ON [documents] BEGIN
    INSERT INTO [documents_fts] ([documents_fts], rowid, [title], [authors], [subject], [keywords])
    VALUES ('delete', old.rowid, old.title, old.authors, old.subject, old.keywords);
    INSERT INTO [documents_fts] (rowid, [title], [authors], [subject], [keywords])
    VALUES (new.rowid, new.title, new.authors, new.subject, new.keywords);
END;

-- Directories the scan could not read. Files under them are not purged.
CREATE TABLE scan_errors (
    path        TEXT PRIMARY KEY,
    reason      TEXT NOT NULL,
    recorded_at TEXT NOT NULL
);

-- Every error record, for people and scripts: failed files, partially read
-- files and unreadable directories.
CREATE VIEW errors AS
    SELECT path, kind, status, error AS reason, indexed_at AS recorded_at
    FROM documents WHERE error IS NOT NULL
    UNION ALL
    SELECT path, NULL, 'scan', reason, recorded_at FROM scan_errors;

-- The plan of a run, stored as data so an interrupted run resumes: one row per
-- file that still has to be (re-)extracted. The writer deletes the row in the
-- transaction that commits the document. Rows left 'in_progress' by a dead run
-- go back to 'pending' at the next start-up.
CREATE TABLE jobs (
    path      TEXT PRIMARY KEY,
    action    TEXT NOT NULL,                -- new, changed, retry
    kind      TEXT NOT NULL,
    size      INTEGER NOT NULL,
    mtime_ns  INTEGER NOT NULL,
    state     TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'in_progress')),
    attempts  INTEGER NOT NULL DEFAULT 0,    -- runs that started this job and died
    run_id    INTEGER,
    queued_at TEXT NOT NULL
);

-- One row per `indexer index` run.
CREATE TABLE runs (
    id          INTEGER PRIMARY KEY,
    pid         INTEGER NOT NULL,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    status      TEXT NOT NULL,               -- running, ok, failed, interrupted, died
    roots       TEXT NOT NULL,               -- JSON list of the roots given
    summary     TEXT                         -- JSON counts, when finished
);

PRAGMA user_version = 7;
