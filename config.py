"""pyinfra configuration (read from the working directory by the CLI)."""

REQUIRE_PYINFRA_VERSION = "~=3.10"
# A failed master must stop the run: standbys must not go on cloning from a broken upstream.
FAIL_PERCENT = 0
