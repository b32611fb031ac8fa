//! One method per Master API endpoint, grouped by resource. Each builds a
//! [`Request`](crate::transport::Request); retries, rate limiting and tracing happen in
//! [`transport`](crate::transport).

mod account;
mod snippets;
mod tokens;
