"""flask CLI commands: accounts for staff, marketers, hosts and admins; demo data; the sweeper."""

from __future__ import annotations

import click
from flask import Flask, current_app

from core.errors import DomainError

from .auth import ROLES


def register(app: Flask) -> None:
    """Attach the commands to the app's CLI."""

    @app.cli.command("create-user")
    @click.argument("email")
    @click.option("--role", type=click.Choice([r for r in ROLES if r != "guest"]), required=True)
    @click.option("--store", "store_id", default=None, help="the store a staff account serves")
    @click.option("--name", "display_name", default=None)
    @click.password_option(envvar="FOOTFALL_NEW_PASSWORD")
    def create_user(email, role, store_id, display_name, password):
        """Create an account of any role (staff need --store)."""
        if store_id and not current_app.extensions["stores"].exists(store_id):
            raise click.ClickException(f"no store {store_id!r}")
        try:
            user = current_app.extensions["accounts"].create_user(
                email, password, role, display_name=display_name, store_id=store_id
            )
        except DomainError as exc:
            raise click.ClickException(f"{exc.code}: {exc.message}") from None
        click.echo(f"created {user['role']} {user['email']} id={user['id']}")

    @app.cli.command("seed-demo")
    @click.option("--stores", default=5000, show_default=True)
    def seed_demo_cmd(stores):
        """Load the demo stores and accounts (idempotent)."""
        from .demo import seed_demo

        click.echo(seed_demo(current_app, stores=stores))

    @app.cli.command("sweep")
    def sweep_cmd():
        """Confirm geofence exits whose confirmation time has passed."""
        events = current_app.extensions["geo"].sweep()
        click.echo(f"{len(events)} exits confirmed")
