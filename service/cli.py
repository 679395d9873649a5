"""`flask --app service subscribers|deliveries ...`: the admin API's operations for ops on the box.

No ADMIN_TOKEN is needed: whoever can run this can read the environment anyway.
Every command prints JSON, shaped like the admin API's answers.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import click
from flask import current_app
from flask.cli import AppGroup

from kyc import inspection, recovery, subscriptions
from kyc.db import Database
from kyc.errors import DomainError
from kyc.views import DEFAULT_LIMIT, cursor_from, limit_from
from service.admin.base import hand, now
from service.database import database

P = ParamSpec("P")
R = TypeVar("R")

subscribers_cli = AppGroup("subscribers", help="Manage subscribers: where events go.")
deliveries_cli = AppGroup("deliveries", help="Inspect failed deliveries and send them again.")


def refusals_as_errors(command: Callable[P, R]) -> Callable[P, R]:
    """A refused operation ends the command with its code and message, and exit status 1."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except DomainError as exc:
            raise click.ClickException(f"{exc.code}: {exc.message}") from None

    return run


def emit(value: Any) -> None:
    click.echo(json.dumps(value, indent=2))


def db() -> Database:
    return database(current_app)


@subscribers_cli.command("list")
def list_subscribers() -> None:
    emit({"items": subscriptions.list_all(db())})


@subscribers_cli.command("show")
@click.argument("subscriber_id", type=int)
@refusals_as_errors
def show_subscriber(subscriber_id: int) -> None:
    emit(subscriptions.show(db(), subscriber_id))


@subscribers_cli.command("create")
@click.option("--url", required=True, help="http(s) URL the events are posted to")
@click.option("--description")
@click.option(
    "--event-type", "event_types", multiple=True, help="candidate.<status>; repeat; none: every type"
)
@click.option(
    "--secret", help="whsec_...; generated when absent (a generated one stays off the process list)"
)
@click.option("--rate-limit", type=float, help="deliveries per second")
@click.option("--disabled", is_flag=True, help="create it disabled")
@refusals_as_errors
def create_subscriber(
    url: str,
    description: str | None,
    event_types: tuple[str, ...],
    secret: str | None,
    rate_limit: float | None,
    disabled: bool,
) -> None:
    """Create a subscriber and print it with its secret: the only time the secret is shown."""
    fields: dict[str, Any] = {"url": url, "eventTypes": list(event_types) or None, "enabled": not disabled}
    optional = {"description": description, "secret": secret, "rateLimit": rate_limit}
    fields.update({name: value for name, value in optional.items() if value is not None})
    emit(subscriptions.create(db(), fields, now()))


@subscribers_cli.command("update")
@click.argument("subscriber_id", type=int)
@click.option("--url")
@click.option("--description")
@click.option("--event-type", "event_types", multiple=True, help="candidate.<status>; repeat")
@click.option("--all-events", is_flag=True, help="send every event type")
@click.option("--enable/--disable", "enabled", default=None)
@click.option("--rate-limit", type=float, help="deliveries per second")
@click.option("--no-rate-limit", is_flag=True)
@refusals_as_errors
def update_subscriber(subscriber_id: int, **options: Any) -> None:
    """Change the fields given; re-enabling clears the reason it was disabled."""
    emit(subscriptions.update(db(), subscriber_id, _changes(**options), now()))


def _changes(
    url: str | None,
    description: str | None,
    event_types: tuple[str, ...],
    all_events: bool,
    enabled: bool | None,
    rate_limit: float | None,
    no_rate_limit: bool,
) -> dict[str, Any]:
    if event_types and all_events:
        raise click.UsageError("give --event-type or --all-events, not both")
    if rate_limit is not None and no_rate_limit:
        raise click.UsageError("give --rate-limit or --no-rate-limit, not both")
    given: dict[str, Any] = {"url": url, "description": description, "enabled": enabled}
    fields = {name: value for name, value in given.items() if value is not None}
    if event_types or all_events:
        fields["eventTypes"] = list(event_types) or None
    if rate_limit is not None or no_rate_limit:
        fields["rateLimit"] = rate_limit
    if not fields:
        raise click.UsageError("nothing to change; see --help")
    return fields


@subscribers_cli.command("delete")
@click.argument("subscriber_id", type=int)
@click.confirmation_option(prompt="Delete the subscriber with all its deliveries?")
@refusals_as_errors
def delete_subscriber(subscriber_id: int) -> None:
    subscriptions.delete(db(), subscriber_id)
    emit({"deleted": subscriber_id})


@subscribers_cli.command("rotate-secret")
@click.argument("subscriber_id", type=int)
@click.option("--secret", help="whsec_...; generated when absent")
@refusals_as_errors
def rotate_secret(subscriber_id: int, secret: str | None) -> None:
    """Put a new secret in force; the old one keeps signing beside it for 24 hours."""
    emit(subscriptions.rotate_secret(db(), subscriber_id, now(), secret))


@deliveries_cli.command("list")
@click.option("--status", type=click.Choice(inspection.DELIVERY_STATUSES))
@click.option("--subscriber", "subscriber_id", type=int)
@click.option("--limit", type=int, default=DEFAULT_LIMIT, show_default=True)
@click.option("--cursor", help="nextCursor of the previous page")
@refusals_as_errors
def list_deliveries(status: str | None, subscriber_id: int | None, limit: int, cursor: str | None) -> None:
    emit(inspection.delivery_page(db(), status, subscriber_id, limit_from(limit), cursor_from(cursor)))


@deliveries_cli.command("show")
@click.argument("delivery_id", type=int)
@refusals_as_errors
def show_delivery(delivery_id: int) -> None:
    emit(inspection.delivery_detail(db(), delivery_id))


@deliveries_cli.command("retry")
@click.argument("delivery_id", type=int)
@refusals_as_errors
def retry_delivery(delivery_id: int) -> None:
    """Send one failed delivery again, with a fresh retry schedule."""
    reopened = recovery.retry(db(), delivery_id, now())
    emit(inspection.delivery_detail(db(), reopened))
    hand([reopened])


@deliveries_cli.command("recover")
@click.argument("subscriber_id", type=int)
@click.option("--since", required=True, help="ISO 8601 time with its zone, e.g. 2026-11-27T10:00:00Z")
@refusals_as_errors
def recover(subscriber_id: int, since: str) -> None:
    """Send again every failed delivery of a subscriber whose event is from `since` on."""
    reopened = recovery.recover(db(), subscriber_id, recovery.parse_since(since), now())
    hand(reopened)
    emit({"recovered": len(reopened)})
