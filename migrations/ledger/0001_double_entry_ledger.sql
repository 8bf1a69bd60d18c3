-- A double-entry ledger: accounts with exact running balances, transactions,
-- and their entries. The rules that keep the books honest live here, in the
-- database, so that no code path (or hand-written SQL) can break them:
--   * an entry's amount is positive and its currency is its account's;
--   * a transaction commits whole, with at least two entries, balanced per
--     currency (checked at commit by deferred constraint triggers);
--   * entries can only join a transaction in the database transaction that
--     creates it, and neither entries nor transactions can be updated or
--     deleted: a correction is a new, reversing transaction;
--   * a reversal mirrors its original exactly, and is made at most once;
--   * an account marked must_not_go_negative never has a negative balance.

CREATE TABLE accounts (
    id                   TEXT PRIMARY KEY,
    -- The user the account belongs to; NULL for the platform's own accounts.
    owner_id             TEXT,
    name                 TEXT NOT NULL,
    type                 TEXT NOT NULL,
    currency             TEXT NOT NULL,
    -- Set on the accounts the payments chart creates; users cannot post to them by hand.
    system_role          TEXT,
    must_not_go_negative BOOLEAN NOT NULL DEFAULT false,
    metadata             JSONB NOT NULL DEFAULT '{}',
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Signed on the account's normal side (debits - credits for assets and
    -- expenses, credits - debits otherwise); always the sum of its entries.
    balance              BIGINT NOT NULL DEFAULT 0,
    entry_count          BIGINT NOT NULL DEFAULT 0,
    version              BIGINT NOT NULL DEFAULT 0,
    CONSTRAINT accounts_type_known
        CHECK (type IN ('asset', 'liability', 'equity', 'revenue', 'expense')),
    CONSTRAINT accounts_currency_code CHECK (currency ~ '^[a-z]{3}$'),
    CONSTRAINT accounts_system_role_known
        CHECK (system_role IN ('merchant_balance', 'platform_clearing', 'platform_fee_revenue')),
    CONSTRAINT accounts_owner_matches_role CHECK (
        CASE
            WHEN system_role IS NULL OR system_role = 'merchant_balance' THEN owner_id IS NOT NULL
            ELSE owner_id IS NULL
        END
    ),
    CONSTRAINT accounts_guard_on_balance_sheet
        CHECK (NOT must_not_go_negative OR type IN ('asset', 'liability')),
    CONSTRAINT accounts_overdraft CHECK (NOT must_not_go_negative OR balance >= 0),
    CONSTRAINT accounts_counters_not_negative CHECK (entry_count >= 0 AND version >= 0),
    -- Lets entries reference (account, currency), so that the database itself
    -- refuses an entry in another currency than its account's.
    CONSTRAINT accounts_id_currency_key UNIQUE (id, currency)
) WITH (fillfactor = 50); -- room on the page for HOT updates of hot balances

CREATE INDEX accounts_by_owner ON accounts (owner_id, id DESC);
CREATE UNIQUE INDEX accounts_system_role_key ON accounts (owner_id, currency, system_role)
    NULLS NOT DISTINCT WHERE system_role IS NOT NULL;

CREATE TABLE transactions (
    id          TEXT PRIMARY KEY,
    -- Whose reference namespace this is: a user id, or `platform:payments`.
    poster      TEXT NOT NULL,
    reference   TEXT NOT NULL,
    -- The request as posted, to tell a retry from a different posting that reuses the reference.
    request     JSONB NOT NULL,
    description TEXT,
    metadata    JSONB NOT NULL DEFAULT '{}',
    reverses    TEXT REFERENCES transactions (id),
    posted_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- The database transaction that inserted the row: only it may add entries.
    xact_id     XID8 NOT NULL DEFAULT pg_current_xact_id(),
    CONSTRAINT transactions_reference_key UNIQUE (poster, reference),
    CONSTRAINT transactions_reverses_key UNIQUE (reverses),
    CONSTRAINT transactions_not_self_reversing CHECK (reverses <> id)
);

CREATE TABLE entries (
    id             TEXT PRIMARY KEY,
    transaction_id TEXT NOT NULL REFERENCES transactions (id),
    -- Order within the transaction, as posted.
    position       SMALLINT NOT NULL CHECK (position >= 0),
    account_id     TEXT NOT NULL,
    direction      TEXT NOT NULL CONSTRAINT entries_direction_known CHECK (direction IN ('debit', 'credit')),
    amount         BIGINT NOT NULL CONSTRAINT entries_amount_positive CHECK (amount > 0),
    currency       TEXT NOT NULL,
    -- 1, 2, 3, ... per account in posting order, and the account's balance
    -- right after the entry: an account statement without recomputation.
    entry_number   BIGINT NOT NULL CHECK (entry_number > 0),
    balance_after  BIGINT NOT NULL,
    CONSTRAINT entries_account_currency_fkey
        FOREIGN KEY (account_id, currency) REFERENCES accounts (id, currency),
    CONSTRAINT entries_position_key UNIQUE (transaction_id, position),
    CONSTRAINT entries_account_number_key UNIQUE (account_id, entry_number)
);

