"""Who may roll back what: the runbook's "Rollback Authorization" table.

| Environment | Authorization Required | Approver            |
| Staging     | None (self-service)    | Any developer       |
| Production  | Approval required      | Team lead or on-call|

"In emergency situations (P0/P1), on-call engineer can execute production rollback
immediately and notify afterward." Here that takes a typed reason, notifies at once and
leaves a post-hoc review item on the checklist.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from console.config.model import KINDS, ChecklistItem, Environment
from console.profile import ProfileError, profile_of

Mode = Literal["self-service", "approved", "emergency", "pending"]
EMERGENCY_LEVELS = ("P0", "P1")
MIN_REASON_WORDS = 3
POST_HOC_REVIEW_ID = "post_hoc_review"


class AuthorizationError(ValueError):
    """The rollback may not go ahead as asked; the message says what to do instead."""


def same_person(a: str, b: str) -> bool:
    """Names compare case-insensitively, ignoring surrounding spaces."""
    return a.strip().casefold() == b.strip().casefold()


@dataclass(frozen=True)
class Authorization:
    mode: Mode
    operator: str
    approver: str | None = None
    emergency_level: str | None = None
    reason: str | None = None
    post_hoc_review: bool = False

    @property
    def allowed(self) -> bool:
        """May the run start now? A pending one waits for ``approve RUN_ID``."""
        return self.mode != "pending"

    @property
    def notify_now(self) -> bool:
        """An emergency override is announced the moment it is used."""
        return self.mode == "emergency"

    def describe(self, run_id: str | None = None) -> str:
        """One line for the screen and the journal; for "pending", what to do next."""
        if self.mode == "self-service":
            extra = f", approver {self.approver} recorded" if self.approver else ""
            return f"staging: self-service by {self.operator}{extra}"
        if self.mode == "approved":
            return f"production: run by {self.operator}, approved by {self.approver}"
        if self.mode == "emergency":
            return (
                f"production: {self.emergency_level} emergency override by {self.operator} "
                f"(reason: {self.reason}); notified at once, post-hoc review required"
            )
        return pending_message(self.operator, run_id)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def pending_message(operator: str, run_id: str | None = None) -> str:
    run = run_id or "RUN_ID"
    return (
        f"production needs an approver other than you ({operator}): pass --approved-by NAME, "
        f"have a team lead or on-call run `rollback-console approve {run}`, "
        "or in a P0/P1 emergency pass --emergency P0 --reason TEXT"
    )


def post_hoc_review_item(auth: Authorization) -> ChecklistItem | None:
    """The checklist item an emergency override leaves behind (ticked by hand)."""
    if not auth.post_hoc_review:
        return None
    return ChecklistItem(
        POST_HOC_REVIEW_ID,
        f"Post-hoc review of the {auth.emergency_level} emergency override by {auth.operator} (reason: {auth.reason})",
    )


def _emergency_level(emergency: str, levels: tuple[str, ...] = EMERGENCY_LEVELS) -> str:
    level = emergency.strip().upper()
    if level not in {x.upper() for x in levels}:
        raise AuthorizationError(
            f"--emergency must be {' or '.join(levels)} (got {emergency!r}); anything less urgent needs an approver: "
            "pass --approved-by NAME or have a team lead run `rollback-console approve RUN_ID`"
        )
    return level


def _check_reason(reason: str | None, level: str) -> str:
    text = " ".join((reason or "").split())
    if len(text.split()) < MIN_REASON_WORDS:
        got = f" (got {text!r})" if text else ""
        raise AuthorizationError(
            f"a {level} emergency override needs a typed reason of at least {MIN_REASON_WORDS} words saying "
            f'what is broken{got}, e.g. --reason "p95 over 5 s since 14:02, users see timeouts"'
        )
    return text


def authorize(
    env_kind: str,
    operator: str,
    approved_by: str | None = None,
    emergency: str | None = None,
    reason: str | None = None,
    *,
    approval_required: bool | None = None,
    emergency_levels: tuple[str, ...] = EMERGENCY_LEVELS,
) -> Authorization:
    """Decide how a rollback of an environment of ``env_kind`` by ``operator`` is authorized.
    ``approval_required`` and ``emergency_levels`` are the profile's [authorization] (None:
    the runbook's table — production needs an approver, staging does not).

    Raises AuthorizationError when the request itself is wrong (self-approval, a bad
    emergency level, an emergency without a reason). A production run with neither an
    approver nor an emergency comes back "pending".
    """
    operator = operator.strip()
    if not operator:
        raise AuthorizationError("who is rolling back? the operator name is empty")
    if env_kind not in KINDS:
        raise AuthorizationError(f"unknown environment kind {env_kind!r} (expected one of: {', '.join(KINDS)})")
    approver = approved_by.strip() if approved_by is not None else None
    if approved_by is not None and not approver:
        raise AuthorizationError("--approved-by is empty: give the name of the person who approved this rollback")
    level = _emergency_level(emergency, emergency_levels) if emergency is not None else None
    reason_text = " ".join(reason.split()) if reason and reason.strip() else None

    if not (env_kind == "production" if approval_required is None else approval_required):
        if level is not None:  # --emergency asks for a reason wherever it is used (README, --help)
            reason_text = _check_reason(reason, level)
        return Authorization("self-service", operator, approver, level, reason_text)

    if approver is not None:
        if same_person(operator, approver):
            raise AuthorizationError(f"--approved-by {approver} is you: {pending_message(operator)}")
        return Authorization("approved", operator, approver, level, reason_text)
    if level is not None:
        return Authorization("emergency", operator, None, level, _check_reason(reason, level), post_hoc_review=True)
    return Authorization("pending", operator, None, None, reason_text)


def check_approval(requester: str, approver: str, run_id: str | None = None) -> None:
    """Refuse self-approval (the ``approve`` command and --approved-by both use this)."""
    if not approver.strip():
        raise AuthorizationError("the approver's name is empty")
    if same_person(requester, approver):
        run = run_id or "RUN_ID"
        raise AuthorizationError(
            f"you ({approver.strip()}) cannot approve your own production rollback: a second person, "
            f"a team lead or on-call, must approve it (`rollback-console approve {run}`), "
            "or in a P0/P1 emergency pass --emergency P0 --reason TEXT"
        )


def policy_of(env: Environment) -> tuple[bool | None, tuple[str, ...]]:
    """The environment's profile's [authorization]: does its kind need an approver (None: the
    runbook's table decides), and which emergency levels skip approval."""
    try:
        profile = profile_of(env)
    except ProfileError:
        return None, EMERGENCY_LEVELS
    rule = next((a for a in profile.authorization if a.kind == env.kind), None)
    required = None if rule is None else rule.approval == "required"
    return required, profile.emergency_levels or EMERGENCY_LEVELS
