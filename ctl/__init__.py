"""octoctl: the operator's command line."""
