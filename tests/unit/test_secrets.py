"""planner.secrets: environment first, then the secrets file; never an empty or unusable value."""
from __future__ import annotations

import pytest

from planner.quoting import pgpass_escape
from planner.secrets import (
    ALL_SECRETS,
    HEARTBEAT_KEY,
    REPLICATION_PASSWORD,
    SecretsError,
    parse_secrets_file,
    resolve_secrets,
)


def test_secret_names():
    assert REPLICATION_PASSWORD == "PGCASCADE_REPLICATION_PASSWORD"
    assert HEARTBEAT_KEY == "PGCASCADE_HEARTBEAT_KEY"
    assert ALL_SECRETS == (REPLICATION_PASSWORD, HEARTBEAT_KEY)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("A=1\nB=two\n", {"A": "1", "B": "two"}),
        ("# comment\n\n   # indented comment\nA=1\n", {"A": "1"}),
        ("A = spaced out  \n", {"A": "spaced out"}),
        ("A='single # not a comment'\n", {"A": "single # not a comment"}),
        ('A="double"\n', {"A": "double"}),
        ('A="say \\"hi\\" \\\\ \\n"\n', {"A": 'say "hi" \\ \\n'}),
        ("A='back\\slash'\n", {"A": "back\\slash"}),
        ("A=p#ss:word=x\n", {"A": "p#ss:word=x"}),
        ("export A=1\n", {"A": "1"}),
        ("A='quoted' # trailing comment\n", {"A": "quoted"}),
        ("A=\n", {"A": ""}),
        ("A=1\r\nB=2\r\n", {"A": "1", "B": "2"}),
        ("", {}),
    ],
    ids=[
        "plain", "comments", "trimmed", "single-quotes", "double-quotes", "double-quote-escapes",
        "single-quotes-literal", "bare-hash-and-equals", "export", "comment-after-quote",
        "empty-value", "crlf", "empty-file",
    ],
)
def test_parse_secrets_file(text, expected):
    assert parse_secrets_file(text) == expected


@pytest.mark.parametrize(
    "text, expected_problems",
    [
        ("just a line\n", ["/etc/s line 1: expected KEY=VALUE (e.g. PGCASCADE_REPLICATION_PASSWORD=...)"]),
        ("1A=x\n", ["/etc/s line 1: expected KEY=VALUE (e.g. PGCASCADE_REPLICATION_PASSWORD=...)"]),
        ("A=1\n# x\nA=2\n", ["/etc/s line 3: A is set a second time (keep one line)"]),
        ("A='open\n", ["/etc/s line 1: unterminated ' quote (close it on the same line)"]),
        ("A='x' y\n", ["/etc/s line 1: text after the closing quote (remove it)"]),
        (
            "bad\nA=1\nB=\"x\n",
            [
                "/etc/s line 1: expected KEY=VALUE (e.g. PGCASCADE_REPLICATION_PASSWORD=...)",
                '/etc/s line 3: unterminated " quote (close it on the same line)',
            ],
        ),
    ],
    ids=["no-equals", "bad-key", "duplicate", "unterminated", "trailing-text", "all-collected"],
)
def test_parse_errors_name_the_line_not_the_value(text, expected_problems):
    with pytest.raises(SecretsError) as caught:
        parse_secrets_file(text, source="/etc/s")
    assert caught.value.problems == expected_problems
    assert str(caught.value).splitlines() == expected_problems


def test_parse_error_never_shows_the_value():
    with pytest.raises(SecretsError) as caught:
        parse_secrets_file("PGCASCADE_REPLICATION_PASSWORD='hunter2 oops\n")
    assert "hunter2" not in str(caught.value)


BOTH = [REPLICATION_PASSWORD, HEARTBEAT_KEY]


@pytest.mark.parametrize(
    "environ, file_values, expected",
    [
        ({REPLICATION_PASSWORD: "env-pw", HEARTBEAT_KEY: "env-key"}, None,
         {REPLICATION_PASSWORD: "env-pw", HEARTBEAT_KEY: "env-key"}),
        ({}, {REPLICATION_PASSWORD: "file-pw", HEARTBEAT_KEY: "file-key"},
         {REPLICATION_PASSWORD: "file-pw", HEARTBEAT_KEY: "file-key"}),
        ({REPLICATION_PASSWORD: "env-pw"}, {REPLICATION_PASSWORD: "file-pw", HEARTBEAT_KEY: "file-key"},
         {REPLICATION_PASSWORD: "env-pw", HEARTBEAT_KEY: "file-key"}),
        ({REPLICATION_PASSWORD: "p:a\\ss word'\"$"}, {HEARTBEAT_KEY: "k"},
         {REPLICATION_PASSWORD: "p:a\\ss word'\"$", HEARTBEAT_KEY: "k"}),
    ],
    ids=["environment", "file", "environment-wins", "odd-characters-kept"],
)
def test_resolve_secrets(environ, file_values, expected):
    assert resolve_secrets(BOTH, environ, file_values, "/etc/pgcascade/secrets") == expected


