"""``dispatcher campaign ...``: create, start, pause, watch and settle campaigns."""

from __future__ import annotations

import click


@click.group()
def campaign() -> None:
    """Create and operate campaigns."""


from dispatcher.cli.ops import OPS_COMMANDS  # noqa: E402  (commands register on the group)

for _command in OPS_COMMANDS:
    campaign.add_command(_command)


from dispatcher.cli.create import create  # noqa: E402  (registers on the group)

campaign.add_command(create)
