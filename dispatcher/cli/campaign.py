"""``dispatcher campaign ...``: create, start, pause, watch and settle campaigns."""

from __future__ import annotations

import click


class _CampaignGroup(click.Group):
    """Loads its sub-commands on first use: they import the database layer and pandas, which
    ``dispatcher --help`` (and every other command) must not wait for."""

    _loaded = False

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        from dispatcher.cli.create import create
        from dispatcher.cli.ops import OPS_COMMANDS

        for command in (*OPS_COMMANDS, create):
            self.add_command(command)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        self._load()
        return super().get_command(ctx, cmd_name)


@click.group(cls=_CampaignGroup)
def campaign() -> None:
    """Create and operate campaigns."""
