"""Endpoints in the database: registering one (its secret shown once), switching it off and on, rolling its
secret, removing it; its delivery log, and a redelivery."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlmodel import Session, select

from service import events
from service.models import WEBHOOK_EVENTS, WebhookDelivery, WebhookEndpoint
from service.settings import Settings
from service.webhooks.addresses import resolve
from service.webhooks.signing import endpoint_secret, fingerprint, new_salt

logger = logging.getLogger(__name__)

LOG_LIMIT = 100  # deliveries shown on an endpoint's page


def create_endpoint(session: Session, settings: Settings, url: str, chosen: list[str], *, description: str = "",
                    actor: str = "") -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its secret (to show once). RefusedAddress for a URL that may not be posted to, and
    ValueError for an unknown event."""
    url = url.strip()
    resolve(url, allow_private=settings.webhook_allow_private)  # refused now rather than at the first event
    unknown = set(chosen) - set(WEBHOOK_EVENTS)
    if unknown or not chosen:
        raise ValueError(f"unknown events: {', '.join(sorted(unknown))}" if unknown else "choose at least one event")
    salt = new_salt()
    secret = endpoint_secret(settings, salt)
    endpoint = WebhookEndpoint(url=url, description=description.strip()[:200], salt=salt,
                               fingerprint=fingerprint(secret), created_by=actor,
                               events=[e for e in WEBHOOK_EVENTS if e in chosen])
    session.add(endpoint)
    session.flush()
    logger.info("webhook endpoint %s registered for %s", endpoint.id, ", ".join(endpoint.events))
    return endpoint, secret


def roll_secret(session: Session, settings: Settings, endpoint: WebhookEndpoint) -> str:
    """A new secret for the endpoint (to show once); the old one stops signing at once."""
    endpoint.salt = new_salt()
    secret = endpoint_secret(settings, endpoint.salt)
    endpoint.fingerprint, endpoint.updated_at = fingerprint(secret), datetime.now(UTC)
    session.flush()
    return secret


def set_active(session: Session, endpoint: WebhookEndpoint, active: bool) -> None:
    """Switch an endpoint off (its deliveries wait, and new events skip it) or on (what waited is queued)."""
    endpoint.active, endpoint.updated_at = active, datetime.now(UTC)
    session.flush()
    if active:
        waiting = session.execute(sa.select(WebhookDelivery.id, WebhookDelivery.due_at, WebhookDelivery.attempts)
                                  .where(WebhookDelivery.endpoint_id == endpoint.id,
                                         WebhookDelivery.status == "pending")).all()
        events.queue_after_commit(session, [(r[0], r[1], r[2]) for r in waiting])


def delete_endpoint(session: Session, endpoint: WebhookEndpoint) -> int:
    """Remove an endpoint and its delivery log; how many deliveries went with it."""
    gone = session.execute(sa.delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id)).rowcount
    session.delete(endpoint)
    session.flush()
    return gone or 0


def every_endpoint(session: Session) -> list[tuple[WebhookEndpoint, dict[str, int]]]:
    """Each endpoint with its deliveries counted by status."""
    counts: dict[int, dict[str, int]] = {}
    for endpoint_id, status, count in session.execute(
            sa.select(WebhookDelivery.endpoint_id, WebhookDelivery.status, sa.func.count())
            .group_by(WebhookDelivery.endpoint_id, WebhookDelivery.status)):
        counts.setdefault(endpoint_id, {})[status] = count
    return [(e, counts.get(e.id, {})) for e in session.exec(select(WebhookEndpoint).order_by(WebhookEndpoint.id))]


def delivery_log(session: Session, endpoint_id: int, *, status: str | None = None) -> list[WebhookDelivery]:
    """The endpoint's latest deliveries, newest first."""
    query = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
    if status:
        query = query.where(WebhookDelivery.status == status)
    return list(session.exec(query.order_by(WebhookDelivery.id.desc()).limit(LOG_LIMIT)))


def redeliver(session: Session, delivery: WebhookDelivery) -> WebhookDelivery | None:
    """A new try of a finished delivery (delivered or failed): a new row, same event id and body, queued once
    committed. None while the delivery is still pending or being sent (it is on its way already)."""
    if delivery.status not in ("delivered", "failed"):
        return None
    latest = session.execute(sa.select(sa.func.max(WebhookDelivery.redelivery)).where(
        WebhookDelivery.endpoint_id == delivery.endpoint_id, WebhookDelivery.event_id == delivery.event_id)).scalar()
    now = datetime.now(UTC)
    copy = WebhookDelivery(endpoint_id=delivery.endpoint_id, event=delivery.event, event_id=delivery.event_id,
                           redelivery=(latest or 0) + 1, body=delivery.body, due_at=now, created_at=now,
                           updated_at=now)
    session.add(copy)
    session.flush()
    events.queue_after_commit(session, [(copy.id, copy.due_at, 0)])
    logger.info("webhook delivery %s redelivered as %s (%s)", delivery.id, copy.id, delivery.event_id)
    return copy
