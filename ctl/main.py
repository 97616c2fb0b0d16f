"""octoctl: drive an Octobot cluster through the coordinator.

    octoctl queue add emails --backend redis --url redis://127.0.0.1:6379/0 --priority 8
    octoctl apply -f queues.yaml --dry-run
    octoctl enqueue emails emails.send --args '["a@example.com"]'
    octoctl stats
    octoctl top
    octoctl config set-context prod --coordinator coord.example:7400 --ca ca.pem --token-file prod.token
    octoctl --context prod token create ci --role operator --expires 30d

Exit codes: 0 success, 1 the coordinator refused the request (invalid,
not found, already exists, no valid token, role not allowed), 2 bad usage
(a bad config file or unknown context too), 3 coordinator unreachable.
"""

from __future__ import annotations

import sys

import click

import octobot
# One module per command group. Every command starts a Python process: what
# only some commands need (queue specs and files, which load every broker's
# library) is imported where used.
from octobot.ctl import brokers, config, messages, nodes, queues, reports, tokens
from octobot.ctl.cluster import Cluster


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(octobot.__version__, "--version", prog_name="octoctl", message="%(prog)s %(version)s")
@click.option("--context", "context_name", default=None,
              help="context of the config file to use (default: its current-context)")
@click.option("--coordinator", default=None,
              help="coordinator host:port, several comma-separated: the first that answers is used "
              f"(env OCTOBOT_COORDINATOR; default {config.DEFAULT_COORDINATOR})")
@click.option("--ca", default=None, help="CA certificate (PEM) of the coordinator's TLS (env OCTOBOT_CA; "
              "default: the system's roots)")
@click.option("--token", default=None, help="bearer token (env OCTOBOT_TOKEN)")
@click.option("--token-file", default=None, help="file holding the bearer token")
@click.option("--insecure", is_flag=True, help="plaintext to a coordinator off this machine")
@click.pass_context
def cli(ctx: click.Context, context_name: str | None, coordinator: str | None, ca: str | None, token: str | None,
        token_file: str | None, insecure: bool) -> None:
    """Operate an Octobot cluster."""
    if token is not None and token_file is not None:
        raise click.UsageError("give --token or --token-file, not both")
    flags = config.Settings(config.split_addresses([coordinator or ""]), ca, token, token_file, insecure or None)
    ctx.obj = Cluster(flags, context_name)


cli.add_command(config.group)
cli.add_command(tokens.group)
cli.add_command(brokers.group)
for command in (queues.queue, queues.apply, nodes.node, messages.enqueue, messages.dead, reports.stats, reports.top,
                reports.history):
    cli.add_command(command)


def main() -> None:
    """Entry point: every error is one line on stderr and a trustworthy exit code."""
    try:
        cli.main(standalone_mode=False)
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("error: aborted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    sys.exit(0)


if __name__ == "__main__":
    main()
