//! Groups overage (Microsoft Entra ID): the ID token names a distributed groups claim
//! (OIDC Core §5.6.2) or says `hasgroups: true` instead of listing the groups. The groups are
//! fetched from the named endpoint with the access token, only on an allowed origin (the
//! endpoint comes from the token: SSRF), bounded in size and time (the IdP client's 10 s);
//! when that cannot be done, the configured outcome applies: refuse (default) or sign in
//! without groups. Never a silent partial role set.

use portcullis_core::claim_sources::{
    Overage, OverageOutcome, OverageSettings, detect, insert_groups, parse_source, source_allowed,
};
use serde_json::{Map, Value};

use super::IdpHttp;
use crate::error::WebError;

/// The sentence of the refusal page.
pub const OVERAGE_REFUSED: &str = "Sign-in refused: you are a member of too many groups for the identity provider to list them in the sign-in token, and they could not be fetched, so your roles cannot be determined. Please contact your administrator.";

/// Make `claims` carry the complete groups, or apply the overage outcome.
pub async fn resolve_groups(
    http: &IdpHttp,
    settings: &OverageSettings,
    issuer: &str,
    groups_key: &str,
    access_token: &str,
    claims: &mut Map<String, Value>,
) -> Result<(), WebError> {
    let why = match detect(claims, groups_key) {
        Overage::None => return Ok(()),
        Overage::NoSource => "the token names no endpoint to fetch them from".to_string(),
        Overage::Source(endpoint) => {
            if source_allowed(&endpoint, &settings.allowed_origins(issuer)) {
                match fetch(http, &endpoint, access_token).await {
                    Ok(groups) => {
                        tracing::info!(
                            count = groups.len(),
                            "groups overage: groups fetched from the distributed claim source"
                        );
                        insert_groups(claims, groups_key, groups);
                        return Ok(());
                    }
                    Err(e) => format!("fetching them failed: {e}"),
                }
            } else {
                format!(
                    "the claim source's origin is not in OIDC_GROUPS_SOURCE_ORIGINS (not fetched): {}",
                    origin_label(&endpoint)
                )
            }
        }
    };
    match settings.outcome {
        OverageOutcome::Deny => {
            tracing::warn!(event = "auth.failure", reason = %why, "groups overage: sign-in refused (OIDC_GROUPS_OVERAGE=deny)");
            Err(WebError::Forbidden(OVERAGE_REFUSED.to_string()))
        }
        OverageOutcome::NoGroups => {
            tracing::warn!(reason = %why, "groups overage: signing in without groups (OIDC_GROUPS_OVERAGE=no-groups)");
            Ok(())
        }
    }
}

/// Only the origin of an endpoint goes to the log (its path may name the user).
fn origin_label(endpoint: &str) -> String {
    portcullis_core::claim_sources::origin_of(endpoint).unwrap_or_else(|| "(not a URL)".into())
}

#[derive(Debug, thiserror::Error)]
enum FetchError {
    #[error("not a URL")]
    Url,
    #[error("{0}")]
    Http(#[from] super::IdpError),
    #[error("HTTP {0}")]
    Status(u16),
    #[error("the answer has no list of groups (`value` or `groups`)")]
    Shape,
}

/// Microsoft Graph's `getMemberObjects` is a POST; the harness and other sources answer it too.
async fn fetch(
    http: &IdpHttp,
    endpoint: &str,
    access_token: &str,
) -> Result<Vec<Value>, FetchError> {
    let url = url::Url::parse(endpoint).map_err(|_| FetchError::Url)?;
    let body = serde_json::json!({"securityEnabledOnly": false});
    let r = http
        .post_json(
            &url,
            access_token,
            &body,
            super::client::IdpCall::GroupsSource,
        )
        .await?;
    if r.status != 200 {
        return Err(FetchError::Status(r.status));
    }
    parse_source(&r.body).ok_or(FetchError::Shape)
}
