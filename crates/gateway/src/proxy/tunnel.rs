//! Upgraded connections (WebSocket): bytes copied both ways until either side closes, or the
//! session that opened the tunnel is revoked or expires — a signed-out user must not keep a
//! live socket into the app.

use std::time::Duration;

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use crate::state::AppState;

/// How often a tunnel re-checks its session.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// The credential a tunnel belongs to: the session id (for browser sessions) and the expiry of
/// the credential that opened it.
#[derive(Clone, Debug)]
pub struct SessionWatch {
    pub sid: Option<String>,
    pub exp: i64,
    /// The API token id, for tunnels opened with one.
    pub token: Option<String>,
}

impl SessionWatch {
    pub fn of(a: &crate::auth::Authed) -> SessionWatch {
        SessionWatch {
            sid: a.session().map(|s| s.sid.clone()),
            exp: a.expires_at(),
            token: a.api_token().map(|t| t.id.clone()),
        }
    }

    /// Whether the tunnel must close now.
    pub fn ended(&self, state: &AppState) -> bool {
        self.sid
            .as_deref()
            .is_some_and(|sid| state.views.revoked.is_revoked(sid))
            || self
                .token
                .as_deref()
                .is_some_and(|id| state.views.tokens.is_revoked(id))
            || state.now() >= self.exp
    }
}

/// Run the tunnel between the client and the upstream; both sides are closed on return.
pub async fn run(state: AppState, client: OnUpgrade, upstream: OnUpgrade, watch: SessionWatch) {
    let (c, u) = match tokio::try_join!(client, upstream) {
        Ok(x) => x,
        Err(e) => {
            tracing::debug!(error = %e, "upgrade failed");
            return;
        }
    };
    let (mut c, mut u) = (TokioIo::new(c), TokioIo::new(u));
    let ended = async {
        let mut tick = tokio::time::interval(CHECK_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if watch.ended(&state) {
                return;
            }
        }
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut c, &mut u) => {}
        () = ended => {
            tracing::info!("session ended: closing its upgraded connection");
        }
    }
}
