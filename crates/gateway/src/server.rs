//! Start a gateway on a listener: open the store, build the state, start the IdP loader and
//! serve until shut down. Used by `portcullis serve`, `portcullis demo` and the tests.

use std::net::SocketAddr;

use portcullis_core::config::{Config, DatabaseUrl};
use portcullis_store::Store;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::app::router;
use crate::idp::loader;
use crate::state::{AppState, StartError};

/// A running gateway.
pub struct RunningGateway {
    pub addr: SocketAddr,
    pub state: AppState,
    shutdown: Option<oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    loader: tokio::task::JoinHandle<()>,
}

impl RunningGateway {
    /// Wait until the server stops (after [`RunningGateway::shutdown`] or a fatal error).
    pub async fn wait(mut self) -> std::io::Result<()> {
        let r = (&mut self.server).await.unwrap_or(Ok(()));
        self.loader.abort();
        r
    }

    /// Stop accepting connections and finish in-flight requests.
    pub fn shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for RunningGateway {
    fn drop(&mut self) {
        self.shutdown();
        self.loader.abort();
    }
}

/// Open the configured store.
pub async fn open_store(config: &Config) -> Result<Store, StartError> {
    match &config.database {
        DatabaseUrl::Sqlite(path) => {
            if let Some(dir) = std::path::Path::new(path)
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
            {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StartError::Store(portcullis_store::StoreError::Corrupt(format!(
                        "cannot create {}: {e}",
                        dir.display()
                    )))
                })?;
            }
            Ok(Store::open_sqlite(path).await?)
        }
    }
}

/// Start serving on `listener`. Returns once the server runs; the IdP loads in the background.
pub async fn start(config: Config, listener: TcpListener) -> Result<RunningGateway, StartError> {
    portcullis_core::jose::install_crypto_provider();
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    let ca = crate::state::load_ca(&config).await?;
    let store = open_store(&config).await?;
    let state = AppState::new(config, store, ca).await?;
    let addr = listener.local_addr().map_err(|e| StartError::Listen {
        addr: "?".into(),
        source: e,
    })?;
    let loader = loader::spawn(state.clone());
    let (tx, rx) = oneshot::channel::<()>();
    let app = router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await
    });
    tracing::info!(%addr, "Portcullis listening");
    Ok(RunningGateway {
        addr,
        state,
        shutdown: Some(tx),
        server,
        loader,
    })
}

/// Bind `config.listen` and start.
pub async fn bind_and_start(config: Config) -> Result<RunningGateway, StartError> {
    let addr = config.listen;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| StartError::Listen {
            addr: addr.to_string(),
            source: e,
        })?;
    start(config, listener).await
}
