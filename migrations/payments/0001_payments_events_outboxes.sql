-- Payments, their refunds, the events they emit (an outbox the publisher
-- drains to Redis), the ledger postings they owe (an outbox the posting worker
-- drains to the ledger), and the idempotency keys that make POSTs retryable.

CREATE TABLE payments (
    id                    TEXT PRIMARY KEY,
    owner_id              TEXT NOT NULL,
    amount                BIGINT NOT NULL CHECK (amount > 0),
    amount_refunded       BIGINT NOT NULL DEFAULT 0,
    currency              TEXT NOT NULL,
    status                TEXT NOT NULL CHECK (
        status IN ('requires_confirmation', 'processing', 'succeeded', 'failed', 'canceled')
    ),
    description           TEXT,
    metadata              JSONB NOT NULL DEFAULT '{}',
    customer_email        TEXT,
    payment_method        TEXT,
    failure_code          TEXT,
    failure_message       TEXT,
    ledger_transaction_id TEXT,
    created_at            TIMESTAMPTZ NOT NULL,
    updated_at            TIMESTAMPTZ NOT NULL,
    -- The last line of defence: however a bug reaches it, no payment is
    -- refunded beyond its amount, and only a succeeded one at all.
    CONSTRAINT payments_refund_within_amount CHECK (amount_refunded >= 0 AND amount_refunded <= amount),
    CONSTRAINT payments_refund_only_succeeded CHECK (amount_refunded = 0 OR status = 'succeeded'),
    CONSTRAINT payments_failure_only_failed CHECK ((failure_code IS NULL) = (status <> 'failed'))
);

CREATE INDEX payments_owner_id ON payments (owner_id, id DESC);
CREATE INDEX payments_owner_status_id ON payments (owner_id, status, id DESC);

CREATE TABLE refunds (
    id                    TEXT PRIMARY KEY,
    payment_id            TEXT NOT NULL REFERENCES payments (id),
    owner_id              TEXT NOT NULL,
    amount                BIGINT NOT NULL CHECK (amount > 0),
    currency              TEXT NOT NULL,
    status                TEXT NOT NULL DEFAULT 'succeeded' CHECK (status IN ('succeeded')),
    ledger_transaction_id TEXT,
    created_at            TIMESTAMPTZ NOT NULL
);

CREATE INDEX refunds_payment_id ON refunds (payment_id, id DESC);

-- One row per owner, locked by the transaction that appends an event, so
-- that sequences are gapless and assigned in commit order.
CREATE TABLE event_sequences (
    owner_id      TEXT PRIMARY KEY,
    last_sequence BIGINT NOT NULL
);

CREATE TABLE events (
    id           TEXT PRIMARY KEY,
    -- Insertion order across owners, so the publisher drains oldest first.
    position     BIGINT GENERATED ALWAYS AS IDENTITY,
    owner_id     TEXT NOT NULL,
    sequence     BIGINT NOT NULL CHECK (sequence > 0),
    type         TEXT NOT NULL,
    object_id    TEXT NOT NULL,
    object       JSONB NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    published_at TIMESTAMPTZ,
    CONSTRAINT events_owner_sequence UNIQUE (owner_id, sequence)
);

CREATE INDEX events_owner_type_sequence ON events (owner_id, type, sequence DESC);
CREATE INDEX events_unpublished ON events (position) WHERE published_at IS NULL;
CREATE INDEX events_unpublished_owner ON events (owner_id, sequence) WHERE published_at IS NULL;

-- A user's request to send an event again to live listeners.
CREATE TABLE event_resends (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id     TEXT NOT NULL REFERENCES events (id),
    requested_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    published_at TIMESTAMPTZ
);

CREATE INDEX event_resends_unpublished ON event_resends (id) WHERE published_at IS NULL;

-- What the ledger must record, written with the state change that owes it.
-- The reference is the payment or refund id: the ledger is idempotent by it.
CREATE TABLE ledger_postings (
    reference             TEXT PRIMARY KEY,
    kind                  TEXT NOT NULL CHECK (kind IN ('payment', 'refund')),
    payment_id            TEXT NOT NULL REFERENCES payments (id),
    refund_id             TEXT REFERENCES refunds (id),
    merchant_id           TEXT NOT NULL,
    amount                BIGINT NOT NULL CHECK (amount > 0),
    currency              TEXT NOT NULL,
    attempts              INTEGER NOT NULL DEFAULT 0,
    next_attempt_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_error            TEXT,
    ledger_transaction_id TEXT,
    posted_at             TIMESTAMPTZ,
    created_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT ledger_postings_refund_has_refund_id CHECK ((kind = 'refund') = (refund_id IS NOT NULL))
);

CREATE INDEX ledger_postings_due ON ledger_postings (next_attempt_at) WHERE posted_at IS NULL;

-- A completed request under an idempotency key: its fingerprint and the
-- exact answer. A request still in flight holds a transaction-scoped
-- advisory lock on (owner, key) instead of a row, so a crash mid-request
-- leaves nothing behind to expire.
CREATE TABLE idempotency_keys (
    owner_id        TEXT NOT NULL,
    key             TEXT NOT NULL,
    method          TEXT NOT NULL,
    path            TEXT NOT NULL,
    body_hash       BYTEA NOT NULL,
    response_status SMALLINT NOT NULL,
    response_body   BYTEA NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (owner_id, key)
);

CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
