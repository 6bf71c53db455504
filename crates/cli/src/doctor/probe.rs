//! The I/O half of `portcullis doctor`: fetch the facts that `portcullis_core::doctor` judges.
//!
//! Discovery and the JWKS go through the gateway's own IdP client (`IdpHttp`: same trust store,
//! timeouts, body caps), so doctor sees what `serve` would see. A second client with the same
//! trust adds what `IdpHttp` does not expose: the TLS peer certificate, response headers
//! (`Date`) and the `Location` of the probe authorization request.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use portcullis_core::config::DatabaseUrl;
use portcullis_core::doctor::{
    DatabaseFacts, FailureKind, FetchFailure, Fetched, ProbeAnswer, TlsFacts, UpstreamFacts,
    not_after, redact_database_url,
};
use portcullis_gateway::idp::{IdpError, IdpHttp};
use sqlx::{Connection, Row};

/// Largest error page read from the authorization endpoint.
const CAP_PROBE: usize = 64 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const TIMEOUT: Duration = Duration::from_secs(10);

/// Why the probe client could not be built (a custom CA reqwest refuses).
#[derive(Debug, thiserror::Error)]
#[error("custom CA (OIDC_SIGNER_PEM_URL): {0}")]
pub struct ProbeClientError(String);

/// Classify a transport error by the words of its cause chain (reqwest hides the kind once it
/// is a string, and `IdpError` carries strings).
fn classify(reason: &str) -> FailureKind {
    let r = reason.to_ascii_lowercase();
    if r.contains("timed out") || r.contains("timeout") {
        FailureKind::Timeout
    } else if r.contains("certificate") || r.contains("tls") || r.contains("handshake") {
        FailureKind::Tls
    } else {
        FailureKind::Unreachable
    }
}

fn from_idp_error(e: IdpError) -> FetchFailure {
    match e {
        // The finding names the URL; keep only the cause.
        IdpError::Unreachable { reason, .. } => FetchFailure {
            kind: classify(&reason),
            reason: without_url(&reason),
        },
        IdpError::TooLarge { cap, .. } => FetchFailure {
            kind: FailureKind::TooLarge,
            reason: format!("answered more than {cap} bytes"),
        },
        other => FetchFailure {
            kind: FailureKind::Other,
            reason: other.to_string(),
        },
    }
}

/// reqwest's "error sending request for url (…): " repeats the URL the finding already shows.
fn without_url(reason: &str) -> String {
    match reason.strip_prefix("error sending request for url (") {
        Some(rest) => rest
            .split_once("): ")
            .map(|(_, cause)| cause.to_owned())
            .unwrap_or_else(|| reason.to_owned()),
        None => reason.to_owned(),
    }
}

/// GET through the gateway's IdP client (doctor records no metrics).
pub async fn fetch(http: &IdpHttp, url: &url::Url, cap: usize) -> Result<Fetched, FetchFailure> {
    http.get_uncounted(url, None, cap)
        .await
        .map(|r| Fetched {
            status: r.status,
            content_type: r.content_type,
            body: r.body.to_vec(),
        })
        .map_err(from_idp_error)
}

/// reqwest's Display hides the cause (e.g. the TLS error); operators need it.
/// reqwest's top-level "error sending request for url (…)" is dropped: the finding names the URL.
fn chain(e: &dyn std::error::Error) -> String {
    let top = e.to_string();
    let mut s = if top.starts_with("error sending request for url (") {
        String::new()
    } else {
        top
    };
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            if !s.is_empty() {
                s.push_str(": ");
            }
            s.push_str(&t);
        }
        cur = c.source();
    }
    if s.is_empty() { e.to_string() } else { s }
}

