"""The runbook's authorization table, rule by rule, with the messages an operator sees."""

from __future__ import annotations

import dataclasses

import pytest

from console.runbook.authz import (
    POST_HOC_REVIEW_ID,
    Authorization,
    AuthorizationError,
    authorize,
    check_approval,
    pending_message,
    post_hoc_review_item,
)

REASON = "p95 latency 8 s since 14:02, users see timeouts"


def test_staging_is_self_service() -> None:
    auth = authorize("staging", "alice")
    assert auth == Authorization("self-service", "alice")
    assert auth.allowed and not auth.post_hoc_review and not auth.notify_now
    assert auth.describe() == "staging: self-service by alice"


def test_staging_records_an_approver_given_anyway() -> None:
    auth = authorize("staging", " alice ", approved_by=" bob ", reason="routine drill")
    assert (auth.mode, auth.operator, auth.approver, auth.reason) == ("self-service", "alice", "bob", "routine drill")
    assert "approver bob recorded" in auth.describe()


def test_staging_self_approval_is_not_an_error() -> None:
    # No approval is needed on staging, so naming yourself changes nothing.
    assert authorize("staging", "alice", approved_by="alice").mode == "self-service"


def test_production_with_another_approver_is_approved() -> None:
    auth = authorize("production", "alice", approved_by="Bob")
    assert (auth.mode, auth.approver, auth.emergency_level, auth.post_hoc_review) == ("approved", "Bob", None, False)
    assert auth.allowed
    assert auth.describe() == "production: run by alice, approved by Bob"


@pytest.mark.parametrize("approver", ["alice", "ALICE", "  Alice  ", "\talice\n"])
def test_production_self_approval_is_refused(approver: str) -> None:
    with pytest.raises(AuthorizationError) as caught:
        authorize("production", "alice", approved_by=approver)
    message = str(caught.value)
    assert f"--approved-by {approver.strip()} is you" in message
    assert "production needs an approver other than you (alice)" in message
    assert "--approved-by NAME" in message and "rollback-console approve RUN_ID" in message
    assert "--emergency P0 --reason TEXT" in message


def test_production_self_approval_refused_even_with_an_emergency() -> None:
    with pytest.raises(AuthorizationError, match="is you"):
        authorize("production", "alice", approved_by="alice", emergency="P0", reason=REASON)


def test_empty_approver_is_refused() -> None:
    with pytest.raises(AuthorizationError, match="--approved-by is empty"):
        authorize("production", "alice", approved_by="   ")


@pytest.mark.parametrize("level", ["P0", "P1", "p0", " p1 "])
def test_production_emergency_override(level: str) -> None:
    auth = authorize("production", "alice", emergency=level, reason=f"  {REASON}  ")
    assert auth.mode == "emergency" and auth.emergency_level == level.strip().upper()
    assert auth.reason == REASON and auth.approver is None
    assert auth.post_hoc_review and auth.notify_now and auth.allowed
    assert "emergency override by alice" in auth.describe() and "post-hoc review" in auth.describe()
    item = post_hoc_review_item(auth)
    assert item is not None and item.id == POST_HOC_REVIEW_ID and item.check is None
    assert "Post-hoc review" in item.text and REASON in item.text and auth.emergency_level in item.text


@pytest.mark.parametrize("level", ["P2", "P3", "high", "", "0"])
def test_other_emergency_levels_are_refused(level: str) -> None:
    with pytest.raises(AuthorizationError) as caught:
        authorize("production", "alice", emergency=level, reason=REASON)
    assert "--emergency must be P0 or P1" in str(caught.value)
    assert repr(level) in str(caught.value) and "needs an approver" in str(caught.value)


@pytest.mark.parametrize("reason", [None, "", "   ", "broken", "site down"])
def test_emergency_needs_a_typed_reason_of_a_few_words(reason: str | None) -> None:
    with pytest.raises(AuthorizationError) as caught:
        authorize("production", "alice", emergency="P0", reason=reason)
    message = str(caught.value)
    assert "P0 emergency override needs a typed reason of at least 3 words" in message
    assert "--reason" in message
    if reason and reason.strip():
        assert repr(reason.strip()) in message


def test_three_words_are_enough() -> None:
    assert authorize("production", "alice", emergency="P1", reason="search is down").mode == "emergency"


def test_approver_wins_over_emergency_and_both_are_recorded() -> None:
    auth = authorize("production", "alice", approved_by="bob", emergency="P1", reason="x")
    assert (auth.mode, auth.approver, auth.emergency_level, auth.post_hoc_review) == ("approved", "bob", "P1", False)


def test_production_with_neither_is_pending() -> None:
    auth = authorize("production", "alice", reason="latency creeping up")
    assert auth.mode == "pending" and not auth.allowed and not auth.notify_now
    assert auth.reason == "latency creeping up"
    assert post_hoc_review_item(auth) is None
    assert auth.describe("20251121-1403-ab12") == (
        "production needs an approver other than you (alice): pass --approved-by NAME, "
        "have a team lead or on-call run `rollback-console approve 20251121-1403-ab12`, "
        "or in a P0/P1 emergency pass --emergency P0 --reason TEXT"
    )
    assert pending_message("alice") == auth.describe()


def test_unknown_kind_and_empty_operator_are_refused() -> None:
    with pytest.raises(AuthorizationError, match="unknown environment kind 'prod'"):
        authorize("prod", "alice")
    with pytest.raises(AuthorizationError, match="operator name is empty"):
        authorize("staging", "  ")


def test_authorization_is_frozen_and_journals_as_a_dict() -> None:
    auth = authorize("production", "alice", emergency="P0", reason=REASON)
    with pytest.raises(dataclasses.FrozenInstanceError):
        auth.mode = "approved"  # type: ignore[misc]
    assert auth.to_dict() == {
        "mode": "emergency",
        "operator": "alice",
        "approver": None,
        "emergency_level": "P0",
        "reason": REASON,
        "post_hoc_review": True,
    }


@pytest.mark.parametrize("approver", ["alice", "Alice", " ALICE "])
def test_check_approval_refuses_self_approval(approver: str) -> None:
    with pytest.raises(AuthorizationError) as caught:
        check_approval("alice", approver, run_id="r-7")
    message = str(caught.value)
    assert f"you ({approver.strip()}) cannot approve your own production rollback" in message
    assert "rollback-console approve r-7" in message and "team lead or on-call" in message


def test_check_approval_accepts_another_person() -> None:
    assert check_approval("alice", "bob") is None


def test_check_approval_refuses_an_empty_name() -> None:
    with pytest.raises(AuthorizationError, match="approver's name is empty"):
        check_approval("alice", " ")
