//! [`Market`]: what the domain needs from the outside world (the database, Xano, the sealing keys,
//! the [`Postman`], the [`Courier`]), bundled once at start-up, and the
//! workers' tuning it carries. It sits on a low floor: every module that talks to Xano or reads a
//! token takes it, and it imports nothing of the domain.
//!
//! It holds two pools: [`Market::db`], the primary, for everything that writes or decides, and
//! [`Market::read_db`], a streaming replica's (`DATABASE_READ_URL`) for the reads that tolerate
//! lag (docs/ARCHITECTURE.md, "Reads on a replica"). Without a replica both are the primary.
//!
//! It also names the Xano credential this instance uses ([`Credential`]): Xano refuses credentials
//! one at a time (an instance left running with an old token during a rotation), so their health is
//! kept per credential, and the name is computed once here, where both the token and the key that
//! fingerprints it are at hand.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::PgPool;
use uuid::Uuid;

use crate::courier::Courier;
use crate::envelope::{Envelope, LOOKUP_KEY_BYTES};
use crate::postman::Postman;

/// The kind of value credential fingerprints are made for (apart from install tokens').
const CREDENTIAL_KIND: &str = "xano_access_token";

/// The database, the Xano client, the keys tokens are sealed with, and the workers' tuning. Cheap
/// to clone (all are handles).
#[derive(Clone, Debug)]
pub struct Market {
    /// The primary: every write, and every read that decides something.
    pub db: PgPool,
    /// A read replica's pool for reads that tolerate lag; `None`: they go to `db` too.
    read_db: Option<PgPool>,
    pub xano: master_api::Client,
    /// Seals and opens install tokens (`keys::open` makes it for this database).
    pub envelope: Arc<Envelope>,
    pub jobs: JobsConfig,
    /// The name of `xano`'s access token; private, so it always matches the client it was made of.
    credential: Credential,
    /// How buyers' email goes out; `None` when mail is disabled (messages are marked `not_sent`).
    postman: Option<Postman>,
    /// How webhooks leave, and the SSRF guard new endpoint URLs are checked with; `None`: the
    /// strict production guard checks URLs, and nothing is delivered from this process.
    courier: Option<Courier>,
    /// Clients for sellers' own Xano accounts, built once per credential (`accounts`).
    account_clients: AccountClients,
}

/// Clients for other Xano accounts by owner id, each with the fingerprint of the credential it was
/// built with: a client whose credential was replaced is built again.
#[derive(Clone, Debug, Default)]
pub struct AccountClients(Arc<Mutex<HashMap<Uuid, BuiltClient>>>);

/// A client and the fingerprint of the credential it was built with.
type BuiltClient = (Vec<u8>, master_api::Client);

impl AccountClients {
    /// The client built for `owner` with the credential `fingerprint`, if there is one.
    pub fn get(&self, owner: Uuid, fingerprint: &[u8]) -> Option<master_api::Client> {
        let clients = self.0.lock().ok()?;
        clients
            .get(&owner)
            .filter(|(built_with, _)| built_with.as_slice() == fingerprint)
            .map(|(_, client)| client.clone())
    }

    /// Keeps `client`, built for `owner` with the credential `fingerprint`.
    pub fn put(&self, owner: Uuid, fingerprint: Vec<u8>, client: master_api::Client) {
        if let Ok(mut clients) = self.0.lock() {
            clients.insert(owner, (fingerprint, client));
        }
    }
}

impl Market {
    pub fn new(
        db: PgPool,
        xano: master_api::Client,
        envelope: Arc<Envelope>,
        jobs: JobsConfig,
    ) -> Self {
        let credential = Credential::of(&xano, &envelope);
        Self {
            db,
            read_db: None,
            xano,
            envelope,
            jobs,
            credential,
            postman: None,
            courier: None,
            account_clients: AccountClients::default(),
        }
    }

    /// Sends the reads that tolerate lag to `pool` (a streaming replica's).
    #[must_use]
    pub fn with_read_db(mut self, pool: PgPool) -> Self {
        self.read_db = Some(pool);
        self
    }

    /// The pool for reads that tolerate lag: the replica's when there is one, else the primary's.
    /// Nothing read here may decide a sale, a payment or access: a replica may be seconds behind.
    pub fn read_db(&self) -> &PgPool {
        self.read_db.as_ref().unwrap_or(&self.db)
    }

    /// Whether lag-tolerant reads go to a pool of their own (`/readyz` checks it too).
    pub fn has_read_replica(&self) -> bool {
        self.read_db.is_some()
    }

