"""Who to call: the config's [[contacts]] and [[escalation]], else the environment's profile's."""

from __future__ import annotations

from console.config.model import Config, Contact, EscalationLevel
from console.profile import ProfileError, profile_of


def people_of(config: Config, environment: str | None) -> tuple[tuple[Contact, ...], tuple[EscalationLevel, ...]]:
    """Contacts and escalation levels for ``environment`` (None: the first environment's)."""
    if config.contacts and config.escalation:
        return config.contacts, config.escalation
    name = environment if environment in config.environments else next(iter(config.environments), None)
    if name is None:
        return config.contacts, config.escalation
    try:
        profile = profile_of(config.environment(name))
    except ProfileError:
        return config.contacts, config.escalation
    return config.contacts or profile.contacts, config.escalation or profile.escalation