/// The probe client: the trust of `IdpHttp::new` (system roots plus the custom CA), no
/// redirects, same timeouts, and the peer certificate kept.
pub fn probe_client(ca_pem: Option<&str>) -> Result<reqwest::Client, ProbeClientError> {
    let mut b = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(TIMEOUT)
        .tls_info(true)
        .user_agent(concat!("portcullis-doctor/", env!("CARGO_PKG_VERSION")));
    if let Some(pem) = ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
            .map_err(|e| ProbeClientError(e.to_string()))?;
        b = b.tls_certs_merge(certs);
    }
    b.build().map_err(|e| ProbeClientError(chain(&e)))
}

/// What one GET with the probe client saw.
pub struct Probed {
    pub tls: TlsFacts,
    /// The IdP's `Date` header, Unix seconds.
    pub date: Option<i64>,
}

/// TLS facts and the `Date` header from one GET of `url` (the discovery URL, or the
/// authorization endpoint with manual configuration).
pub async fn tls_and_date(client: &reqwest::Client, url: &url::Url, custom_ca: bool) -> Probed {
    let resp = client.get(url.clone()).send().await;
    let resp = match resp {
        Ok(r) => r,
        Err(e) => {
            let reason = chain(&e);
            let tls = if url.scheme() != "https" {
                TlsFacts::NotHttps
            } else if classify(&reason) == FailureKind::Tls {
                TlsFacts::Failed { reason, custom_ca }
            } else {
                TlsFacts::Unreachable
            };
            return Probed { tls, date: None };
        }
    };
    let date = resp
        .headers()
        .get(reqwest::header::DATE)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| httpdate::parse_http_date(s).ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_secs()).ok());
    let tls = if url.scheme() != "https" {
        TlsFacts::NotHttps
    } else {
        let cert = resp
            .extensions()
            .get::<reqwest::tls::TlsInfo>()
            .and_then(|i| i.peer_certificate())
            .and_then(|der| not_after(der).ok());
        TlsFacts::Verified {
            not_after: cert,
            custom_ca,
        }
    };
    Probed { tls, date }
}

/// The probe authorization request, not followed; the body read under [`CAP_PROBE`].
pub async fn authorize(
    client: &reqwest::Client,
    url: &url::Url,
) -> Result<ProbeAnswer, FetchFailure> {
    let sent = client
        .get(url.clone())
        .header("accept", "text/html")
        .send()
        .await;
    let mut resp = sent.map_err(|e| {
        let reason = chain(&e);
        FetchFailure {
            kind: classify(&reason),
            reason,
        }
    })?;
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|l| url.join(l).ok())
        .map(|u| u.to_string());
    let mut body = Vec::new();
    // Only the first bytes of an error page matter; stop reading there.
    while let Ok(Some(chunk)) = resp.chunk().await {
        let room = CAP_PROBE.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= CAP_PROBE {
            break;
        }
    }
    Ok(ProbeAnswer {
        status,
        location,
        body,
    })
}

/// GET the upstream (no redirects, short timeouts): any HTTP answer means it is up. An https
/// upstream is reached as the gateway reaches it: with its CA bundle (replacing the system
/// roots) and its client certificate, so a TLS mistake shows here too.
pub async fn upstream(url: &url::Url, tls: &portcullis_core::config::UpstreamTls) -> UpstreamFacts {
    let mut b = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(TIMEOUT);
    let tls_setup = (|| -> Result<reqwest::ClientBuilder, reqwest::Error> {
        if let Some(pem) = &tls.ca_pem {
            b = b.tls_certs_only(reqwest::Certificate::from_pem_bundle(pem.as_bytes())?);
        }
        if let Some(id) = &tls.client {
            let pem = format!("{}\n{}", id.cert_pem, id.key_pem.expose());
            b = b.identity(reqwest::Identity::from_pem(pem.as_bytes())?);
        }
        Ok(b)
    })();
    let client = match tls_setup.and_then(|b| b.build()) {
        Ok(c) => c,
        Err(e) => {
            return UpstreamFacts::Failed(FetchFailure {
                kind: FailureKind::Other,
                reason: chain(&e),
            });
        }
    };
    match client.get(url.clone()).send().await {
        Ok(r) => UpstreamFacts::Answered {
            status: r.status().as_u16(),
        },
        Err(e) => {
            let reason = chain(&e);
            UpstreamFacts::Failed(FetchFailure {
                kind: classify(&reason),
                reason,
            })
        }
    }
}