    /// Sends buyers' email through `postman`.
    #[must_use]
    pub fn with_postman(mut self, postman: Postman) -> Self {
        self.postman = Some(postman);
        self
    }

    /// Sends webhooks through `courier` (and checks endpoint URLs with its guard).
    #[must_use]
    pub fn with_courier(mut self, courier: Courier) -> Self {
        self.courier = Some(courier);
        self
    }

    /// How webhooks leave, if this process sends them.
    pub fn courier(&self) -> Option<&Courier> {
        self.courier.as_ref()
    }

    /// How buyers' email goes out, if it does.
    pub fn postman(&self) -> Option<&Postman> {
        self.postman.as_ref()
    }

    /// The Xano credential this instance uses.
    pub fn credential(&self) -> &Credential {
        &self.credential
    }

    /// Clients for sellers' own Xano accounts (`accounts`).
    pub fn account_clients(&self) -> &AccountClients {
        &self.account_clients
    }
}

/// A Xano access token as the database, the logs and the metrics name it: its fingerprint under the
/// database's lookup key (HMAC-SHA-256), so every instance using the same token names it the same
/// and nobody without the key can tell which token it is. It never holds the token.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    fingerprint: [u8; LOOKUP_KEY_BYTES],
}

impl Credential {
    /// The credential `xano` uses, fingerprinted with `envelope`'s lookup key.
    pub fn of(xano: &master_api::Client, envelope: &Envelope) -> Self {
        Self {
            fingerprint: xano
                .access_token_digest(|token| envelope.fingerprint(CREDENTIAL_KIND, token)),
        }
    }

    /// The key of its row in `xano_credential`.
    pub fn fingerprint(&self) -> &[u8] {
        &self.fingerprint
    }

    /// The first 8 hex digits of the fingerprint: what people see (and what `health` shows of a
    /// `xano_credential` row).
    pub fn display_id(&self) -> String {
        let [a, b, c, d, ..] = self.fingerprint;
        format!("{a:02x}{b:02x}{c:02x}{d:02x}")
    }
}

impl fmt::Display for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display_id())
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credential({})", self.display_id())
    }
}

/// Tuning of the workers; the defaults suit production, tests shorten them.
#[derive(Clone, Debug)]
pub struct JobsConfig {
    /// Jobs one instance runs at the same time.
    pub workers: usize,
    /// How often an idle instance looks for due jobs.
    pub poll_interval: Duration,
    /// How long a claim lasts without a heartbeat. Must exceed the longest single Xano call
    /// (client timeout × attempts), or a slow call loses its lease to another worker.
    pub lease: Duration,
    /// Backoff between retries: `retry_base × 2^attempt`, capped, with full jitter.
    pub retry_base: Duration,
    pub retry_cap: Duration,
    /// How often each listing is reconciled with Xano.
    pub reconcile_interval: Duration,
    /// The share (0..1) of a listing's live tokens that may vanish from Xano's list in one
    /// reconciliation before the pass holds back and waits for a second one to confirm.
    pub missing_guard: f64,
    /// How often a refused credential is tried again.
    pub probe_interval: Duration,
    /// How often the housekeeping sweep runs (pools below low water, missing schedules, old jobs).
    pub sweep_interval: Duration,
    /// How long finished jobs are kept for operators.
    pub keep_finished: Duration,
    /// A job that fails this many times in a row dies (`dead`): an operator looks at it.
    pub max_attempts: i32,
    /// A job still failing this long after it was queued dies, whatever its attempt count.
    pub max_age: Duration,
    /// How long after a job died the sweep queues the same work again, if it is still owed (a
    /// refill, a reconciliation, a token for a paid purchase, a token to delete): one series of
    /// attempts per interval, never a loop.
    pub revive_after: Duration,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            workers: 4,
            poll_interval: Duration::from_millis(250),
            lease: Duration::from_secs(180),
            retry_base: Duration::from_secs(1),
            retry_cap: Duration::from_secs(300),
            reconcile_interval: Duration::from_secs(15 * 60),
            missing_guard: 0.2,
            probe_interval: Duration::from_secs(30),
            sweep_interval: Duration::from_secs(5),
            keep_finished: Duration::from_secs(7 * 24 * 3600),
            max_attempts: 12,
            max_age: Duration::from_secs(24 * 3600),
            revive_after: Duration::from_secs(3600),
        }
    }
}
