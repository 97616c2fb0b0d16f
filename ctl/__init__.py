"""octoctl: the operator's command line."""

import os

# gRPC's C core logs its own errors (a CA it cannot load, a header it refuses)
# to stderr before octoctl prints its one line; an operator wants only that line.
os.environ.setdefault("GRPC_VERBOSITY", "NONE")
