-- The fee of a payment is decided once, when it succeeds, and kept: the
-- ledger posting carries it, so a change of fee schedule never changes what
-- an earlier payment cost, however late its posting is retried.
ALTER TABLE payments ADD COLUMN fee BIGINT;
ALTER TABLE payments ADD CONSTRAINT payments_fee_within_amount
    CHECK (fee IS NULL OR (fee >= 0 AND fee <= amount));
ALTER TABLE payments ADD CONSTRAINT payments_fee_only_succeeded
    CHECK (fee IS NULL OR status = 'succeeded');

ALTER TABLE ledger_postings ADD COLUMN fee BIGINT;
ALTER TABLE ledger_postings ADD CONSTRAINT ledger_postings_fee_on_payments
    CHECK (fee IS NULL OR (kind = 'payment' AND fee >= 0 AND fee <= amount));

-- Payment postings still owed from before fees were stamped get the fee the
-- ledger's default schedule would have applied to them (2.9% rounded half
-- to even, plus 0.30 in the currency's minor unit), and their payments the
-- same stamp. Payments already posted keep no stamp: the ledger holds it.
WITH owed AS (
    SELECT reference, amount, amount * 290 / 10000 AS q, amount * 290 % 10000 AS r,
           CASE currency WHEN 'jpy' THEN 0 WHEN 'krw' THEN 0
                         WHEN 'kwd' THEN 300 WHEN 'bhd' THEN 300 ELSE 30 END AS fixed
    FROM ledger_postings WHERE kind = 'payment' AND posted_at IS NULL
), stamped AS (
    SELECT reference,
           least(amount, fixed + q + CASE WHEN 2 * r > 10000 OR (2 * r = 10000 AND q % 2 = 1)
                                         THEN 1 ELSE 0 END) AS fee
    FROM owed
), postings AS (
    UPDATE ledger_postings p SET fee = s.fee FROM stamped s WHERE p.reference = s.reference
)
UPDATE payments p SET fee = s.fee FROM stamped s WHERE p.id = s.reference;

-- The posting worker claims a posting with a lease and commits before it
-- calls the ledger, so no transaction (and no row lock) is held across an
-- HTTP call; a worker that dies mid-call leaves a lease that simply expires.
-- A posting the ledger keeps refusing (4xx) is dead-lettered after a bounded
-- number of attempts instead of being retried forever.
ALTER TABLE ledger_postings ADD COLUMN leased_until TIMESTAMPTZ;
ALTER TABLE ledger_postings ADD COLUMN refusals INTEGER NOT NULL DEFAULT 0;
ALTER TABLE ledger_postings ADD COLUMN dead_lettered_at TIMESTAMPTZ;
DROP INDEX ledger_postings_due;
CREATE INDEX ledger_postings_due ON ledger_postings (next_attempt_at)
    WHERE posted_at IS NULL AND dead_lettered_at IS NULL;

-- An event the publisher cannot decode or serialise is set aside with the
-- reason, so that one bad row does not stall every other user's events.
ALTER TABLE events ADD COLUMN quarantined_at TIMESTAMPTZ;
ALTER TABLE events ADD COLUMN quarantine_reason TEXT;
DROP INDEX events_unpublished;
DROP INDEX events_unpublished_owner;
CREATE INDEX events_unpublished ON events (position)
    WHERE published_at IS NULL AND quarantined_at IS NULL;
CREATE INDEX events_unpublished_owner ON events (owner_id, sequence)
    WHERE published_at IS NULL AND quarantined_at IS NULL;
