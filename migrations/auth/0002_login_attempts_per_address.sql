-- Failed logins are counted per (email, client address): from one address,
-- nobody can lock the owner of an email out of their account elsewhere.
-- An attempt is reserved (counted as a failure) before its password is
-- checked, in one statement, so concurrent attempts cannot exceed the
-- budget; a success deletes the row. Past the free attempts each further one
-- waits until `locked_until`, a delay that doubles with every failure.
DROP TABLE login_failures;

CREATE TABLE login_attempts (
    email           TEXT NOT NULL,
    address         TEXT NOT NULL,
    failures        INTEGER NOT NULL CHECK (failures > 0),
    locked_until    TIMESTAMPTZ,
    last_attempt_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (email, address)
);
