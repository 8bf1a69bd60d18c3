-- Users, their sessions (refresh tokens), API keys and webhook signing secrets.

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT users_email_key UNIQUE (email),
    CONSTRAINT users_email_normalised CHECK (email = lower(btrim(email)))
);

-- Failed logins are counted per address, whether or not an account exists,
-- so that the lockout itself does not reveal which emails are registered.
CREATE TABLE login_failures (
    email             TEXT PRIMARY KEY,
    failures          INTEGER NOT NULL,
    window_started_at TIMESTAMPTZ NOT NULL
);

-- Refresh tokens rotate: each use marks the token used and issues the next in
-- the same family. Presenting a used token again revokes the whole family.
CREATE TABLE refresh_tokens (
    token_hash BYTEA PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id),
    family_id  UUID NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ,
    revoked_at TIMESTAMPTZ
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

-- The secret part of a key is never stored: only HMAC-SHA256(server secret, key).
CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id),
    name         TEXT NOT NULL,
    lookup_id    TEXT NOT NULL,
    secret_hash  BYTEA NOT NULL,
    prefix       TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_used_at TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ,
    CONSTRAINT api_keys_lookup_id_key UNIQUE (lookup_id)
);
CREATE INDEX api_keys_by_user ON api_keys (user_id, id DESC);

-- Kept in clear: deliveries are signed with it, so it must be recoverable.
CREATE TABLE webhook_secrets (
    user_id    TEXT PRIMARY KEY REFERENCES users (id),
    secret     TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
