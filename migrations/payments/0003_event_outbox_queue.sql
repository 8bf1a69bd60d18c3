-- Events are written once and never updated: what is still to be published
-- is a row of its own in `event_outbox`, written in the same statement as
-- its event and deleted once Redis has taken it. Marking an event in place
-- changed a column that its partial indexes depend on, so every mark wrote
-- a new version of the row and of each of its indexes; a delete from a
-- narrow queue writes neither.
CREATE TABLE event_outbox (
    owner_id    TEXT NOT NULL,
    sequence    BIGINT NOT NULL,
    event_id    TEXT NOT NULL REFERENCES events (id),
    -- The event's position, so that the sweep drains oldest first.
    position    BIGINT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (owner_id, sequence)
);

CREATE INDEX event_outbox_position ON event_outbox (position);

INSERT INTO event_outbox (owner_id, sequence, event_id, position, created_at)
SELECT owner_id, sequence, id, position, created_at FROM events
WHERE published_at IS NULL AND quarantined_at IS NULL;

DROP INDEX events_unpublished;
DROP INDEX events_unpublished_owner;
ALTER TABLE events DROP COLUMN published_at;