-- Immutability.

CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% on % is refused: the ledger is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation',
              HINT = 'correct a posting with a reversing transaction';
END
$$;

CREATE TRIGGER entries_immutable BEFORE UPDATE OR DELETE ON entries
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER entries_not_truncated BEFORE TRUNCATE ON entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER transactions_immutable BEFORE UPDATE OR DELETE ON transactions
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER transactions_not_truncated BEFORE TRUNCATE ON transactions
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
-- An account's identity never changes and its counters only move forward;
-- only postings change its balance.
CREATE TRIGGER accounts_identity_immutable BEFORE UPDATE ON accounts
    FOR EACH ROW WHEN (
        NEW.id IS DISTINCT FROM OLD.id
        OR NEW.owner_id IS DISTINCT FROM OLD.owner_id
        OR NEW.type IS DISTINCT FROM OLD.type
        OR NEW.currency IS DISTINCT FROM OLD.currency
        OR NEW.system_role IS DISTINCT FROM OLD.system_role
        OR NEW.created_at IS DISTINCT FROM OLD.created_at
        OR NEW.entry_count < OLD.entry_count
        OR NEW.version < OLD.version
    ) EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER accounts_not_deleted BEFORE DELETE ON accounts
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER accounts_not_truncated BEFORE TRUNCATE ON accounts
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

-- Entries join only a transaction created in the same database transaction,
-- so a committed transaction can never gain legs, balanced or not.
CREATE FUNCTION ledger_entry_joins_new_transaction() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM transactions
        WHERE id = NEW.transaction_id AND xact_id = pg_current_xact_id()
    ) THEN
        RAISE EXCEPTION 'entries can only be added to a transaction by the database transaction that creates it'
            USING ERRCODE = 'integrity_constraint_violation',
                  CONSTRAINT = 'entries_transaction_is_new';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER entries_join_new_transactions BEFORE INSERT ON entries
    FOR EACH ROW EXECUTE FUNCTION ledger_entry_joins_new_transaction();

-- Balance, checked at commit when every entry is in.

CREATE FUNCTION ledger_check_transaction(p_transaction TEXT, p_full BOOLEAN) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_entries    NUMERIC;
    v_unbalanced TEXT;
    v_reverses   TEXT;
BEGIN
    SELECT coalesce(sum(n), 0), min(currency) FILTER (WHERE net <> 0)
      INTO v_entries, v_unbalanced
      FROM (
          SELECT currency, count(*) AS n,
                 sum(CASE direction WHEN 'debit' THEN amount ELSE -amount END) AS net
            FROM entries WHERE transaction_id = p_transaction
           GROUP BY currency
      ) per_currency;
    IF v_unbalanced IS NOT NULL THEN
        RAISE EXCEPTION 'transaction % does not balance: debits and credits differ in %',
            p_transaction, v_unbalanced
            USING ERRCODE = 'check_violation', CONSTRAINT = 'transactions_balanced';
    END IF;
    IF NOT p_full THEN
        RETURN;
    END IF;
    IF v_entries < 2 THEN
        RAISE EXCEPTION 'transaction % has % entries; it needs at least two', p_transaction, v_entries
            USING ERRCODE = 'check_violation', CONSTRAINT = 'transactions_balanced';
    END IF;
    SELECT reverses INTO v_reverses FROM transactions WHERE id = p_transaction;
    IF v_reverses IS NULL THEN
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM transactions WHERE id = v_reverses AND reverses IS NOT NULL) THEN
        RAISE EXCEPTION 'transaction % is itself a reversal and cannot be reversed', v_reverses
            USING ERRCODE = 'check_violation', CONSTRAINT = 'transactions_reversal_mirrors';
    END IF;
    IF EXISTS (
        (SELECT account_id, direction, amount FROM entries WHERE transaction_id = p_transaction
         EXCEPT ALL
         SELECT account_id, CASE direction WHEN 'debit' THEN 'credit' ELSE 'debit' END, amount
           FROM entries WHERE transaction_id = v_reverses)
        UNION ALL
        (SELECT account_id, CASE direction WHEN 'debit' THEN 'credit' ELSE 'debit' END, amount
           FROM entries WHERE transaction_id = v_reverses
         EXCEPT ALL
         SELECT account_id, direction, amount FROM entries WHERE transaction_id = p_transaction)
    ) THEN
        RAISE EXCEPTION 'transaction % does not mirror the transaction % it reverses', p_transaction, v_reverses
            USING ERRCODE = 'check_violation', CONSTRAINT = 'transactions_reversal_mirrors';
    END IF;
END
$$;

