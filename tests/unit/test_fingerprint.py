"""Content fingerprints: near-duplicates stay within 3 bits, unrelated texts do not; links are counted."""

from __future__ import annotations

import itertools

import pytest

from streams.fingerprint import MASK64, count_links, hamming64, simhash64, tokens

TEXTS = [
    "Welcome to the community everyone, please introduce yourself in this thread and tell us what you are "
    "working on and what you hope to learn here this year",
    "I tried the new release on my laptop yesterday and the installer crashed twice before finishing, "
    "does anyone know whether the old configuration file has to be removed first",
    "Our meetup next Thursday moves to the library on Main Street because the usual cafe is closed for "
    "renovation, bring a friend and we will order pizza for the group",
    "Earn money fast from home with this amazing offer, thousands of people already joined and doubled "
    "their income in one week, click the link and register now before it is gone",
    "The garden club planted forty tulip bulbs along the fence this weekend and the children painted "
    "little signs so visitors can learn the names of every flower variety",
    "Could someone review my pull request when they have a moment, it fixes the date parsing bug in the "
    "export module and adds tests for leap years and time zones",
    "Thanks to all the volunteers who helped clean the beach on Saturday, we collected more than two "
    "hundred kilos of plastic and the local newspaper wrote a lovely article about it",
    "My sourdough starter smells like nail polish remover after a week in the fridge, should I throw it "
    "away or feed it a few times with fresh flour and warm water",
]
NEW_WORDS = ["banana", "quantum", "velvet", "orchestra", "glacier"]


def test_fingerprints_are_deterministic_64_bit_values() -> None:
    for text in TEXTS:
        value = simhash64(text)
        assert 0 <= value <= MASK64
        assert value == simhash64(text)
    assert len({simhash64(t) for t in TEXTS}) == len(TEXTS)


def test_a_text_without_words_fingerprints_to_zero() -> None:
    assert simhash64("") == 0
    assert simhash64("!!! ... 🎉🎉") == 0
    assert simhash64("hello") != 0 or simhash64("world") != 0


@pytest.mark.parametrize("text", TEXTS, ids=range(len(TEXTS)))
def test_replacing_any_one_word_stays_within_3_bits(text: str) -> None:
    words = text.split()
    assert len(words) >= 20
    for i, new in itertools.product(range(len(words)), NEW_WORDS):
        edited = " ".join([*words[:i], new, *words[i + 1 :]])
        assert hamming64(simhash64(text), simhash64(edited)) <= 2, (i, new)


@pytest.mark.parametrize("text", TEXTS, ids=range(len(TEXTS)))
def test_inserting_or_deleting_one_word_moves_at_most_one_bit(text: str) -> None:
    words = text.split()
    base = simhash64(text)
    for i in range(len(words)):
        deleted = " ".join(words[:i] + words[i + 1 :])
        inserted = " ".join([*words[:i], "meanwhile", *words[i:]])
        assert hamming64(base, simhash64(deleted)) <= 1
        assert hamming64(base, simhash64(inserted)) <= 1


@pytest.mark.parametrize("text", TEXTS, ids=range(len(TEXTS)))
def test_small_edits_stay_within_3_bits(text: str) -> None:
    words = text.split()
    base = simhash64(text)
    typo = " ".join([*words[:5], words[5][:-1] + "x", *words[6:]])
    two_words_swapped = " ".join([words[1], words[0], *words[2:]])
    appended = text + " cheers"
    for edited in (typo, two_words_swapped, appended):
        assert hamming64(base, simhash64(edited)) <= 3


def test_spam_template_variations_are_identical() -> None:
    # Case, punctuation, spacing, the link, the mentioned member and the numbers are what
    # spam templates vary; none of them changes the fingerprint.
    template = "Hey {who}! Earn {n} dollars a day from home, join {n2} people at {url} today!!"
    variants = [
        template.format(who="@alice", n="500", n2="3000", url="https://spam.example/a?ref=1"),
        template.format(who="@bob", n="900", n2="12000", url="<https://other.example/b|other.example/b>"),
        template.format(
            who="<@U024BE7LH>", n="250", n2="7", url="[x.example/c](https://x.example/c)"
        ).upper(),
        "hey   @carol  earn 1 dollars a day from home; join 2 people at https://y.example today",
    ]
    assert len({simhash64(v) for v in variants}) == 1


def test_unrelated_texts_are_not_near_duplicates() -> None:
    distances = [hamming64(simhash64(a), simhash64(b)) for a, b in itertools.combinations(TEXTS, 2)]
    assert min(distances) > 3
    assert sum(distances) / len(distances) >= 10


def test_link_display_text_counts_as_words_unless_it_is_an_address() -> None:
    plain = "read the guide before posting"
    assert tokens("<https://a.example/g|the guide>") == tokens("[the guide](https://b.example)")
    assert tokens("<https://a.example/g|the guide>") == {"\x00url", "the", "guide"}
    assert tokens("<https://a.example/g|a.example/g>") == tokens("https://a.example/g")
    assert simhash64(plain + " <https://a.example|here and there>") != simhash64(plain + " https://a.example")


def test_word_order_is_ignored_on_purpose() -> None:
    assert simhash64("dog bites man") == simhash64("man bites dog")
    assert simhash64("dog bites man") != simhash64("dog bites postman")


def test_tokens_normalise_links_mentions_and_numbers() -> None:
    assert tokens("Visit https://a.example/x NOW, @sam! Call 555-1234") == tokens(
        "visit <https://b.example|b.example> now <@U123> call 0-0"
    )
    assert "now" in tokens("NOW")
    assert "sam" not in tokens("@sam")


def test_hamming_counts_differing_bits_of_64() -> None:
    assert hamming64(0, 0) == 0
    assert hamming64(0, MASK64) == 64
    assert hamming64(0b1011, 0b0001) == 2
    assert hamming64(5, 9) == hamming64(9, 5)
    assert hamming64(1 << 64, 0) == 0  # only 64 bits count


@pytest.mark.parametrize(
    ("text", "links"),
    [
        ("no links here, just www.example.com without a scheme", 0),
        ("see https://example.com/a and http://example.org/b?x=1", 2),
        ("Slack form <https://example.com/guide|the guide> and bare <https://example.com>", 2),
        ("Slack label with spaces <https://example.com/a|read the whole guide here> counts once", 1),
        ('markdown [docs](https://docs.example.com/start) and [x](https://x.example "title")', 2),
        ("a markdown link whose label is its URL [https://a.example](https://a.example) counts once", 1),
        ("(https://example.com/in-parens) and https://example.com/end.", 2),
        ("mailto is not http: <mailto:someone@example.com|mail me>", 0),
        ("ftp://files.example.com is not counted", 0),
        ("", 0),
    ],
)
def test_count_links(text: str, links: int) -> None:
    assert count_links(text) == links
