-- Many postings in one statement, one database transaction and one commit.
--
-- A posting's own rules stay where they were: each posting is one call of
-- ledger_post, and the deferred balance check runs for it before the next one
-- starts (SET CONSTRAINTS ALL IMMEDIATE). Each posting runs in a
-- subtransaction of its own (the BEGIN ... EXCEPTION block), so a posting the
-- database refuses (an overdraft, a second reversal, an unbalanced journal)
-- is rolled back alone and reported in its row, while the others commit.
-- The checks stay in the database, where they cannot race: a pre-check in the
-- service would have to repeat them, and could be overtaken by a concurrent
-- posting between the check and the write.
--
-- Every balance the batch touches is locked first, in account id order, the
-- same order single postings lock in: batches and single postings never
-- deadlock each other on balances. A serialization failure or a deadlock
-- (which can still come from two postings under the same reference in two
-- batches at once) aborts the whole statement, to be retried whole with the
-- same ids: nothing of it committed.
--
-- Postings come as parallel arrays, one element per posting; legs come
-- flattened, p_leg_counts[i] of them for posting i, in posting order.
CREATE FUNCTION ledger_post_batch(
    p_ids          TEXT[],
    p_posters      TEXT[],
    p_references   TEXT[],
    p_requests     JSONB[],
    p_descriptions TEXT[],
    p_metadata     JSONB[],
    p_reverses     TEXT[],
    p_leg_counts   INT[],
    p_entry_ids    TEXT[],
    p_account_ids  TEXT[],
    p_directions   TEXT[],
    p_amounts      BIGINT[],
    p_currencies   TEXT[]
) RETURNS TABLE (
    ordinal          INT,
    txn_id           TEXT,
    was_created      BOOLEAN,
    txn_posted_at    TIMESTAMPTZ,
    error_code       TEXT,
    error_constraint TEXT,
    error_detail     TEXT,
    error_message    TEXT
)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off AS $$
DECLARE
    v_from INT := 1;
    v_to   INT;
BEGIN
    IF coalesce(array_length(p_leg_counts, 1), 0) <> coalesce(array_length(p_ids, 1), 0)
       OR (SELECT coalesce(sum(n), 0) FROM unnest(p_leg_counts) AS n)
          <> coalesce(array_length(p_entry_ids, 1), 0) THEN
        RAISE EXCEPTION 'a batch must give each posting its count of legs, and every leg'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    PERFORM 1 FROM account_balances b WHERE b.account_id = ANY (p_account_ids)
     ORDER BY b.account_id FOR NO KEY UPDATE;

    FOR i IN 1 .. coalesce(array_length(p_ids, 1), 0) LOOP
        ordinal := i;
        v_to := v_from + p_leg_counts[i] - 1;
        error_code := NULL;
        error_constraint := NULL;
        error_detail := NULL;
        error_message := NULL;
        BEGIN
            SET CONSTRAINTS ALL DEFERRED;
            SELECT r.txn_id, r.was_created, r.txn_posted_at INTO txn_id, was_created, txn_posted_at
              FROM ledger_post(p_ids[i], p_posters[i], p_references[i], p_requests[i], p_descriptions[i],
                               p_metadata[i], p_reverses[i], p_entry_ids[v_from:v_to],
                               p_account_ids[v_from:v_to], p_directions[v_from:v_to],
                               p_amounts[v_from:v_to], p_currencies[v_from:v_to]) r;
            -- The commit-time checks of this posting, now, inside its subtransaction.
            SET CONSTRAINTS ALL IMMEDIATE;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS error_code = RETURNED_SQLSTATE,
                                    error_constraint = CONSTRAINT_NAME,
                                    error_detail = PG_EXCEPTION_DETAIL,
                                    error_message = MESSAGE_TEXT;
            -- Conflicts PostgreSQL asks the client to retry end the whole batch,
            -- which is retried as one.
            IF error_code IN ('40001', '40P01') THEN
                RAISE;
            END IF;
            txn_id := NULL;
            was_created := false;
            txn_posted_at := NULL;
        END;
        v_from := v_to + 1;
        RETURN NEXT;
    END LOOP;
END
$$;
