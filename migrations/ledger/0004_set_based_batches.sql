-- A batch written as a set: one insert of its transactions, one update of
-- each touched balance and one insert of all its entries, instead of one
-- ledger_post per posting, each in a subtransaction of its own.
--
-- The rules are the same, and so are their checks: the statement-level and
-- deferred triggers run on the set (SET CONSTRAINTS ALL IMMEDIATE, before
-- the batch answers). Entry numbers and balances after each entry follow the
-- postings' order, as if they had been posted one after another.
--
-- The set is tried in one subtransaction. Anything it cannot answer alone
-- falls back to the posting-by-posting batch (ledger_post_each, the former
-- ledger_post_batch), which refuses postings one by one: a refusal of any
-- kind (an unknown account, an unbalanced journal), a guarded account that
-- any entry of the batch would take below zero (the posting-by-posting
-- order then decides which posting is refused), reversals (whose rules are
-- about one transaction and another), and a reference named twice in one
-- batch. Conflicts PostgreSQL asks the client to retry end the whole
-- statement, as before.

ALTER FUNCTION ledger_post_batch(TEXT[], TEXT[], TEXT[], JSONB[], TEXT[], JSONB[], TEXT[], INT[], TEXT[],
                                 TEXT[], TEXT[], BIGINT[], TEXT[])
    RENAME TO ledger_post_each;

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
    v_postings   INT := coalesce(array_length(p_ids, 1), 0);
    v_legs       INT := coalesce(array_length(p_entry_ids, 1), 0);
    v_created    TEXT[];
    v_created_at TIMESTAMPTZ[];
    v_written    BIGINT;
    v_expected   BIGINT;
    v_dips       BOOLEAN;
    v_as_a_set   BOOLEAN := false;
