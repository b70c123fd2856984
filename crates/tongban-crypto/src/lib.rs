//! National (SM) cryptography for Tongban: primitives, keyring, PII vault and digital envelope.
