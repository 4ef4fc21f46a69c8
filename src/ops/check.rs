//! `attini-runner healthcheck [--addr ADDR]`: asks a runner's `/livez` and exits 0 when it
//! answers 200, else 1 with the reason on stderr; for the ECS container health check, so the
//! image needs no curl. The address is `--addr`, else `ATTINI_OPS_ADDR`, else
//! `127.0.0.1:9464`; a listener on `0.0.0.0` or `[::]` is asked on loopback. Each attempt
//! gives up after [`CHECK_TIMEOUT`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// Longest the check waits for an answer.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// Why the runner is not healthy (or cannot be asked).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// No address to ask.
    #[error("the ops server is off (ATTINI_OPS_ADDR=off): nothing to check; pass --addr")]
    Off,
    /// Port 0 cannot be asked.
    #[error(
        "ATTINI_OPS_ADDR has port 0 (any free port): pass the port the runner logged with --addr"
    )]
    AnyPort,
    /// No answer.
    #[error("no answer from {url}: {detail}")]
    Unreachable {
        /// What was asked.
        url: String,
        /// Why.
        detail: String,
    },
    /// Not alive.
    #[error("{url} answered {status}: {body}")]
    Unhealthy {
        /// What was asked.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The answer.
        body: String,
    },
}

/// The address to ask for a listener on `addr`.
pub fn target(addr: Option<SocketAddr>) -> Result<SocketAddr, CheckError> {
    let mut addr = addr.ok_or(CheckError::Off)?;
    if addr.port() == 0 {
        return Err(CheckError::AnyPort);
    }
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => addr.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        IpAddr::V6(ip) if ip.is_unspecified() => addr.set_ip(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        _ => {}
    }
    Ok(addr)
}

/// Asks `/livez` at `addr`.
pub async fn livez(addr: SocketAddr) -> Result<(), CheckError> {
    let url = format!("http://{addr}/livez");
    let unreachable = |e: reqwest::Error| CheckError::Unreachable {
        url: url.clone(),
        detail: e.to_string(),
    };
    let client = reqwest::Client::builder()
        .timeout(CHECK_TIMEOUT)
        .no_proxy()
        .build()
        .map_err(unreachable)?;
    let response = client.get(&url).send().await.map_err(unreachable)?;
    let status = response.status().as_u16();
    if status == 200 {
        return Ok(());
    }
    let body = response.text().await.unwrap_or_default();
    Err(CheckError::Unhealthy { url, status, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_listener_is_asked_on_loopback() {
        let any: SocketAddr = "0.0.0.0:9464".parse().unwrap();
        assert_eq!(target(Some(any)).unwrap().to_string(), "127.0.0.1:9464");
        let v6: SocketAddr = "[::]:1".parse().unwrap();
        assert_eq!(target(Some(v6)).unwrap().to_string(), "[::1]:1");
        assert!(matches!(target(None), Err(CheckError::Off)));
        let zero: SocketAddr = "127.0.0.1:0".parse().unwrap();
        assert!(matches!(target(Some(zero)), Err(CheckError::AnyPort)));
        // A listener on one address is asked there.
        for one in ["10.0.0.5:9464", "[fd00::5]:9464"] {
            let addr: SocketAddr = one.parse().unwrap();
            assert_eq!(target(Some(addr)).unwrap(), addr);
        }
    }

    /// A server on loopback whose `/livez` answers `status` with `body`.
    async fn server(status: u16, body: &'static str) -> SocketAddr {
        let code = axum::http::StatusCode::from_u16(status).unwrap();
        let app = axum::Router::new().route(
            "/livez",
            axum::routing::get(move || async move { (code, body) }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    }

    #[tokio::test]
    async fn livez_is_healthy_on_200_only_and_tells_the_answer_otherwise() {
        livez(server(200, "ok").await).await.unwrap();
        match livez(server(503, "broken: the queue is gone").await).await {
            Err(CheckError::Unhealthy { status, body, .. }) => {
                assert_eq!((status, body.as_str()), (503, "broken: the queue is gone"))
            }
            other => panic!("{other:?}"),
        }
    }
}