/// This binary's migrations (the store's files, embedded at build time), to compare with the
/// database's history. Doctor reads `_sqlx_migrations`; it never runs a migration.
static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../store/migrations/sqlite");
static PG_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../store/migrations/postgres");

/// Open the database read-only (SQLite: `mode=ro`, never created; PostgreSQL: one connection,
/// only SELECTs) and compare its migration history with this binary's.
pub async fn database(db: &DatabaseUrl) -> DatabaseFacts {
    match db {
        DatabaseUrl::Sqlite(path) => sqlite(path).await,
        DatabaseUrl::Postgres(url) => postgres(url.expose()).await,
    }
}

async fn sqlite(path: &str) -> DatabaseFacts {
    let label = format!("SQLite {path}");
    if path != ":memory:" && !Path::new(path).exists() {
        return DatabaseFacts::SqliteMissing { label };
    }
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .create_if_missing(false);
    let mut conn = match sqlx::SqliteConnection::connect_with(&opts).await {
        Ok(c) => c,
        Err(e) => {
            return DatabaseFacts::Unreachable {
                label,
                reason: chain(&e),
            };
        }
    };
    let has = sqlx::query(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
    )
    .fetch_one(&mut conn)
    .await
    .and_then(|r| r.try_get::<i64, _>(0));
    let facts = match has {
        Err(e) => DatabaseFacts::Unreachable {
            label,
            reason: chain(&e),
        },
        Ok(0) => fresh(label),
        Ok(_) => match sqlx::query_as::<_, (i64, bool, Vec<u8>)>(HISTORY)
            .fetch_all(&mut conn)
            .await
        {
            Ok(rows) => compare(rows, &SQLITE_MIGRATIONS, label),
            Err(e) => DatabaseFacts::Unreachable {
                label,
                reason: chain(&e),
            },
        },
    };
    let _ = conn.close().await;
    facts
}

async fn postgres(url: &str) -> DatabaseFacts {
    let label = format!("PostgreSQL {}", redact_database_url(url));
    // The password never reaches a message, even if a driver error quoted the URL.
    let password = url::Url::parse(url)
        .ok()
        .and_then(|u| u.password().map(str::to_owned))
        .filter(|p| !p.is_empty());
    let scrub = |s: String| match &password {
        Some(p) => s.replace(p.as_str(), "***"),
        None => s,
    };
    let opts = match sqlx::postgres::PgConnectOptions::from_str(url) {
        Ok(o) => o,
        Err(e) => {
            return DatabaseFacts::Unreachable {
                label,
                reason: scrub(chain(&e)),
            };
        }
    };
    let conn = tokio::time::timeout(CONNECT_TIMEOUT, sqlx::PgConnection::connect_with(&opts)).await;
    let mut conn = match conn {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            return DatabaseFacts::Unreachable {
                label,
                reason: scrub(chain(&e)),
            };
        }
        Err(_) => {
            return DatabaseFacts::Unreachable {
                label,
                reason: format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
            };
        }
    };
    let has = sqlx::query("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(&mut conn)
        .await
        .and_then(|r| r.try_get::<bool, _>(0));
    let facts = match has {
        Err(e) => DatabaseFacts::Unreachable {
            label,
            reason: scrub(chain(&e)),
        },
        Ok(false) => fresh(label),
        Ok(true) => match sqlx::query_as::<_, (i64, bool, Vec<u8>)>(HISTORY)
            .fetch_all(&mut conn)
            .await
        {
            Ok(rows) => compare(rows, &PG_MIGRATIONS, label),
            Err(e) => DatabaseFacts::Unreachable {
                label,
                reason: scrub(chain(&e)),
            },
        },
    };
    let _ = conn.close().await;
    facts
}

