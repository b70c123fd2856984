-- Identity (clauses 6.2.2.1 a, 6.3.1.2, 6.3.2.1): accounts, sessions, face attempts, consents.
-- No plaintext personal data and no token in the clear: tokens, device ids and platform subjects
-- are stored as SM3 hashes; collected personal fields are vault ciphertexts.
CREATE TABLE tb_id_users (
    id            TEXT    NOT NULL PRIMARY KEY,
    subject_hash  TEXT    NOT NULL UNIQUE,
    provider      TEXT    NOT NULL,
    level         TEXT    NOT NULL,
    person_id     TEXT,
    status        TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL
);
CREATE UNIQUE INDEX tb_id_users_person ON tb_id_users (person_id);

CREATE TABLE tb_id_sessions (
    id                 TEXT    NOT NULL PRIMARY KEY,
    user_id            TEXT    NOT NULL,
    device_hash        TEXT,
    acr                TEXT,
    amr                TEXT,
    access_hash        TEXT    NOT NULL UNIQUE,
    access_expires_at  BIGINT  NOT NULL,
    relogin_hash       TEXT    NOT NULL,
    face_verified_at   BIGINT ,
    created_at         BIGINT  NOT NULL,
    expires_at         BIGINT  NOT NULL,
    revoked_at         BIGINT ,
    revoked_reason     TEXT
);
CREATE INDEX tb_id_sessions_user ON tb_id_sessions (user_id);

-- Every face-verification attempt, kept as the audit trail and counted for the lockout.
CREATE TABLE tb_id_face_attempts (
    id          TEXT    NOT NULL PRIMARY KEY,
    user_id     TEXT    NOT NULL,
    session_id  TEXT    NOT NULL,
    provider    TEXT    NOT NULL,
    outcome     TEXT    NOT NULL,
    at          BIGINT  NOT NULL
);
CREATE INDEX tb_id_face_attempts_user ON tb_id_face_attempts (user_id, at);

CREATE TABLE tb_id_consents (
    id              TEXT    NOT NULL PRIMARY KEY,
    user_id         TEXT    NOT NULL,
    purpose         TEXT    NOT NULL,
    fields          TEXT    NOT NULL,
    notice_version  TEXT    NOT NULL,
    granted_at      BIGINT  NOT NULL,
    withdrawn_at    BIGINT 
);
CREATE INDEX tb_id_consents_user ON tb_id_consents (user_id);

-- Personal fields collected under a consented purpose, each vault-encrypted.
CREATE TABLE tb_id_user_fields (
    user_id       TEXT    NOT NULL,
    field         TEXT    NOT NULL,
    purpose       TEXT    NOT NULL,
    value_enc     TEXT    NOT NULL,
    collected_at  BIGINT  NOT NULL,
    PRIMARY KEY (user_id, field)
);

-- Pending external logins (OIDC state, nonce, PKCE verifier; ticket redirects): single use.
CREATE TABLE tb_id_login_states (
    state_hash    TEXT    NOT NULL PRIMARY KEY,
    provider      TEXT    NOT NULL,
    nonce         TEXT    NOT NULL,
    verifier_enc  TEXT    NOT NULL,
    device_hash   TEXT,
    created_at    BIGINT  NOT NULL,
    expires_at    BIGINT  NOT NULL
);
