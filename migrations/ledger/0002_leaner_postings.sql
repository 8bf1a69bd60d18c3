-- The same rules, with a fraction of the database work per posting.
--
-- * Balances move to account_balances: narrow rows, the only ones a posting
--   updates, with two small constraints to check and room on the page for
--   HOT updates. Accounts become immutable.
-- * Entries are checked once per statement, by a trigger that sees all the
--   new rows at once, instead of by two foreign keys per row (whose checks
--   would also share-lock the hot account rows from many postings at once).
-- * A transaction states how many entries it has, and an entry may only take
--   a position below that count (positions are unique). Once the commit-time
--   check has seen every entry in place no further entry fits, even after
--   `SET CONSTRAINTS ... IMMEDIATE`, so one deferred check per transaction
--   suffices.
-- * The posting function and the triggers keep generic plans: planned once
--   per connection, not on every call. Those plans must look rows up by key
--   whatever the tables' sizes when they were made (a plan made on a fresh,
--   empty table would otherwise scan it whole for as long as the connection
--   lives), so the functions run with sequential scans disabled.

-- Balances.

ALTER TABLE accounts ADD CONSTRAINT accounts_fixed_facts_key UNIQUE (id, type, must_not_go_negative);

CREATE TABLE account_balances (
    account_id           TEXT PRIMARY KEY,
    -- Copies of the account's fixed facts, held equal to it by the foreign key,
    -- so that a posting reads nothing but the rows it updates.
    type                 TEXT NOT NULL,
    must_not_go_negative BOOLEAN NOT NULL,
    -- Signed on the account's normal side (debits - credits for assets and
    -- expenses, credits - debits otherwise); always the sum of its entries.
    balance              BIGINT NOT NULL DEFAULT 0,
    entry_count          BIGINT NOT NULL DEFAULT 0,
    -- Increases by one with every transaction that touches the account.
    version              BIGINT NOT NULL DEFAULT 0,
    CONSTRAINT account_balances_account_fkey FOREIGN KEY (account_id, type, must_not_go_negative)
        REFERENCES accounts (id, type, must_not_go_negative),
    CONSTRAINT account_balances_overdraft CHECK (NOT must_not_go_negative OR balance >= 0),
    CONSTRAINT account_balances_counters_not_negative CHECK (entry_count >= 0 AND version >= 0)
) WITH (fillfactor = 50);

INSERT INTO account_balances (account_id, type, must_not_go_negative, balance, entry_count, version)
SELECT id, type, must_not_go_negative, balance, entry_count, version FROM accounts;

DROP TRIGGER accounts_identity_immutable ON accounts;
ALTER TABLE accounts
    DROP CONSTRAINT accounts_overdraft,
    DROP CONSTRAINT accounts_counters_not_negative,
    DROP COLUMN balance,
    DROP COLUMN entry_count,
    DROP COLUMN version;
CREATE TRIGGER accounts_immutable BEFORE UPDATE ON accounts
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();

-- Only postings move a balance, and each moves its version and count forward.
CREATE TRIGGER account_balances_move_forward BEFORE UPDATE ON account_balances
    FOR EACH ROW WHEN (
        NEW.account_id <> OLD.account_id
        OR NEW.version <= OLD.version
        OR NEW.entry_count < OLD.entry_count
    ) EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER account_balances_not_deleted BEFORE DELETE ON account_balances
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER account_balances_not_truncated BEFORE TRUNCATE ON account_balances
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

-- Every account has its balance row by the end of the database transaction that creates it.
CREATE FUNCTION ledger_account_has_balance() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM account_balances WHERE account_id = NEW.id) THEN
        RAISE EXCEPTION 'account % has no balance row', NEW.id
            USING ERRCODE = 'integrity_constraint_violation', CONSTRAINT = 'accounts_have_balances';
    END IF;
    RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER accounts_have_balances AFTER INSERT ON accounts
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_account_has_balance();

-- Transactions.

-- Only reversals need the one-reversal-per-transaction index.
ALTER TABLE transactions DROP CONSTRAINT transactions_reverses_key;
CREATE UNIQUE INDEX transactions_reverses_key ON transactions (reverses) WHERE reverses IS NOT NULL;

ALTER TABLE transactions ADD COLUMN entry_count SMALLINT;
ALTER TABLE transactions DISABLE TRIGGER transactions_immutable;
UPDATE transactions t SET entry_count = (SELECT count(*) FROM entries e WHERE e.transaction_id = t.id);
ALTER TABLE transactions ENABLE TRIGGER transactions_immutable;
ALTER TABLE transactions
    ALTER COLUMN entry_count SET NOT NULL,
    ADD CONSTRAINT transactions_entry_count CHECK (entry_count >= 2);

-- Entries.

ALTER TABLE entries
    DROP CONSTRAINT entries_transaction_id_fkey,
    DROP CONSTRAINT entries_account_currency_fkey;