fn fresh(label: String) -> DatabaseFacts {
    DatabaseFacts::Reached {
        label,
        fresh: true,
        pending: Vec::new(),
        failed: Vec::new(),
        unknown: Vec::new(),
        modified: Vec::new(),
    }
}

/// `(version, success, checksum)` of each applied migration.
type Applied = Vec<(i64, bool, Vec<u8>)>;

const HISTORY: &str = "SELECT version, success, checksum FROM _sqlx_migrations ORDER BY version";

/// Compare the database's history with this binary's migrations.
fn compare(applied: Applied, migrator: &sqlx::migrate::Migrator, label: String) -> DatabaseFacts {
    let known: Vec<&sqlx::migrate::Migration> = migrator
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .collect();
    let mut facts = fresh(label);
    if let DatabaseFacts::Reached {
        fresh,
        pending,
        failed,
        unknown,
        modified,
        ..
    } = &mut facts
    {
        *fresh = false;
        for (version, success, checksum) in &applied {
            match known.iter().find(|m| m.version == *version) {
                None => unknown.push(*version),
                Some(_) if !success => failed.push(*version),
                Some(m) if m.checksum.as_ref() != checksum.as_slice() => modified.push(*version),
                Some(_) => {}
            }
        }
        pending.extend(
            known
                .iter()
                .map(|m| m.version)
                .filter(|v| !applied.iter().any(|(a, _, _)| a == v)),
        );
    }
    facts
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    fn history(skip: usize) -> Applied {
        SQLITE_MIGRATIONS
            .iter()
            .skip(skip)
            .map(|m| (m.version, true, m.checksum.to_vec()))
            .collect()
    }

    fn reached(f: DatabaseFacts) -> (Vec<i64>, Vec<i64>, Vec<i64>, Vec<i64>) {
        match f {
            DatabaseFacts::Reached {
                pending,
                failed,
                unknown,
                modified,
                fresh: false,
                ..
            } => (pending, failed, unknown, modified),
            other => panic!("{other:?}"),
        }
    }

    /// The migration history against this binary's: pending, failed, unknown, modified.
    #[test]
    fn migration_history_is_compared_not_applied() {
        let all = history(0);
        assert!(all.len() >= 10);
        let none: Vec<i64> = Vec::new();
        assert_eq!(
            reached(compare(all.clone(), &SQLITE_MIGRATIONS, "db".into())),
            (none.clone(), none.clone(), none.clone(), none.clone())
        );
        let mut partial = all.clone();
        let last = partial.pop().unwrap();
        assert_eq!(
            reached(compare(partial, &SQLITE_MIGRATIONS, "db".into())).0,
            [last.0]
        );
        let mut odd = all.clone();
        odd[0].1 = false;
        odd[1].2 = vec![0; 48];
        odd.push((99_999, true, vec![]));
        let (p, f, u, m) = reached(compare(odd, &SQLITE_MIGRATIONS, "db".into()));
        assert_eq!(
            (p, f, u, m),
            (none, vec![all[0].0], vec![99_999], vec![all[1].0])
        );
        assert_eq!(history(1).len(), all.len() - 1);
    }

    #[test]
    fn causes_without_the_repeated_url() {
        assert_eq!(
            without_url("error sending request for url (https://idp/x): tcp connect error"),
            "tcp connect error"
        );
        assert_eq!(without_url("other"), "other");
        assert_eq!(classify("operation timed out"), FailureKind::Timeout);
        assert_eq!(
            classify("invalid peer certificate: UnknownIssuer"),
            FailureKind::Tls
        );
        assert_eq!(classify("Connection refused"), FailureKind::Unreachable);
    }
}
