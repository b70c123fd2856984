//! What the identity service does for a caller, as methods of [`crate::Identity`]: each flow
//! uses the providers (`face`, `realname`, `login`) and the store; the providers know nothing
//! of the service.

mod face;
mod login;
mod realname;