def test_only_required_secrets_are_returned():
    environ = {REPLICATION_PASSWORD: "pw", HEARTBEAT_KEY: "key", "HOME": "/root"}
    assert resolve_secrets([REPLICATION_PASSWORD], environ, None, None) == {REPLICATION_PASSWORD: "pw"}


@pytest.mark.parametrize(
    "environ, file_values, file_path, expected_problems",
    [
        ({}, None, None, [
            "PGCASCADE_REPLICATION_PASSWORD is not set (export PGCASCADE_REPLICATION_PASSWORD=..., or set "
            "secrets_file in the inventory to a 0600 file with a line PGCASCADE_REPLICATION_PASSWORD=...)",
            "PGCASCADE_HEARTBEAT_KEY is not set (export PGCASCADE_HEARTBEAT_KEY=..., or set secrets_file in "
            "the inventory to a 0600 file with a line PGCASCADE_HEARTBEAT_KEY=...)",
        ]),
        ({HEARTBEAT_KEY: "k"}, None, "/etc/s", [
            "PGCASCADE_REPLICATION_PASSWORD is not set (export PGCASCADE_REPLICATION_PASSWORD=..., or "
            "create /etc/s (mode 0600) with a line PGCASCADE_REPLICATION_PASSWORD=...)",
        ]),
        ({}, {REPLICATION_PASSWORD: "pw"}, "/etc/s", [
            "PGCASCADE_HEARTBEAT_KEY is not set (export PGCASCADE_HEARTBEAT_KEY=..., or add a line "
            "PGCASCADE_HEARTBEAT_KEY=... to /etc/s)",
        ]),
        ({REPLICATION_PASSWORD: ""}, {REPLICATION_PASSWORD: "pw", HEARTBEAT_KEY: ""}, "/etc/s", [
            "PGCASCADE_REPLICATION_PASSWORD is empty in the environment (give it a value)",
            "PGCASCADE_HEARTBEAT_KEY is empty in /etc/s (give it a value)",
        ]),
        ({REPLICATION_PASSWORD: "two\nlines", HEARTBEAT_KEY: "k"}, None, None, [
            "PGCASCADE_REPLICATION_PASSWORD contains a newline or NUL character (choose a single-line "
            "value); it came from the environment",
        ]),
        ({REPLICATION_PASSWORD: "pw", HEARTBEAT_KEY: "two words"}, None, None, [
            "PGCASCADE_HEARTBEAT_KEY contains whitespace (heartbeat's authkeys takes a single word); "
            "it came from the environment",
        ]),
    ],
    ids=["nothing-anywhere", "file-missing", "not-in-file", "empty", "newline", "heartbeat-key-space"],
)
def test_resolve_secrets_names_every_problem_and_the_fix(environ, file_values, file_path, expected_problems):
    with pytest.raises(SecretsError) as caught:
        resolve_secrets(BOTH, environ, file_values, file_path)
    assert caught.value.problems == expected_problems


def test_resolve_errors_never_show_the_value():
    with pytest.raises(SecretsError) as caught:
        resolve_secrets(BOTH, {REPLICATION_PASSWORD: "s3cr3t\nx", HEARTBEAT_KEY: "hb key"}, None, None)
    assert "s3cr3t" not in str(caught.value) and "hb key" not in str(caught.value)


@pytest.mark.parametrize(
    "value, expected",
    [
        ("plain", "plain"),
        ("a:b", "a\\:b"),
        ("a\\b", "a\\\\b"),
        ("\\:", "\\\\\\:"),
        ("*", "*"),
    ],
    ids=["plain", "colon", "backslash", "backslash-then-colon", "star-is-literal-in-password"],
)
def test_pgpass_escape(value, expected):
    assert pgpass_escape(value) == expected


def test_pgpass_escape_rejects_newlines():
    with pytest.raises(ValueError):
        pgpass_escape("a\nb")