BEGIN
    IF coalesce(array_length(p_leg_counts, 1), 0) <> v_postings
       OR (SELECT coalesce(sum(n), 0) FROM unnest(p_leg_counts) AS n) <> v_legs THEN
        RAISE EXCEPTION 'a batch must give each posting its count of legs, and every leg'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    IF v_postings > 1
       AND NOT EXISTS (SELECT 1 FROM unnest(p_reverses) AS r WHERE r IS NOT NULL)
       AND (SELECT count(DISTINCT (k.poster, k.reference)) FROM unnest(p_posters, p_references) AS k (poster, reference))
           = v_postings THEN
        -- Outside the subtransaction, so that a fallback keeps the locks.
        PERFORM 1 FROM account_balances b WHERE b.account_id = ANY (p_account_ids)
         ORDER BY b.account_id FOR NO KEY UPDATE;
        BEGIN
            SET CONSTRAINTS ALL DEFERRED;
            WITH inserted AS (
                INSERT INTO transactions AS t (id, poster, reference, request, description, metadata, entry_count)
                SELECT p.id, p.poster, p.reference, p.request, p.description, p.metadata, p.leg_count
                  FROM unnest(p_ids, p_posters, p_references, p_requests, p_descriptions, p_metadata, p_leg_counts)
                       WITH ORDINALITY AS p (id, poster, reference, request, description, metadata, leg_count, ord)
                 ORDER BY p.ord
                ON CONFLICT (poster, reference) DO NOTHING
                RETURNING t.id, t.posted_at
            )
            SELECT coalesce(array_agg(inserted.id), '{}'), coalesce(array_agg(inserted.posted_at), '{}')
              INTO v_created, v_created_at
              FROM inserted;

            WITH postings AS (
                SELECT p.id, p.ord, p.leg_count,
                       sum(p.leg_count) OVER (ORDER BY p.ord) - p.leg_count AS legs_before
                  FROM unnest(p_ids, p_leg_counts) WITH ORDINALITY AS p (id, leg_count, ord)
            ), legs AS (
                SELECT l.entry_id, l.account_id, l.direction, l.amount, l.currency, l.n,
                       postings.id AS transaction_id, postings.ord AS posting,
                       (l.n - 1 - postings.legs_before)::SMALLINT AS position
                  FROM unnest(p_entry_ids, p_account_ids, p_directions, p_amounts, p_currencies)
                       WITH ORDINALITY AS l (entry_id, account_id, direction, amount, currency, n)
                  JOIN postings ON l.n > postings.legs_before AND l.n <= postings.legs_before + postings.leg_count
                 WHERE postings.id = ANY (v_created)
            ), totals AS (
                SELECT legs.account_id,
                       sum(CASE WHEN legs.direction = 'debit' THEN legs.amount ELSE -legs.amount END)::BIGINT
                           AS net_debit,
                       count(*) AS n,
                       count(DISTINCT legs.posting) AS postings
                  FROM legs GROUP BY legs.account_id
            ), updated AS (
                UPDATE account_balances b
                   SET balance = b.balance + CASE WHEN b.type IN ('asset', 'expense')
                                                  THEN totals.net_debit ELSE -totals.net_debit END,
                       entry_count = b.entry_count + totals.n,
                       version = b.version + totals.postings
                  FROM totals
                 WHERE b.account_id = totals.account_id
                RETURNING b.account_id,
                          b.must_not_go_negative AS guarded,
                          b.type IN ('asset', 'expense') AS debit_normal,
                          b.balance - CASE WHEN b.type IN ('asset', 'expense')
                                           THEN totals.net_debit ELSE -totals.net_debit END AS balance_before,
                          b.entry_count - totals.n AS count_before
            ), rows AS (
                SELECT legs.entry_id, legs.transaction_id, legs.position, legs.account_id, legs.direction,
                       legs.amount, legs.currency, updated.guarded,
                       updated.count_before + row_number() OVER running AS entry_number,
                       updated.balance_before
                         + (sum(CASE WHEN updated.debit_normal = (legs.direction = 'debit')
                                     THEN legs.amount ELSE -legs.amount END) OVER running)::BIGINT
                           AS balance_after
                  FROM legs JOIN updated ON updated.account_id = legs.account_id
                WINDOW running AS (PARTITION BY legs.account_id ORDER BY legs.n)
            ), written AS (
                INSERT INTO entries (id, transaction_id, position, account_id, direction, amount, currency,
                                     entry_number, balance_after)
                SELECT rows.entry_id, rows.transaction_id, rows.position, rows.account_id, rows.direction,
                       rows.amount, rows.currency, rows.entry_number, rows.balance_after
                  FROM rows
                RETURNING 1
            )
            SELECT (SELECT count(*) FROM written),
                   (SELECT coalesce(bool_or(rows.guarded AND rows.balance_after < 0), false) FROM rows),
                   (SELECT coalesce(sum(p.leg_count), 0) FROM unnest(p_ids, p_leg_counts) AS p (id, leg_count)
                     WHERE p.id = ANY (v_created))
              INTO v_written, v_dips, v_expected;
            IF v_written <> v_expected OR v_dips THEN
                RAISE EXCEPTION 'the batch cannot be written as a set' USING ERRCODE = 'check_violation';
            END IF;
            SET CONSTRAINTS ALL IMMEDIATE;
            v_as_a_set := true;
        EXCEPTION WHEN OTHERS THEN
            IF SQLSTATE IN ('40001', '40P01') THEN
                RAISE;
            END IF;
        END;
    END IF;

    IF NOT v_as_a_set THEN
        RETURN QUERY SELECT * FROM ledger_post_each(p_ids, p_posters, p_references, p_requests, p_descriptions,
                                                    p_metadata, p_reverses, p_leg_counts, p_entry_ids,
                                                    p_account_ids, p_directions, p_amounts, p_currencies);
        RETURN;
    END IF;

    RETURN QUERY
    SELECT p.ord::INT, coalesce(c.id, t.id), c.id IS NOT NULL, coalesce(c.posted_at, t.posted_at),
           NULL::TEXT, NULL::TEXT, NULL::TEXT, NULL::TEXT
      FROM unnest(p_ids, p_posters, p_references) WITH ORDINALITY AS p (id, poster, reference, ord)
      LEFT JOIN unnest(v_created, v_created_at) AS c (id, posted_at) ON c.id = p.id
      LEFT JOIN transactions t ON c.id IS NULL AND t.poster = p.poster AND t.reference = p.reference;
END
$$;
