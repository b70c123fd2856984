-- The audit log of contribution-record queries sent to the province. `person_index` is the
-- blind index (HMAC-SM3, Base64 URL-safe) of the queried ID number under the service's index
-- key of `index_key_version`: never the number, never the name.
CREATE TABLE si_query_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms BIGINT NOT NULL,
    subject TEXT,
    request_id TEXT,
    own INTEGER NOT NULL,
    person_index TEXT NOT NULL,
    index_key_version BIGINT NOT NULL,
    period_from TEXT NOT NULL,
    period_to TEXT NOT NULL,
    code BIGINT NOT NULL,
    records BIGINT NOT NULL
);
CREATE INDEX si_query_log_person ON si_query_log (person_index, at_ms);
CREATE INDEX si_query_log_subject ON si_query_log (subject, at_ms);
