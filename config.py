"""pyinfra configuration (the CLI runs this file from the working directory)."""
from pyinfra import config

config.REQUIRE_PYINFRA_VERSION = "~=3.10"
# A failed master must stop the run: standbys must not go on cloning from a broken upstream.
config.FAIL_PERCENT = 0
