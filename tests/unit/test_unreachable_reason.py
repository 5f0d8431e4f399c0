"""How tasks.status names a host it could not read (planner.status_report.unreachable_reason)."""

from planner.status_report import unreachable_reason


def test_a_host_that_opens_the_connection_but_never_answers_ssh_is_named_as_possibly_frozen():
    frozen = unreachable_reason("SSH error (No existing session)")
    assert frozen.startswith("down or unreachable (ssh: SSH error (No existing session)")
    assert "frozen or overloaded host?" in frozen
    assert unreachable_reason("Could not connect (timed out)") == "down or unreachable (ssh: Could not connect (timed out))"
