"""What a user types, turned into FTS5 queries: plain words by default.

Why this module exists: people type ``C++``, ``e-mail``, ``don't``, ``*`` or
an unbalanced quote, and none of those may end in an FTS5 syntax error. This
module is the pure half of ``search``: it parses a plain query into terms and
writes the FTS5 text for them, with no database in sight, so every rule is a
unit test.

A plain query is words, ``"a phrase"``, ``word*`` (a prefix) and ``-word``
(pages or documents without it). Everything else is literal: a word's FTS5
form is its tokens as a phrase (``e-mail`` is ``"e mail"``, which the
``unicode61`` tokenizer also makes of the text ``e-mail``). A word with
symbols the tokenizer drops (``C++``, ``C#``, ``.NET``, ``node.js``) must also
appear as written: the search keeps the pages whose text holds that literal,
case-insensitively (``literals``), so ``C++`` does not find every page with a
``C`` on it. ``--fts`` bypasses all of this: the text goes to FTS5 as it is.

An index made with the ``trigram`` tokenizer matches substrings (``parse(...,
substrings=True)``): a term is its text as written, ``C++`` and ``東京都``
alike; FTS5 needs three characters for that, so a shorter term (``東京``) is
a literal the pages must hold, checked without the full-text index.

``stemmed`` turns each plain word into a prefix of its stem (``search --stem
LANG``: Snowball's stemmer, given as a function): ``разорение`` becomes
``разорен*``, which finds ``разорения``, and the index stays as any sqlite3
reads it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from indexer.errors import UsageError

# a token as unicode61 sees one, near enough: letters, digits, marks
_TOKEN = re.compile(r"[^\W_]+")
# symbols that make a word mean something its tokens do not (C++, C#, .NET,
# node.js, AT&T, $5, 50%, a@b): such a word must appear as written. Joiners
# people use variably (e-mail / e mail, don't / dont) are not among them.
_SYMBOLS = set("+#.@&/$%")
# punctuation around a word that is not part of it: "(whale)," "whale."
_AROUND = ",;:!?()[]{}<>\"'’*"
# the window within which words count as close (``NEAR``), in tokens
NEAR_TOKENS = 10
# around the matched words of a snippet
HL_START, HL_END = "\x02", "\x03"
SNIPPET_TOKENS = 24
# the shortest substring a trigram index can find
TRIGRAM = 3


@dataclass(frozen=True)
class Term:
    """One word or phrase of a plain query."""

    text: str  # as typed (without the quotes, the '-' or the '*')
    tokens: tuple[str, ...]
    prefix: bool = False
    literal: str | None = None  # must appear in the page text (lower case)
    substring: bool = False  # a trigram index's term: its text is one substring
    quoted: bool = False  # typed as "a phrase": searched as it is
    # a one-word prefix's words in the pages' vocabulary (``expanded``)
    words: tuple[str, ...] | None = None

    def fts(self) -> str:
        """The term as FTS5 text for the pages: a prefix whose vocabulary
        words are known is those words, OR-ed."""
        if self.words:
            return "(" + " OR ".join(f'"{w}"' for w in self.words) + ")"
        return self.phrase()

    def phrase(self) -> str:
        """The term as one FTS5 phrase (what ``NEAR`` and the documents'
        own index take)."""
        if self.substring:
            return '"' + self.tokens[0].replace('"', '""') + '"'
        phrase = '"' + " ".join(self.tokens) + '"'
        return phrase + "*" if self.prefix else phrase

    @property
    def short(self) -> bool:
        """Too short for a trigram index: only its ``literal`` finds it."""
        return self.substring and len(self.tokens[0]) < TRIGRAM


@dataclass(frozen=True)
class Plain:
    """A parsed plain query: the terms a hit needs, the ones it must not have."""

    terms: list[Term] = field(default_factory=list)
    excluded: list[Term] = field(default_factory=list)

    def match(self, phrases: bool = False) -> str:
        """All the terms, none of the excluded ones, as FTS5 text ("" when
        every term is too short for a trigram index). ``phrases``: each term
        as a phrase (``Term.phrase``), for the documents' index."""
        terms = [t for t in self.terms if not t.short]
        text = " ".join(t.phrase() for t in terms) if phrases else all_of(terms)
        if not text:
            return ""
        for t in self.excluded:
            text += f" NOT {t.phrase() if phrases else t.fts()}"
        return text

    def near(self) -> str | None:
        """The terms within ``NEAR_TOKENS`` of each other (None for one term,
        and for a trigram index, whose tokens are not words)."""
        if len(self.terms) < 2 or any(t.substring for t in self.terms):
            return None
        return f"NEAR({' '.join(t.phrase() for t in self.terms)}, {NEAR_TOKENS})"

    def literals(self) -> list[str]:
        return [t.literal for t in self.terms if t.literal]

    def words(self) -> list[tuple[str, bool]]:
        """(token, is a prefix) for every token a hit may show."""
        return [
            (tok, t.prefix and i == len(t.tokens) - 1)
            for t in self.terms
            for i, tok in enumerate(t.tokens)
        ]


