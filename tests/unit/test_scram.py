"""planner.scram against verifiers recorded from a real PostgreSQL 15.

Recorded on Debian 12 with postgresql-15 (15.x), a throw-away initdb (UTF8), then
`SET password_encryption = 'scram-sha-256'; CREATE ROLE ... PASSWORD '...';
SELECT rolpassword FROM pg_authid WHERE rolname = ...;`
"""
from __future__ import annotations

import base64

import pytest

from planner.scram import saslprep, scram_matches, scram_verifier

# password -> pg_authid.rolpassword, as PostgreSQL 15 stored it.
RECORDED = {
    "correct horse battery staple":
        "SCRAM-SHA-256$4096:BY7PedRytrIKIMxZ+TTHBQ==$dmEutjWXc7Zy6Z2A7LVgGQtilgrcdHpmkHyPH/svAzQ="
        ":UmByYrrzH/VfJpo1fs0WbxjOrLPlcd/72jTE207+Wl8=",
    "secret":
        "SCRAM-SHA-256$4096:tXxvyepvVXS55eMylWnM7g==$H72xig4mDyzAQTeQn1/Uozz+3i1TrkpA68rS1CzqjU8="
        ":pQ5I6mKQDi0y781mYB4yaReWXFubbJIOVYvuTr3vsHQ=",
    # .pgpass's special characters: the verifier is of the raw password.
    "p:a\\ss":
        "SCRAM-SHA-256$4096:AH8aX6mEvTUrdkPxwOAYwg==$mZdNbSriWUHlOAnP6Pza5/36IGplMNDt+NLwtztVgOE="
        ":Ao6awjI56mXwY++kbVrS+6njvK05ji8dQxYTB95WBU0=",
    # SASLprep: no-break space -> space, soft hyphen removed, ö kept.
    "pass\u00a0w\u00f6rd\u00ad":
        "SCRAM-SHA-256$4096:1qUDM/+Q3c93NgaFVxQ6+g==$snCykRr9coITr4JTVYgbgQrrz1GuXE9Q63ZOzqrOZ4Y="
        ":7lbMdNTNwznKVD9LhU0CY5Paw1jGOJ6BhQtSeJ6DmOk=",
    # SASLprep: NFKC turns the ligature into "fi".
    "\ufb01sh":
        "SCRAM-SHA-256$4096:p+kwJw7DjV9+hMWSSB29KA==$x08phJwBp71iU0xc+RPXPklugkduozd/zELZbpQADFQ="
        ":0snW2s8IM9ahgCbHGaFG50Sj6Kd6Ctjes2WHdY8XmPg=",
    # A prohibited character (left-to-right mark) after mappable ones: PostgreSQL falls back to
    # the raw bytes, so the no-break space and the ligature stay as they are.
    "caf\u00e9\u00a0\ufb01\u200e":
        "SCRAM-SHA-256$4096:gXCMEXPT4kSv7nl4kbRfOQ==$FESe9KFIqo16czcxKDuamk9LcSOtYNHE5WvEtR1e9RI="
        ":f3yMa13JPiYzY91iENsYeVZowZK7CqHJ00aeYo4kkOw=",
    # Right-to-left mixed with left-to-right breaks the bidi rule: the raw bytes again.
    "\u0627\u00a0a\u0628":
        "SCRAM-SHA-256$4096:z/gSu2UNbOIMHsIpHHMtmg==$LL69N5zO8kI0w1DZOf+kLEuoqQwxDdgsoROcWQ+fz8k="
        ":6pyFrGfdWX8E74OzJe8w3w8/QboR9aW+0554PyT5VcQ=",
    # A prohibited character (left-to-right mark): PostgreSQL falls back to the raw bytes.
    "x\u200ey":
        "SCRAM-SHA-256$4096:sxFyo0m+GOJORNGLgsgbhQ==$g4UUy4Wej1sePVOg34bq2t5R0+HWmU1uvIO6bBw8n6s="
        ":heZwl51qNHFspM7n0K+PddyUuLjHccXNnYrV15omdoU=",
}
REPLICATOR_PASSWORD = "correct horse battery staple"


def _salt(verifier: str) -> bytes:
    return base64.b64decode(verifier.split("$")[1].split(":")[1])


@pytest.mark.parametrize("password", sorted(RECORDED), ids=repr)
def test_recorded_postgresql_verifiers_match_their_password(password):
    assert scram_matches(password, RECORDED[password]) is True


@pytest.mark.parametrize("password", sorted(RECORDED), ids=repr)
def test_verifier_is_byte_identical_to_postgresql_for_the_same_salt(password):
    verifier = RECORDED[password]
    assert scram_verifier(password, _salt(verifier)) == verifier


