//! H5 portal and admin console pages.
#![forbid(unsafe_code)]
