"""indexer/query.py: plain queries parsed into FTS5 text, without a database."""

from __future__ import annotations

import pytest

from indexer.errors import UsageError
from indexer.query import parse


@pytest.mark.parametrize(
    ("typed", "match", "literals"),
    [
        ("white whale", '"white" "whale"', []),
        ('"white whale" ahab', '"white whale" "ahab"', []),
        ('C++ "unterminated', '"c" "unterminated"', ["c++"]),
        ("e-mail don't", '"e mail" "don t"', []),
        (".NET node.js C# AT&T", '"net" "node js" "c" "at t"', [".net", "node.js", "c#", "at&t"]),
        ("whale, (ahab). end.", '"whale" "ahab" "end"', []),
        ("whal* -moby", '"whal"* NOT "moby"', []),
        ('sea -"moby dick"', '"sea" NOT "moby dick"', []),
        ("a OR b NOT c", '"a" "or" "b" "not" "c"', []),  # plain words are words
        ("NEAR(a b)", '"near a" "b"', []),  # a word's tokens are a phrase
        ("*whale", '"whale"', []),
    ],
)
def test_plain_queries(typed: str, match: str, literals: list[str]) -> None:
    plain = parse(typed)
    assert plain.match() == match
    assert plain.literals() == literals


@pytest.mark.parametrize("typed", ["*", "**", "++", "\x01\x02", '"', "-whale", "- -"])
def test_queries_without_a_word_to_find(typed: str) -> None:
    assert parse(typed).terms == []


def test_near_needs_two_terms() -> None:
    assert parse("whale").near() is None
    assert parse("know that cats").near() == 'NEAR("know" "that" "cats", 10)'


def test_long_snippet_marks_the_words_around_the_first_match() -> None:
    from indexer.query import HL_END, HL_START, fts_words, long_snippet

    text = " ".join(f"w{i}" for i in range(1000)) + " the Whale rose, whales swam " + "tail " * 50
    snip = long_snippet(text, parse("whale").words())
    assert snip.startswith("…") and snip.endswith("…")
    assert f"{HL_START}Whale{HL_END}" in snip and "whales" in snip  # whole words only
    assert f"{HL_START}whales{HL_END}" in long_snippet(text, parse("whal*").words())
    assert len(snip.split()) <= 24
    assert long_snippet("no match here", [("kraken", False)]) == "no match here…"
    assert fts_words("whale NOT (ahab OR moby*)") == [
        ("whale", False),
        ("ahab", False),
        ("moby", True),
    ]


def test_stemmed_words_become_prefixes_of_their_stems() -> None:
    from indexer.query import fold, stemmed, stemmer

    russian = stemmed(parse("разорение"), stemmer("ru"))
    assert russian.match() == '"разорен"*'
    english = stemmed(parse('running "running" run* C++ e-mail is -runs'), stemmer("en"))
    # a phrase, a prefix, a word with symbols, one of several tokens, a stem
    # too short and an excluded word are searched as typed
    assert english.match() == '"run"* "running" "run"* "c" "e mail" "is" NOT "runs"'
    # accents fold like the index's: générale's stem général is searched as general*
    for word in ("générale", "généraux"):
        assert stemmed(parse(word), stemmer("french")).match() == '"general"*'
    assert fold("Ça crée") == "Ca cree"
    with pytest.raises(UsageError, match="no stemmer for that language"):
        stemmer("klingon")


def test_a_prefix_is_searched_as_the_words_it_covers() -> None:
    from indexer.query import expanded, vocabulary_range

    vocabulary = {"wha": ("whale", "what"), "sh": None, "zz": ()}
    asked: list[str] = []

    def words_of(prefix: str) -> tuple[str, ...] | None:
        asked.append(prefix)
        return vocabulary[prefix]

    plain = expanded(parse("wha* sh* zz* e-ma* café* whale -wha*"), words_of)
    # only one-word ASCII prefixes are looked up: the last of several tokens, a
    # word the index folds (é) stay FTS5 prefixes; too many words (None) or
    # none at all leave the prefix as it is
    assert asked == ["wha", "sh", "zz", "wha"]
    assert plain.match() == (
        '("whale" OR "what") AND "sh"* AND "zz"* AND "e ma"* AND "café"* AND "whale" '
        'NOT ("whale" OR "what")'
    )
    # the documents' own index and NEAR take each term as one phrase
    assert plain.match(phrases=True) == '"wha"* "sh"* "zz"* "e ma"* "café"* "whale" NOT "wha"*'
    assert plain.near() == 'NEAR("wha"* "sh"* "zz"* "e ma"* "café"* "whale", 10)'
    assert plain.words()[:2] == [("wha", True), ("sh", True)]  # highlighted as prefixes
    assert vocabulary_range("wha") == ("wha", "whb")
    assert vocabulary_range("z9") == ("z9", "z:")
