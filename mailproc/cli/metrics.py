"""`metrics`: the desk's figures in Prometheus' text format, for a textfile collector or cron.

The daemon serves the same on `daemon.metrics_listen`; see docs/admin/monitoring.md.
"""

from __future__ import annotations

import click

from mailproc.cli.app import App, pass_app


@click.command()
@pass_app
def metrics(app: App) -> None:
    """Print the Prometheus metrics (text exposition format) read from the database.

    For node_exporter's textfile collector: `mailproc metrics > DIR/mailproc.prom.$$ && mv
    DIR/mailproc.prom.$$ DIR/mailproc.prom` from cron or a timer.
    """
    from prometheus_client.exposition import generate_latest

    from mailproc.daemon.metrics import registry_for

    settings, engine = app.settings, app.ready_engine()
    registry = registry_for(lambda: (settings, engine))
    click.echo(generate_latest(registry).decode(), nl=False)


COMMANDS = [metrics]