@pytest.mark.parametrize(
    "password, verifier",
    [
        ("correct horse battery stapl", RECORDED[REPLICATOR_PASSWORD]),
        ("Correct horse battery staple", RECORDED[REPLICATOR_PASSWORD]),
        ("correct horse battery staple ", RECORDED[REPLICATOR_PASSWORD]),
        ("secret", RECORDED[REPLICATOR_PASSWORD]),
        ("xy", RECORDED["x\u200ey"]),  # a prohibited character is not dropped
        ("caf\u00e9 fi\u200e", RECORDED["caf\u00e9\u00a0\ufb01\u200e"]),  # nor the rest prepared
        ("\u0627 a\u0628", RECORDED["\u0627\u00a0a\u0628"]),
        ("p:a\\\\ss", RECORDED["p:a\\ss"]),  # the .pgpass-escaped form is not the password
    ],
    ids=["truncated", "case", "trailing-space", "other-password", "prohibited-kept", "prohibited-means-raw",
         "bidi-means-raw", "escaped-form"],
)
def test_other_passwords_do_not_match(password, verifier):
    assert scram_matches(password, verifier) is False


@pytest.mark.parametrize(
    "password, recorded_for",
    [("fish", "\ufb01sh"), ("pass w\u00f6rd", "pass\u00a0w\u00f6rd\u00ad"), ("pass wo\u0308rd", "pass\u00a0w\u00f6rd\u00ad")],
    ids=["ligature", "mapped-spaces-and-nothing", "decomposed-umlaut"],
)
def test_saslprep_equivalent_passwords_match_like_postgresql(password, recorded_for):
    assert scram_matches(password, RECORDED[recorded_for]) is True


@pytest.mark.parametrize(
    "verifier",
    [
        None,
        "",
        "md580749720416a10e6ee63eb6ae1b04683",  # PostgreSQL's md5 of 'secret' for role r4
        "secret",
        "SCRAM-SHA-256$4096:tXxvyepvVXS55eMylWnM7g==$H72xig4mDyzAQTeQn1/Uozz+3i1TrkpA68rS1CzqjU8=",
        "SCRAM-SHA-256$0:tXxvyepvVXS55eMylWnM7g==$H72xig4mDyzAQTeQn1/Uozz+3i1TrkpA68rS1CzqjU8=:pQ5I6mKQDi0y781mYB4yaReWXFubbJIOVYvuTr3vsHQ=",
        "SCRAM-SHA-256$4096:!!!$H72xig4mDyzAQTeQn1/Uozz+3i1TrkpA68rS1CzqjU8=:pQ5I6mKQDi0y781mYB4yaReWXFubbJIOVYvuTr3vsHQ=",
        "SCRAM-SHA-256$4096:tXxvyepvVXS55eMylWnM7g=$H72xig4mDyzAQTeQn1/Uozz+3i1TrkpA68rS1CzqjU8=:pQ5I6mKQDi0y781mYB4yaReWXFubbJIOVYvuTr3vsHQ=",
        "SCRAM-SHA-256$4096:tXxvyepvVXS55eMylWnM7g==$H72x:pQ5I",
        "SCRAM-SHA-1$4096:tXxvyepvVXS55eMylWnM7g==$H72xig4mDyzAQTeQn1/Uozz+3i1TrkpA68rS1CzqjU8=:pQ5I6mKQDi0y781mYB4yaReWXFubbJIOVYvuTr3vsHQ=",
    ],
    ids=["none", "empty", "md5", "plain-text", "no-server-key", "zero-iterations", "bad-base64",
         "bad-padding", "short-keys", "other-mechanism"],
)
def test_no_password_md5_and_malformed_verifiers_never_match(verifier):
    assert scram_matches("secret", verifier) is False


@pytest.mark.parametrize("iterations", [1, 4096, 10000])
def test_iterations_round_trip(iterations):
    verifier = scram_verifier("secret", b"0123456789abcdef", iterations)
    assert verifier.startswith(f"SCRAM-SHA-256${iterations}:MDEyMzQ1Njc4OWFiY2RlZg==$")
    assert scram_matches("secret", verifier) is True
    assert scram_matches("secret!", verifier) is False


@pytest.mark.parametrize(
    "password, prepared",
    [
        ("plain ASCII\t", "plain ASCII\t"),  # ASCII is never changed, controls included
        ("a\u00a0b", "a b"),
        ("a\u00adb", "ab"),
        ("\u2168", "IX"),
        ("\u00ad", "\u00ad"),  # nothing left after mapping: the raw password
        ("\u0627a\u0628", "\u0627a\u0628"),  # right-to-left mixed with left-to-right: raw
        ("\u0627\u0628", "\u0627\u0628"),  # right-to-left only: fine
        ("\u0627\u00a0\u0628", "\u0627 \u0628"),  # mapped, and still right-to-left at both ends
        ("\u0627\u00a01", "\u0627\u00a01"),  # right-to-left must also end the string: raw
    ],
    ids=["ascii", "nbsp", "soft-hyphen", "roman-numeral", "empty-after-mapping", "bidi-mixed", "bidi-ok",
         "bidi-mapped", "bidi-must-end-right-to-left"],
)
def test_saslprep(password, prepared):
    assert saslprep(password) == prepared


@pytest.mark.parametrize("salt, iterations", [(b"", 4096), (b"salt", 0)])
def test_scram_verifier_rejects_a_useless_salt_or_iteration_count(salt, iterations):
    with pytest.raises(ValueError):
        scram_verifier("secret", salt, iterations)
