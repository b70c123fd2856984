-- 办事大厅预约, version 1: time slots (generated 14 days ahead), bookings, and the first answer
-- to each idempotency key. No personal data: a citizen is the gateway's pseudonym for this
-- service (`subject`). The same SQL serves SQLite and PostgreSQL.
CREATE TABLE hb_time_slots (
    id          TEXT    NOT NULL PRIMARY KEY,
    hall_id     TEXT    NOT NULL,
    day         TEXT    NOT NULL,
    starts_at   BIGINT  NOT NULL,
    ends_at     BIGINT  NOT NULL,
    capacity    BIGINT  NOT NULL,
    booked      BIGINT  NOT NULL DEFAULT 0,
    CHECK (booked >= 0 AND booked <= capacity)
);
CREATE INDEX hb_time_slots_hall_day ON hb_time_slots (hall_id, day, starts_at);

CREATE TABLE hb_bookings (
    id            TEXT    NOT NULL PRIMARY KEY,
    subject       TEXT    NOT NULL,
    slot_id       TEXT    NOT NULL REFERENCES hb_time_slots (id),
    hall_id       TEXT    NOT NULL,
    day           TEXT    NOT NULL,
    service       TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    cancelled_at  BIGINT
);
-- One active booking per citizen per hall per day, held by the database itself so that two
-- racing requests cannot both pass.
CREATE UNIQUE INDEX hb_bookings_one_active ON hb_bookings (subject, hall_id, day)
    WHERE status = 'active';
CREATE INDEX hb_bookings_subject ON hb_bookings (subject, created_at);

CREATE TABLE hb_idempotency_keys (
    subject     TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    request     TEXT    NOT NULL,
    answer      TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    PRIMARY KEY (subject, key)
);
CREATE INDEX hb_idempotency_keys_created ON hb_idempotency_keys (created_at);