ALTER TABLE accounts DROP CONSTRAINT accounts_id_currency_key;
DROP TRIGGER entries_join_new_transactions ON entries;
DROP FUNCTION ledger_entry_joins_new_transaction();

-- Each new entry names a transaction created by this database transaction,
-- at a position it declared, and an existing account in that account's currency.
CREATE FUNCTION ledger_check_new_entries() RETURNS trigger LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off AS $$
DECLARE
    v_problem    TEXT;
    v_constraint TEXT;
BEGIN
    SELECT CASE
               WHEN t.id IS NULL THEN format(
                   'entry %s names transaction %s, which this database transaction did not create; '
                   'entries can only be added by the database transaction that creates their transaction',
                   e.id, e.transaction_id)
               WHEN e.position >= t.entry_count THEN format(
                   'transaction %s has %s entries; position %s is not one of them',
                   t.id, t.entry_count, e.position)
               WHEN a.id IS NULL THEN format('entry %s names account %s, which does not exist', e.id, e.account_id)
               ELSE format('entry %s is in %s, but account %s is in %s', e.id, e.currency, a.id, a.currency)
           END,
           CASE
               WHEN t.id IS NULL THEN 'entries_transaction_is_new'
               WHEN e.position >= t.entry_count THEN 'entries_position_in_transaction'
               WHEN a.id IS NULL THEN 'entries_account_exists'
               ELSE 'entries_currency_is_the_accounts'
           END
      INTO v_problem, v_constraint
      FROM new_entries e
      LEFT JOIN LATERAL (
          SELECT t.id, t.entry_count FROM transactions t
           WHERE t.id = e.transaction_id AND t.xact_id = pg_current_xact_id() LIMIT 1
      ) t ON true
      LEFT JOIN LATERAL (SELECT a.id, a.currency FROM accounts a WHERE a.id = e.account_id LIMIT 1) a ON true
     WHERE t.id IS NULL OR e.position >= t.entry_count OR a.id IS NULL OR a.currency <> e.currency
     LIMIT 1;
    IF v_problem IS NOT NULL THEN
        RAISE EXCEPTION '%', v_problem
            USING ERRCODE = 'integrity_constraint_violation', CONSTRAINT = v_constraint;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER entries_belong AFTER INSERT ON entries
    REFERENCING NEW TABLE AS new_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_check_new_entries();

-- The commit-time check, now once per transaction.

DROP TRIGGER entries_balanced ON entries;
DROP FUNCTION ledger_entry_balanced();
DROP TRIGGER transactions_balanced ON transactions;
DROP FUNCTION ledger_transaction_balanced();
DROP FUNCTION ledger_check_transaction(TEXT, BOOLEAN);

CREATE FUNCTION ledger_transaction_balanced() RETURNS trigger LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off AS $$
DECLARE
    v_entries    BIGINT;
    v_unbalanced TEXT;
BEGIN
    SELECT coalesce(sum(n), 0), min(currency) FILTER (WHERE net <> 0)
      INTO v_entries, v_unbalanced
      FROM (
          SELECT currency, count(*) AS n,
                 sum(CASE direction WHEN 'debit' THEN amount ELSE -amount END) AS net
            FROM entries WHERE transaction_id = NEW.id
           GROUP BY currency
      ) per_currency;
    IF v_entries <> NEW.entry_count THEN
        RAISE EXCEPTION 'transaction % has % of its % entries', NEW.id, v_entries, NEW.entry_count
            USING ERRCODE = 'check_violation', CONSTRAINT = 'transactions_balanced';
    END IF;
    IF v_unbalanced IS NOT NULL THEN
        RAISE EXCEPTION 'transaction % does not balance: debits and credits differ in %', NEW.id, v_unbalanced
            USING ERRCODE = 'check_violation', CONSTRAINT = 'transactions_balanced';
    END IF;
    IF NEW.reverses IS NULL THEN
        RETURN NULL;
    END IF;
    IF EXISTS (SELECT 1 FROM transactions WHERE id = NEW.reverses AND reverses IS NOT NULL) THEN
        RAISE EXCEPTION 'transaction % is itself a reversal and cannot be reversed', NEW.reverses
            USING ERRCODE = 'check_violation', CONSTRAINT = 'transactions_reversal_mirrors';
    END IF;
    IF EXISTS (
        (SELECT account_id, direction, amount FROM entries WHERE transaction_id = NEW.id
         EXCEPT ALL
         SELECT account_id, CASE direction WHEN 'debit' THEN 'credit' ELSE 'debit' END, amount
           FROM entries WHERE transaction_id = NEW.reverses)
        UNION ALL
        (SELECT account_id, CASE direction WHEN 'debit' THEN 'credit' ELSE 'debit' END, amount
           FROM entries WHERE transaction_id = NEW.reverses
         EXCEPT ALL
         SELECT account_id, direction, amount FROM entries WHERE transaction_id = NEW.id)
    ) THEN
        RAISE EXCEPTION 'transaction % does not mirror the transaction % it reverses', NEW.id, NEW.reverses
            USING ERRCODE = 'check_violation', CONSTRAINT = 'transactions_reversal_mirrors';
    END IF;
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER transactions_balanced AFTER INSERT ON transactions
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_transaction_balanced();

