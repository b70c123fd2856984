-- Versioned key/value documents: route rules, limits, settings. Every change is kept in history.
CREATE TABLE tb_kv (
    namespace  TEXT   NOT NULL,
    key        TEXT   NOT NULL,
    version    BIGINT NOT NULL,
    value      TEXT   NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (namespace, key)
);

CREATE TABLE tb_kv_history (
    namespace  TEXT   NOT NULL,
    key        TEXT   NOT NULL,
    version    BIGINT NOT NULL,
    value      TEXT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (namespace, key, version)
);
