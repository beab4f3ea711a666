"""The `voltline` command: serve, migrate, and manage users, teams, tokens, chargers and prices."""

from voltline.cli import backup, chargers, prices, serve, teams, tokens, users
from voltline.cli.base import main
from voltline.simulator.cli import simulate

COMMANDS = [
    serve.serve,
    serve.migrate,
    serve.demo,
    backup.backup,
    users.users_group,
    teams.teams_group,
    tokens.tokens_group,
    chargers.chargers_group,
    prices.prices_group,
    simulate,
]
for command in COMMANDS:
    main.add_command(command)

__all__ = ["main"]
