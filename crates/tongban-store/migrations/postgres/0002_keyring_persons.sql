-- Key hierarchy (clause 6.3.2.3 b, c): policies and wrapped versions of KEKs and DEKs. Key
-- material is stored only wrapped by its parent; the root key is never stored whole.
CREATE TABLE tb_key_policies (
    key_id                 TEXT    NOT NULL PRIMARY KEY,
    kind                   TEXT    NOT NULL,
    parent                 TEXT    NOT NULL,
    current_version        BIGINT    NOT NULL,
    min_decryption_version BIGINT    NOT NULL
);

CREATE TABLE tb_key_versions (
    key_id             TEXT   NOT NULL,
    version            BIGINT   NOT NULL,
    wrapped_by         TEXT   NOT NULL,
    wrapped_by_version BIGINT   NOT NULL,
    wrapped            TEXT   NOT NULL,
    kcv                TEXT   NOT NULL,
    created_at         BIGINT   NOT NULL,
    PRIMARY KEY (key_id, version)
);

-- Hash-chained audit of every key operation (never key material).
CREATE TABLE tb_key_audit (
    seq        BIGINT   NOT NULL PRIMARY KEY,
    actor      TEXT   NOT NULL,
    at_ms      BIGINT   NOT NULL,
    operation  TEXT   NOT NULL,
    key_id     TEXT   NOT NULL,
    version    BIGINT   NOT NULL,
    prev_hash  TEXT   NOT NULL,
    hash       TEXT   NOT NULL
);

-- Root-key components kept in the database (one of the places components live).
CREATE TABLE tb_key_components (
    name       TEXT   NOT NULL PRIMARY KEY,
    component  TEXT   NOT NULL,
    created_at BIGINT   NOT NULL
);

-- Server SM2 key pairs of the digital envelope; the private key is vault-encrypted.
CREATE TABLE tb_envelope_keys (
    kid          TEXT   NOT NULL PRIMARY KEY,
    public_key   TEXT   NOT NULL,
    private_enc  TEXT   NOT NULL,
    is_current   BIGINT   NOT NULL,
    created_at   BIGINT   NOT NULL
);

-- Citizens' personal information: every field vault-encrypted (SM4-GCM bound to table, column,
-- row), looked up by blind index (HMAC-SM3), never stored in plaintext.
CREATE TABLE tb_persons (
    id              TEXT   NOT NULL PRIMARY KEY,
    name_enc        TEXT   NOT NULL,
    id_number_enc   TEXT   NOT NULL,
    id_number_bidx  TEXT   NOT NULL UNIQUE,
    phone_enc       TEXT,
    phone_bidx      TEXT,
    created_at      BIGINT   NOT NULL,
    updated_at      BIGINT   NOT NULL
);
CREATE INDEX tb_persons_phone_bidx ON tb_persons (phone_bidx);
