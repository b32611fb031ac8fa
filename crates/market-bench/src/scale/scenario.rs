//! One scenario of the scale benchmark: its requests, sent round-robin. A leaf, named by both the
//! list of scenarios (`suite`) and the loop that runs them (`scenarios`).

use std::sync::Arc;

use crate::http;

pub const HEALTHZ_64: &str = "/healthz (c64)";
pub const CATALOG_64: &str = "catalog: first page (c64)";

/// A scenario: requests sent round-robin.
#[derive(Debug)]
pub struct Scenario {
    pub(super) name: String,
    pub(super) concurrency: usize,
    pub(super) requests: Vec<Arc<[u8]>>,
    pub(super) read_target: bool,
}

impl Scenario {
    /// `GET` each of `paths` with `headers`, round-robin; `None` when there is no path.
    pub fn get(
        name: &str,
        concurrency: usize,
        paths: &[String],
        headers: &[(&str, &str)],
        read_target: bool,
    ) -> Option<Self> {
        let requests = paths
            .iter()
            .map(|p| Arc::from(http::request("GET", p, headers, b"")))
            .collect();
        Self::of(name, concurrency, requests, read_target)
    }

    /// `GET` each path with its own `authorization` value, round-robin.
    pub fn each(
        name: &str,
        concurrency: usize,
        requests: &[(String, String)],
        read_target: bool,
    ) -> Option<Self> {
        let requests = requests
            .iter()
            .map(|(path, auth)| {
                Arc::from(http::request("GET", path, &[("authorization", auth)], b""))
            })
            .collect();
        Self::of(name, concurrency, requests, read_target)
    }

    fn of(
        name: &str,
        concurrency: usize,
        requests: Vec<Arc<[u8]>>,
        read_target: bool,
    ) -> Option<Self> {
        (!requests.is_empty()).then(|| Self {
            name: name.to_owned(),
            concurrency,
            requests,
            read_target,
        })
    }
}
