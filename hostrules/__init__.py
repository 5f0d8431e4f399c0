"""Decision rules the hosts apply on their own, shared with the planner: pure functions of
observed state, returning a verdict and a stable reason code. Standard library only: the deploy
ships this package to the hosts (/usr/local/lib/pgcascade/hostrules), where thin entry points
(the bash scripts systemd and heartbeat call) run `python3 -m hostrules.<module>`."""