CREATE FUNCTION ledger_transaction_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ledger_check_transaction(NEW.id, true);
    RETURN NULL;
END
$$;

CREATE FUNCTION ledger_entry_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ledger_check_transaction(NEW.transaction_id, false);
    RETURN NULL;
END
$$;

-- On both tables: a transaction without entries is caught by the first, and
-- entries added after `SET CONSTRAINTS ... IMMEDIATE` by the second.
CREATE CONSTRAINT TRIGGER transactions_balanced AFTER INSERT ON transactions
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_transaction_balanced();
CREATE CONSTRAINT TRIGGER entries_balanced AFTER INSERT ON entries
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_entry_balanced();

-- Posting: one statement, hence one round trip and one implicit database
-- transaction. The service validates the posting first (ownership, balance,
-- currencies); this applies it atomically:
--   1. records the transaction, or finds the one already recorded under the
--      same (poster, reference) and stops there;
--   2. locks the touched accounts in id order, so that concurrent postings
--      queue behind each other on hot accounts and never deadlock;
--   3. refuses an overdraft of a guarded account;
--   4. moves each balance once by the net of its entries, and records the
--      entries with each account's entry number and balance after them.
-- Balance changes follow from the account types here, so the sign
-- convention lives in one place.
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
LANGUAGE plpgsql AS $$
DECLARE
    v_posted_at  TIMESTAMPTZ;
    v_overdrawn  TEXT;
    v_inserted   BIGINT;
BEGIN
    INSERT INTO transactions AS t (id, poster, reference, request, description, metadata, reverses)
    VALUES (p_id, p_poster, p_reference, p_request, p_description, p_metadata, p_reverses)
    ON CONFLICT (poster, reference) DO NOTHING
    RETURNING t.posted_at INTO v_posted_at;
    IF NOT FOUND THEN
        RETURN QUERY
            SELECT t.id, false, t.posted_at FROM transactions t
             WHERE t.poster = p_poster AND t.reference = p_reference;
        RETURN;
    END IF;

    PERFORM 1 FROM accounts a WHERE a.id = ANY (p_account_ids) ORDER BY a.id FOR NO KEY UPDATE;

    SELECT a.id INTO v_overdrawn
      FROM accounts a
      JOIN (
          SELECT l.account_id,
                 sum(CASE WHEN (acc.type IN ('asset', 'expense')) = (l.direction = 'debit')
                          THEN l.amount ELSE -l.amount END) AS change
            FROM unnest(p_account_ids, p_directions, p_amounts) AS l (account_id, direction, amount)
            JOIN accounts acc ON acc.id = l.account_id
           GROUP BY l.account_id
      ) totals ON totals.account_id = a.id
     WHERE a.must_not_go_negative AND a.balance + totals.change < 0
     ORDER BY a.id
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'the posting would take account % below zero', v_overdrawn
            USING ERRCODE = 'check_violation', CONSTRAINT = 'accounts_overdraft', DETAIL = v_overdrawn;
    END IF;

    WITH legs AS (
        SELECT l.entry_id, l.account_id, l.direction, l.amount, l.currency, (l.n - 1)::SMALLINT AS position,
               CASE WHEN (acc.type IN ('asset', 'expense')) = (l.direction = 'debit')
                    THEN l.amount ELSE -l.amount END AS change
          FROM unnest(p_entry_ids, p_account_ids, p_directions, p_amounts, p_currencies)
               WITH ORDINALITY AS l (entry_id, account_id, direction, amount, currency, n)
          JOIN accounts acc ON acc.id = l.account_id
    ), totals AS (
        SELECT legs.account_id, sum(legs.change)::BIGINT AS change, count(*) AS n
          FROM legs GROUP BY legs.account_id
    ), updated AS (
        UPDATE accounts a
           SET balance = a.balance + totals.change,
               entry_count = a.entry_count + totals.n,
               version = a.version + 1
          FROM totals
         WHERE a.id = totals.account_id
        RETURNING a.id, a.balance - totals.change AS balance_before, a.entry_count - totals.n AS count_before
    )
    INSERT INTO entries (id, transaction_id, position, account_id, direction, amount, currency,
                         entry_number, balance_after)
    SELECT legs.entry_id, p_id, legs.position, legs.account_id, legs.direction, legs.amount, legs.currency,
           updated.count_before + row_number() OVER running,
           updated.balance_before + (sum(legs.change) OVER running)::BIGINT
      FROM legs JOIN updated ON updated.id = legs.account_id
    WINDOW running AS (PARTITION BY legs.account_id ORDER BY legs.position);
    GET DIAGNOSTICS v_inserted = ROW_COUNT;
    IF v_inserted <> coalesce(array_length(p_entry_ids, 1), 0) THEN
        RAISE EXCEPTION 'a posting names an account that does not exist'
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'entries_account_currency_fkey';
    END IF;

    RETURN QUERY SELECT p_id, true, v_posted_at;
END
$$;