-- Posting, as before: record the transaction or find the one already
-- recorded under (poster, reference); lock the touched balances in account id
-- order (concurrent postings queue on hot accounts, never deadlock); move
-- each balance once by the net of its entries, on the account's normal side;
-- write the entries with each account's entry number and balance after them.
-- An overdraft of a guarded account fails the account_balances_overdraft
-- check, whose detail names the account.
DROP FUNCTION ledger_post(TEXT, TEXT, TEXT, JSONB, TEXT, JSONB, TEXT, TEXT[], TEXT[], TEXT[], BIGINT[], TEXT[]);

CREATE FUNCTION ledger_post(
    p_id          TEXT,
    p_poster      TEXT,
    p_reference   TEXT,
    p_request     JSONB,
    p_description TEXT,
    p_metadata    JSONB,
    p_reverses    TEXT,
    p_entry_ids   TEXT[],
    p_account_ids TEXT[],
    p_directions  TEXT[],
    p_amounts     BIGINT[],
    p_currencies  TEXT[]
) RETURNS TABLE (txn_id TEXT, was_created BOOLEAN, txn_posted_at TIMESTAMPTZ)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off AS $$
DECLARE
    v_inserted BIGINT;
BEGIN
    txn_id := p_id;
    was_created := true;
    INSERT INTO transactions AS t (id, poster, reference, request, description, metadata, reverses, entry_count)
    VALUES (p_id, p_poster, p_reference, p_request, p_description, p_metadata, p_reverses,
            coalesce(array_length(p_entry_ids, 1), 0))
    ON CONFLICT (poster, reference) DO NOTHING
    RETURNING t.posted_at INTO txn_posted_at;
    IF NOT FOUND THEN
        SELECT t.id, t.posted_at INTO txn_id, txn_posted_at FROM transactions t
         WHERE t.poster = p_poster AND t.reference = p_reference;
        was_created := false;
        RETURN NEXT;
        RETURN;
    END IF;

    PERFORM 1 FROM account_balances b WHERE b.account_id = ANY (p_account_ids)
     ORDER BY b.account_id FOR NO KEY UPDATE;

    WITH legs AS (
        SELECT l.entry_id, l.account_id, l.direction, l.amount, l.currency, l.n
          FROM unnest(p_entry_ids, p_account_ids, p_directions, p_amounts, p_currencies)
               WITH ORDINALITY AS l (entry_id, account_id, direction, amount, currency, n)
    ), totals AS (
        SELECT legs.account_id,
               sum(CASE WHEN legs.direction = 'debit' THEN legs.amount ELSE -legs.amount END)::BIGINT AS net_debit,
               count(*) AS n
          FROM legs GROUP BY legs.account_id
    ), updated AS (
        UPDATE account_balances b
           SET balance = b.balance + CASE WHEN b.type IN ('asset', 'expense')
                                          THEN totals.net_debit ELSE -totals.net_debit END,
               entry_count = b.entry_count + totals.n,
               version = b.version + 1
          FROM totals
         WHERE b.account_id = totals.account_id
        RETURNING b.account_id,
                  b.type IN ('asset', 'expense') AS debit_normal,
                  b.balance - CASE WHEN b.type IN ('asset', 'expense')
                                   THEN totals.net_debit ELSE -totals.net_debit END AS balance_before,
                  b.entry_count - totals.n AS count_before
    )
    INSERT INTO entries (id, transaction_id, position, account_id, direction, amount, currency,
                         entry_number, balance_after)
    SELECT legs.entry_id, p_id, (legs.n - 1)::SMALLINT, legs.account_id, legs.direction, legs.amount,
           legs.currency,
           updated.count_before + row_number() OVER running,
           updated.balance_before
             + (sum(CASE WHEN updated.debit_normal = (legs.direction = 'debit')
                         THEN legs.amount ELSE -legs.amount END) OVER running)::BIGINT
      FROM legs JOIN updated ON updated.account_id = legs.account_id
    WINDOW running AS (PARTITION BY legs.account_id ORDER BY legs.n);
    GET DIAGNOSTICS v_inserted = ROW_COUNT;
    IF v_inserted <> coalesce(array_length(p_entry_ids, 1), 0) THEN
        RAISE EXCEPTION 'a posting names an account that does not exist'
            USING ERRCODE = 'integrity_constraint_violation', CONSTRAINT = 'entries_account_exists';
    END IF;

    RETURN NEXT;
END
$$;
