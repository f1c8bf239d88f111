//! The HTTP endpoints: `/metrics` (default port 8090) and `/healthz` (default port 8080), as
//! Argo serves them. Both start before leader election, so a standby replica is live and
//! scrapeable too.

use std::{future::Future, net::SocketAddr};

use axum::{
    Router,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use tokio::net::TcpListener;

use crate::{
    error::{Error, Result},
    metrics::Metrics,
};

/// Binds `address`; fails with the server's name in the message.
pub async fn bind(server: &'static str, address: &str) -> Result<TcpListener> {
    TcpListener::bind(address)
        .await
        .map_err(|source| Error::Server {
            server,
            address: address.to_string(),
            source,
        })
}

/// The router of the metrics server.
pub fn metrics_router(metrics: Metrics) -> Router {
    Router::new()
        .route("/metrics", get(render_metrics))
        .with_state(metrics)
}

/// The router of the health server.
pub fn healthz_router() -> Router {
    Router::new().route("/healthz", get(healthz))
}

/// Serves `router` on `listener` until `shutdown` completes.
pub async fn serve(
    server: &'static str,
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let address = listener
        .local_addr()
        .map(|a: SocketAddr| a.to_string())
        .unwrap_or_default();
    tracing::info!(server, %address, "Serving HTTP.");
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|source| Error::Server {
            server,
            address,
            source,
        })
}

async fn render_metrics(State(metrics): State<Metrics>) -> Response {
    match metrics.render() {
        Ok(text) => ([(header::CONTENT_TYPE, Metrics::content_type())], text).into_response(),
        Err(err) => {
            tracing::warn!(
                error = &err as &dyn std::error::Error,
                "Rendering metrics failed."
            );
            (StatusCode::INTERNAL_SERVER_ERROR, err.to_string()).into_response()
        }
    }
}

async fn healthz() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        "ok",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get_path(addr: SocketAddr, path: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(
                format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
            )
            .await
            .unwrap();
        let mut out = String::new();
        stream.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn healthz_and_metrics_answer() {
        let metrics = Metrics::new("test").unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let health = bind("healthz", "127.0.0.1:0").await.unwrap();
        let metric = bind("metrics", "127.0.0.1:0").await.unwrap();
        let (ha, ma) = (health.local_addr().unwrap(), metric.local_addr().unwrap());
        let shutdown = async move {
            let _ = rx.await;
        };
        let shared = futures::FutureExt::shared(shutdown);
        let h = tokio::spawn(serve("healthz", health, healthz_router(), shared.clone()));
        let m = tokio::spawn(serve("metrics", metric, metrics_router(metrics), shared));
        let reply = get_path(ha, "/healthz").await;
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        assert!(reply.ends_with("ok"), "{reply}");
        let reply = get_path(ma, "/metrics").await;
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        assert!(reply.contains("text/plain; version=0.0.4"), "{reply}");
        assert!(
            reply.contains("argo_rollouts_controller_info{version=\"test\"} 1"),
            "{reply}"
        );
        let reply = get_path(ha, "/metrics").await;
        assert!(reply.starts_with("HTTP/1.1 404"), "{reply}");
        tx.send(()).unwrap();
        h.await.unwrap().unwrap();
        m.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_taken_port_is_a_clear_error() {
        let first = bind("metrics", "127.0.0.1:0").await.unwrap();
        let addr = first.local_addr().unwrap().to_string();
        let err = bind("metrics", &addr).await.unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("metrics server on {addr}:")),
            "{err}"
        );
    }
}
