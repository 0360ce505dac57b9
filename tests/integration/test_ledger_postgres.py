"""The ledger's transaction tests (tests/unit/gateway/ledger: claims, payments, events,
refunds, wallet transactions, the event outbox) run again on PostgreSQL.

Each test gets a database of its own on the server at 127.0.0.1:5432, dropped afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gateway.config.model import LedgerSettings
from tests.pg import create_database, drop_database
from tests.unit.gateway.ledger.test_ledger import (  # noqa: F401 - collected here as well
    clock,
    ledger,
    test_a_claim_can_name_its_first_provider_in_the_same_write,
    test_a_stale_token_can_neither_stamp_nor_finish,
    test_abandon_frees_the_key_and_keeps_the_attempts,
    test_an_orphaned_claim_is_taken_over_with_its_owner,
    test_concurrent_claims_have_one_winner,
    test_concurrent_updates_each_see_the_last_one,
    test_finish_records_answer_and_payment_in_one_go,
    test_migrations_are_idempotent_and_a_newer_database_is_refused,
    test_one_claim_per_key_then_conflicts,
    test_orphan_event_is_kept_and_applied_once_the_payment_exists,
    test_provider_event_applied_once,
    test_prune_keeps_what_has_not_settled,
    test_settle_unknown_once,
    test_unknown_outcome_never_expires_but_a_settled_key_does,
    test_update_is_compare_and_set_under_lock,
)
from tests.unit.gateway.ledger.test_outbox import (  # noqa: F401 - collected here as well
    test_a_failed_delivery_waits_its_backoff_and_keeps_its_place,
    test_a_failed_transaction_writes_no_event_and_takes_no_number,
    test_an_expired_lease_is_taken_over_and_the_old_holder_cannot_undo,
    test_concurrent_leases_never_hand_one_event_to_two_owners,
    test_events_get_one_increasing_sequence_and_are_written_once,
    test_only_the_oldest_pending_event_of_a_payment_is_leased,
    test_redeliver_sends_a_delivered_event_again,
    test_retention_keeps_undelivered_events_and_marks_the_gap,
)
from tests.unit.gateway.ledger.test_refunds import (  # noqa: F401 - collected here as well
    test_a_database_migrated_before_the_list_was_kept_gets_what_it_lacks,
    test_a_migration_this_code_does_not_know_is_refused,
    test_a_missing_migration_below_the_latest_is_applied,
    test_a_released_refund_frees_its_amount_and_its_key,
    test_a_stopped_request_is_resumed_after_its_lease_and_fenced_out,
    test_concurrent_refunds_never_exceed_the_payment,
    test_failed_refunds_do_not_count,
    test_one_key_one_refund,
    test_over_the_amount_is_refused_at_once,
    test_partial_then_full_then_nothing_left,
    test_refusals,
    test_settled_refunds_are_pruned_with_their_payments_and_pending_ones_kept,
)
from tests.unit.gateway.ledger.test_wallet_ledger import (  # noqa: F401 - collected here as well
    test_a_bet_whose_answer_never_came_is_rolled_back_at_the_backend,
    test_a_late_answer_does_not_undo_a_rollback,
    test_a_refusal_is_replayed_too,
    test_a_rollback_before_its_bet_leaves_a_tombstone,
    test_a_rollback_of_a_refused_bet_forwards_nothing,
    test_a_rollback_reverses_the_bet_and_refuses_its_retry_and_its_win,
    test_an_identical_retry_gets_the_stored_answer,
    test_an_unknown_outcome_is_asked_again,
    test_concurrent_identical_bets_record_one_transaction,
    test_settled_transactions_are_pruned_and_unknown_ones_kept,
    test_the_same_id_with_other_details_is_a_duplicate,
    test_totals_count_what_moved_money,
)


@pytest.fixture
def ledger_settings() -> Iterator[LedgerSettings]:
    url = create_database()
    yield LedgerSettings(backend="postgres", url=url, claim_lease_s=5, pool_size=8)
    drop_database(url)
