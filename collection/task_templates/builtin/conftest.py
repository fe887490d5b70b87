# Template workspaces hold deliberately failing tests: pytest must never collect them.
collect_ignore_glob = ["*"]