def all_of(terms: Sequence[Term]) -> str:
    """FTS5 text for pages with every term (FTS5 takes ``a b`` for ``a AND
    b`` between phrases only, not after an OR-ed group)."""
    return (" AND " if any(t.words for t in terms) else " ").join(t.fts() for t in terms)


_OPERATORS = {"AND", "OR", "NOT", "NEAR"}


def fts_words(query: str) -> list[tuple[str, bool]]:
    """The tokens of an FTS5 query, near enough to highlight them."""
    return [
        (m.group(1).lower(), bool(m.group(2)))
        for m in re.finditer(r"([^\W_]+)(\*?)", query)
        if m.group(1) not in _OPERATORS
    ]


def long_snippet(
    text: str,
    words: Sequence[tuple[str, bool]],
    size: int = SNIPPET_TOKENS,
    substrings: bool = False,
) -> str:
    """A snippet of a page too long for FTS5's ``snippet()`` (whose work grows
    with the matches on the page: seconds on one of a few MB), or of a
    trigram index's page (whose tokens are not words): the words around the
    first match, the matches marked. Tokens are matched case-insensitively
    (``substrings``: anywhere, else as whole words or prefixes); where none
    is found (an accent the index folds), the page's first words."""
    if not words:
        return " ".join(text[:400].split()[:size])
    if substrings:
        alternatives = "|".join(re.escape(w) for w, _ in sorted(words, key=lambda x: -len(x[0])))
        pattern = re.compile(alternatives, re.IGNORECASE)
    else:
        alternatives = "|".join(
            re.escape(w) + (r"[^\W_]*" if prefix else r"(?![^\W_])") for w, prefix in words
        )
        pattern = re.compile(r"(?<![^\W_])(?:" + alternatives + ")", re.IGNORECASE)
    m = pattern.search(text)
    at = m.start() if m else 0
    before = text[max(0, at - 300) : at].split()[-(size // 3) :]
    after = text[at : at + 900].split()[: size - len(before)]
    window = " ".join(before + after)
    window = pattern.sub(lambda x: HL_START + x.group(0) + HL_END, window)
    start = "…" if at - sum(len(w) + 1 for w in before) > 0 else ""
    return start + window + "…"


def _term(
    text: str, prefix: bool = False, phrase: bool = False, substrings: bool = False
) -> Term | None:
    tokens = tuple(_TOKEN.findall(text.lower()))
    if not tokens:
        return None
    if substrings:  # the text as written (less the punctuation around a word)
        sub = (text if phrase else text.strip(_AROUND)).strip().lower()
        if not sub:
            return None
        literal = sub if len(sub) < TRIGRAM else None
        return Term(text, (sub,), literal=literal, substring=True, quoted=phrase)
    literal = None
    if not phrase:
        word = text.strip(_AROUND).rstrip(".")
        if _SYMBOLS.intersection(word):
            literal = word.lower()
    return Term(text, tokens, prefix, literal, quoted=phrase)


# a stem shorter than this is searched as the word itself (``ru*`` would
# find every word that starts with ru)
MIN_STEM = 3


def fold(word: str) -> str:
    """A word as ``remove_diacritics`` indexes it: accents gone."""
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def stemmed(plain: Plain, stem: Callable[[str], str]) -> Plain:
    """Each one-word term (not a phrase, a prefix or a word with symbols) as
    a prefix of its stem, where the stem is shorter than the word and has at
    least ``MIN_STEM`` letters. The excluded terms stay as they are."""

    def one(t: Term) -> Term:
        if len(t.tokens) != 1 or t.prefix or t.literal or t.substring or t.quoted:
            return t
        s = fold(stem(t.tokens[0]))
        if len(s) < MIN_STEM or s == fold(t.tokens[0]):
            return t
        return replace(t, tokens=(s,), prefix=True)

    return Plain([one(t) for t in plain.terms], plain.excluded)


# ISO 639-1 codes of the languages Snowball stems (its own names work too)
_SNOWBALL = {
    "ar": "arabic", "ca": "catalan", "cs": "czech", "da": "danish", "de": "german",
    "el": "greek", "en": "english", "es": "spanish", "eu": "basque", "fi": "finnish",
    "fr": "french", "ga": "irish", "hi": "hindi", "hu": "hungarian", "hy": "armenian",
    "id": "indonesian", "it": "italian", "lt": "lithuanian", "ne": "nepali", "nl": "dutch",
    "no": "norwegian", "nb": "norwegian", "pl": "polish", "pt": "portuguese",
    "ro": "romanian", "ru": "russian", "sr": "serbian", "sv": "swedish", "ta": "tamil",
    "tr": "turkish", "fa": "persian", "yi": "yiddish",
}  # fmt: skip


def stemmer(language: str) -> Callable[[str], str]:
    """Snowball's stemmer for a language code (``en``, ``pt-BR``) or name."""
    import snowballstemmer  # type: ignore[import-untyped]

    name = language.strip().lower()
    name = _SNOWBALL.get(name.split("-")[0].split("_")[0], name)
    if name not in snowballstemmer.algorithms():
        raise UsageError(
            f"--stem {language}: no stemmer for that language",
            hint="a language code (en, fr, de, ru, ...) or a Snowball name (english, french)",
        )
    stem: Callable[[str], str] = snowballstemmer.stemmer(name).stemWord
    return stem


# a prefix is searched as its words (``expanded``) where it has at most this many
EXPAND_WORDS = 64


def expandable(t: Term) -> str | None:
    """The prefix whose vocabulary words ``t`` may be searched as: a one-word
    ASCII prefix (the index folds other letters, and this side would have to
    fold them the same way), else None."""
    if not t.prefix or t.substring or len(t.tokens) != 1 or not t.tokens[0].isascii():
        return None
    return t.tokens[0]


def vocabulary_range(prefix: str) -> tuple[str, str]:
    """``lo <= word < hi`` holds for the words that start with the ASCII
    ``prefix`` (and for no others)."""
    return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)


def expanded(plain: Plain, words_of: Callable[[str], tuple[str, ...] | None]) -> Plain:
    """``plain`` with each expandable prefix given its vocabulary words
    (``words_of(prefix)``: None where there are too many to list). FTS5
    merges every word a prefix covers into one list before it returns a row,
    and again for each query that names it (100 ms for a prefix of a word on
    a million pages); its words, OR-ed, are read as far as the query needs."""

    def one(t: Term) -> Term:
        prefix = expandable(t)
        words = None if prefix is None else words_of(prefix)
        return t if not words else replace(t, words=words)

    return Plain([one(t) for t in plain.terms], [one(t) for t in plain.excluded])


_PIECE = re.compile(r'(-?)"([^"]*)("?)|(\S+)')


def parse(query: str, substrings: bool = False) -> Plain:
    """A plain query's terms. Unknown syntax is never an error: a term with
    no word in it (``*``, ``++``) is dropped, an unterminated quote runs to
    the end. ``substrings``: for a trigram index (see the module header)."""
    plain = Plain()
    for m in _PIECE.finditer(query):
        negate = False
        if m.group(4) is None:  # "a phrase", maybe -"a phrase"
            negate = bool(m.group(1))
            term = _term(m.group(2), phrase=True, substrings=substrings)
        else:
            word = m.group(4)
            if word.startswith("-") and len(word) > 1:
                negate, word = True, word[1:]
            prefix = word.endswith("*") and bool(word.strip("*"))
            term = _term(word.strip("*"), prefix=prefix, substrings=substrings)
        if term is not None:
            (plain.excluded if negate else plain.terms).append(term)
    return plain
