//! The HTTP plumbing both simulators share: binding a loopback port, serving an actix app on the
//! caller's tokio runtime, stopping it, and the `/__sim` control scope's common parts (the health
//! route and the `{"error", "message"}` failure body, bad JSON included).
//!
//! Each simulator only says what it serves (its API routes and its control routes) and what state
//! its handlers share; how a simulator starts, stops and answers a malformed control request is
//! the same for both, so it is written once here.

use std::io;
use std::net::{SocketAddr, TcpListener};

use actix_web::dev::ServerHandle;
use actix_web::error::InternalError;
use actix_web::http::StatusCode;
use actix_web::{App, HttpResponse, HttpServer, web};
use serde_json::json;
use tokio::task::JoinHandle;

/// Where the control API is mounted, on both simulators.
pub(crate) const CONTROL_SCOPE: &str = "/__sim";

/// A bound socket, not yet served: its address is known, so a simulator can build the URLs its
/// state needs before it starts serving.
pub(crate) struct Bound {
    listener: TcpListener,
    addr: SocketAddr,
}

impl Bound {
    pub(crate) fn bind(addr: SocketAddr) -> io::Result<Self> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        Ok(Self { listener, addr })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves on the current tokio runtime: `/__sim` gets the health route, the JSON error handler
    /// and `control`'s routes; everything else is `api`'s. Handlers reach `shared` as
    /// `web::Data<S>`. The socket is listening when this returns.
    pub(crate) fn serve<S>(
        self,
        workers: usize,
        shared: S,
        control: fn(&mut web::ServiceConfig),
        api: fn(&mut web::ServiceConfig),
    ) -> io::Result<Server>
    where
        S: Send + Sync + 'static,
    {
        let data = web::Data::new(shared);
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .service(
                    web::scope(CONTROL_SCOPE)
                        .configure(control_common)
                        .configure(control),
                )
                .configure(api)
        })
        .workers(workers.max(1))
        // Tests own the process's signals; a simulator must not stop (or stop them) on Ctrl-C.
        .disable_signals()
        // Stalled requests must not hold up `stop()`.
        .shutdown_timeout(0)
        .listen(self.listener)?
        .run();
        let handle = server.handle();
        let task = tokio::spawn(server);
        Ok(Server {
            addr: self.addr,
            handle,
            task: Some(task),
        })
    }
}

/// A running HTTP server. Dropping it stops it (without waiting); [`Server::stop`] waits.
pub(crate) struct Server {
    addr: SocketAddr,
    handle: ServerHandle,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl Server {
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The control API base, e.g. `http://127.0.0.1:40123/__sim`.
    pub(crate) fn control_url(&self) -> String {
        format!("http://{}{CONTROL_SCOPE}", self.addr)
    }

    /// Stops the server and waits until it has stopped.
    pub(crate) async fn stop(&mut self) {
        self.handle.stop(false).await;
        if let Some(task) = self.task.take() {
            // The server's own result is of no interest once it is asked to stop.
            let _ = task.await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.task.is_some() {
            // `stop` sends its command at once; the returned future only waits for completion,
            // which a synchronous `drop` cannot do.
            drop(self.handle.stop(false));
        }
    }
}

/// A control API failure: `{"error": code, "message"}` with `status`.
pub(crate) fn control_error(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "error": code, "message": message }))
}

/// What every control API has: `GET /health`, and malformed JSON bodies answered as a 400
/// `bad_request` in the control API's own error shape.
fn control_common(cfg: &mut web::ServiceConfig) {
    let json_config = web::JsonConfig::default().error_handler(|error, _| {
        let message = error.to_string();
        let response = control_error(StatusCode::BAD_REQUEST, "bad_request", &message);
        InternalError::from_response(error, response).into()
    });
    cfg.app_data(json_config).route(
        "/health",
        web::get().to(|| async { HttpResponse::Ok().json(json!({ "ok": true })) }),
    );
}
