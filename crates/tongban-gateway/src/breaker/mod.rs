//! Circuit breakers on routes: the state machine and its rule are shared with services'
//! outgoing calls (`tongban_governance::breaker`); [`layer`] enforces them and serves
//! fallbacks.

pub mod layer;

pub use tongban_governance::breaker::*;
