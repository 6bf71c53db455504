//! The admin API (`/api/admin/…`) and the admin page (`/.portcullis/admin`): find users, see
//! one with their sessions and state, deactivate, re-enable, end their sessions, and read the
//! audit log.
//!
//! Who may: a signed-in person holding `platformAdmin`, or a role the configuration adds
//! (`adminRoles`). The API needs a DPoP proof while DPoP is on (`auth::needs_proof`) and the
//! CSRF header on every change. Every change is audited with the administrator as actor.
//! Guard rails: nobody can deactivate themself (so an administrator cannot lock themself out
//! by accident), and only a platformAdmin can act on a platformAdmin.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, Method};
use axum::response::{Html, IntoResponse, Response};
use portcullis_core::authz::PLATFORM_ADMIN;
use portcullis_store::{AuditQuery, SessionSummary, User, UserQuery};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::no_store;
use crate::audit::Entry;
use crate::auth::{Authed, MaybeAuthed};
use crate::error::{WebError, wants_json};
use crate::pages;
use crate::state::AppState;
use axum::http::{StatusCode, header};

/// The admin page's own path.
pub const PAGE_PATH: &str = "/.portcullis/admin";
/// Default page sizes of the lists.
const USERS_PAGE: i64 = 25;
const AUDIT_PAGE: i64 = 50;
/// Longest text filter accepted (ids, actions, outcomes are far shorter).
const FILTER_MAX: usize = 256;

/// An error body of Portcullis's JSON API.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// `unauthorized`, `forbidden`, `csrf`, `invalid_request`, `not_found`, `conflict`, …
    pub error: String,
    /// A sentence for people (absent for `unauthorized` and `csrf`).
    pub error_description: Option<String>,
}

/// A user as the admin API shows them.
#[derive(Serialize, ToSchema)]
pub struct UserView {
    /// Portcullis's internal id.
    pub id: String,
    /// The identity provider and the person's subject there.
    pub issuer: String,
    pub subject: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub username: Option<String>,
    pub groups: Vec<String>,
    /// Roles their groups grant under the current configuration.
    pub roles: Vec<String>,
    /// Unix seconds.
    pub first_login: i64,
    pub last_login: i64,
    /// May use the application: neither disabled by an administrator nor deactivated by the
    /// identity provider.
    pub active: bool,
    /// Disabled by an administrator: a sign-in is refused until an administrator re-enables.
    pub admin_disabled: bool,
    /// Signed out by the identity provider (back-channel logout): their next sign-in
    /// re-activates them.
    pub idp_deactivated: bool,
}

/// A session of a user. Its full id and the ID token are never shown.
#[derive(Serialize, ToSchema)]
pub struct SessionView {
    /// The first characters of the session id (enough to tell sessions apart).
    pub id_prefix: String,
    pub created_at: i64,
    pub last_seen: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    /// Neither revoked nor past its absolute lifetime.
    pub live: bool,
}

/// One page of users.
#[derive(Serialize, ToSchema)]
pub struct UserPage {
    pub users: Vec<UserView>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next: Option<String>,
}

/// One user with their newest sessions.
#[derive(Serialize, ToSchema)]
pub struct UserDetail {
    pub user: UserView,
    pub sessions: Vec<SessionView>,
}

/// What an action did.
#[derive(Serialize, ToSchema)]
pub struct ActionResult {
    /// The user as they are now.
    pub user: UserView,
    /// Whether the user's state changed (false: it already was so).
    pub changed: bool,
    /// Live sessions this action ended.
    pub sessions_revoked: usize,
}

/// One audit event.
#[derive(Serialize, ToSchema)]
pub struct AuditView {
    /// Pass the last one as `before` for the next (older) page.
    pub id: i64,
    /// Unix seconds.
    pub at: i64,
    /// e.g. `auth.sign_in`, `auth.failure`, `auth.logout`, `auth.backchannel_logout`,
    /// `admin.user_disabled`, `admin.user_enabled`, `admin.sessions_revoked`.
    pub action: String,
    /// `ok`, `refused` or `failed`.
    pub outcome: String,
    /// Internal id of who did it (none: anonymous, or the identity provider).
    pub actor: Option<String>,
    /// Internal id of the user it is about.
    pub subject: Option<String>,
    /// Client address.
    pub ip: Option<String>,
    pub detail: Option<String>,
}

/// One page of audit events, newest first.
#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    pub events: Vec<AuditView>,
    /// Who the actors and subjects on this page are (internal id → name, else email, else
    /// username), for people reading the log.
    pub names: std::collections::BTreeMap<String, String>,
    /// Pass as `before` for the next page; absent on the last page.
    pub next: Option<i64>,
}

/// `GET /api/admin/users` parameters.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserSearch {
    /// Text found in the email, name, username or IdP subject, ignoring case.
    pub q: Option<String>,
    /// The `next` of the previous page.
    pub after: Option<String>,
    /// Page size, 1 to 100 (default 25).
    pub limit: Option<i64>,
}

/// `GET /api/admin/audit` parameters; every filter given must match.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditFilter {
    /// Actions starting with this text (`auth.`, `admin.`, `auth.sign_in`).
    pub action: Option<String>,
    /// Internal id of who did it.
    pub actor: Option<String>,
    /// Internal id of the user it is about.
    pub subject: Option<String>,
    /// `ok`, `refused` or `failed`.
    pub outcome: Option<String>,
    /// From this time on (unix seconds, inclusive).
    pub since: Option<i64>,
    /// Before this time (unix seconds, exclusive).
    pub until: Option<i64>,
    /// The `next` of the previous page.
    pub before: Option<i64>,
    /// Page size, 1 to 500 (default 50).
    pub limit: Option<i64>,
}

/// The caller, when they may administer; `change` requests must carry the CSRF token too.
fn administrator(
    state: &AppState,
    auth: Result<MaybeAuthed, WebError>,
    change: bool,
) -> Result<Authed, WebError> {
    let a = auth?.0.ok_or(WebError::Unauthorized)?;
    let roles = a.roles.as_deref().unwrap_or_default();
    if !state.config.authz.may_administer(roles) {
        // Logged, not stored: a signed-in person must not be able to fill the audit table.
        tracing::warn!(event = "admin.denied", user = %a.user.id, "admin API refused: no administrator role");
        return Err(WebError::Forbidden(needed_roles(state)));
    }
    if change {
        a.csrf.map_err(WebError::Csrf)?;
    }
    Ok(a)
}

/// The 403 sentence: which roles would do.
fn needed_roles(state: &AppState) -> String {
    let mut roles = vec![PLATFORM_ADMIN.to_string()];
    roles.extend(state.config.authz.admin_roles.iter().cloned());
    format!("This needs an administrator role: {}.", roles.join(" or "))
}

fn roles_of(state: &AppState, user: &User) -> Vec<String> {
    state
        .roles_of(&user.profile.issuer, &user.profile.groups)
        .unwrap_or_default()
}

impl UserView {
    /// `u` as the admin API shows them: the one mapping from a stored user, so a new field is
    /// mapped once. Not `From<&User>`: the roles come from the current configuration.
    fn of(state: &AppState, u: &User) -> UserView {
        let p = &u.profile;
        UserView {
            id: u.id.clone(),
            issuer: p.issuer.clone(),
            subject: p.subject.clone(),
            email: p.email.clone(),
            name: p.name.clone(),
            username: p.username.clone(),
            groups: p.groups.clone(),
            roles: roles_of(state, u),
            first_login: u.first_login,
            last_login: u.last_login,
            active: u.active,
            admin_disabled: u.admin_disabled,
            idp_deactivated: u.idp_deactivated,
        }
    }
}

fn session_view(s: &SessionSummary, now: i64) -> SessionView {
    SessionView {
        id_prefix: s.id.chars().take(8).collect(),
        created_at: s.created_at,
        last_seen: s.last_seen,
        expires_at: s.expires_at,
        revoked_at: s.revoked_at,
        live: s.revoked_at.is_none() && s.expires_at >= now,
    }
}

/// JSON whatever the client's `Accept` says, never cached.
fn json_answer(r: Result<Response, WebError>) -> Response {
    let mut resp = r.unwrap_or_else(|e| e.render_as(true));
    no_store(&mut resp);
    resp
}

/// A text filter: trimmed, empty as absent, bounded.
fn filter(v: Option<String>) -> Result<Option<String>, WebError> {
    match v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()) {
        Some(s) if s.chars().count() > FILTER_MAX => {
            Err(WebError::InvalidInput("A filter is too long."))
        }
        v => Ok(v),
    }
}

fn bad_query(_: QueryRejection) -> WebError {
    WebError::InvalidInput("A query parameter is malformed (numbers must be whole numbers).")
}

/// The user `id`, or 404.
async fn target(state: &AppState, id: &str) -> Result<User, WebError> {
    state.store.users.user(id).await?.ok_or(WebError::NotFound)
}

/// Only a platformAdmin acts on a platformAdmin: a configured `admin` role must not be able
/// to take the platform's own administrators out.
fn may_act_on(state: &AppState, admin: &Authed, user: &User) -> Result<(), &'static str> {
    let theirs = roles_of(state, user);
    let mine = admin.roles.as_deref().unwrap_or_default();
    if theirs.iter().any(|r| r == PLATFORM_ADMIN) && !mine.iter().any(|r| r == PLATFORM_ADMIN) {
        return Err("Only a platformAdmin can change a platformAdmin.");
    }
    Ok(())
}

fn audit(
    state: &AppState,
    action: &'static str,
    outcome: &'static str,
    admin: &Authed,
    subject: &str,
    peer: SocketAddr,
    detail: Option<String>,
) {
    state.audit.record(
        state.now(),
        Entry {
            action,
            outcome,
            actor: Some(&admin.user.id),
            subject: Some(subject),
            ip: Some(peer.ip()),
            detail,
        },
    );
}

/// An administrator action on one user, as its handler declares it.
struct UserAction {
    /// Its audit action, for the refusals and the outcome alike.
    audit: &'static str,
    /// The 409 sentence when the user is the caller; `None`: allowed on oneself.
    not_yourself: Option<&'static str>,
    /// It changes the user's own state, so the answer re-reads them (ending sessions does
    /// not, so that answer shows the user as read for the guard rails).
    reread: bool,
}

const DEACTIVATE: UserAction = UserAction {
    audit: "admin.user_disabled",
    // Nobody locks themself out by accident.
    not_yourself: Some("You cannot deactivate yourself. Ask another administrator."),
    reread: true,
};

const ENABLE: UserAction = UserAction {
    audit: "admin.user_enabled",
    not_yourself: None,
    reread: true,
};

const REVOKE_SESSIONS: UserAction = UserAction {
    audit: "admin.sessions_revoked",
    not_yourself: None,
    reread: false,
};

/// What an action did: the answer's counts and the audit entry's detail.
struct Done {
    changed: bool,
    sessions_revoked: usize,
    detail: String,
}

/// The frame every action on a user shares, so the guard rails cannot drift apart: an
/// administrator with the CSRF token; not themself where `a.not_yourself` says so (before the
/// lookup, so it is a 409 even for an id that does not exist); the user, or 404; only a
/// platformAdmin on a platformAdmin. Each refusal past the caller check is audited, then
/// `change` runs, its outcome is audited and the user is answered.
async fn act_on_user(
    state: &AppState,
    peer: SocketAddr,
    auth: Result<MaybeAuthed, WebError>,
    id: &str,
    a: &UserAction,
    change: impl AsyncFnOnce() -> Result<Done, WebError>,
) -> Response {
    json_answer(
        async {
            let admin = administrator(state, auth, true)?;
            if let Some(sentence) = a.not_yourself
                && id == admin.user.id
            {
                let why = Some("yourself".into());
                audit(state, a.audit, "refused", &admin, id, peer, why);
                return Err(WebError::Conflict(sentence));
            }
            let user = target(state, id).await?;
            if let Err(why) = may_act_on(state, &admin, &user) {
                audit(
                    state,
                    a.audit,
                    "refused",
                    &admin,
                    id,
                    peer,
                    Some(why.into()),
                );
                return Err(WebError::Forbidden(why.into()));
            }
            let done = change().await?;
            audit(state, a.audit, "ok", &admin, id, peer, Some(done.detail));
            let user = if a.reread {
                target(state, id).await?
            } else {
                user
            };
            Ok(Json(ActionResult {
                user: UserView::of(state, &user),
                changed: done.changed,
                sessions_revoked: done.sessions_revoked,
            })
            .into_response())
        }
        .await,
    )
}

/// List and search users.
#[utoipa::path(
    get,
    path = "/users",
    tag = "admin",
    summary = "List and search users",
    description = "Users who have signed in, by internal id, matching `q` in their email, name, username or identity provider subject (any part, ignoring case).",
    params(UserSearch),
    responses(
        (status = 200, description = "A page of users, by internal id", body = UserPage),
        (status = 400, description = "A malformed parameter", body = ErrorBody),
        (status = 401, description = "Not signed in, or no valid DPoP proof", body = ErrorBody),
        (status = 403, description = "Signed in without an administrator role", body = ErrorBody),
    ),
    security(("session" = [], "dpop" = []))
)]
pub async fn list_users(
    State(state): State<AppState>,
    auth: Result<MaybeAuthed, WebError>,
    query: Result<Query<UserSearch>, QueryRejection>,
) -> Response {
    json_answer(
        async {
            administrator(&state, auth, false)?;
            let Query(q) = query.map_err(bad_query)?;
            let limit = q
                .limit
                .unwrap_or(USERS_PAGE)
                .clamp(1, portcullis_store::USERS_MAX_PAGE);
            let users = state
                .store
                .admin
                .list_users(&UserQuery {
                    search: filter(q.q)?,
                    after_id: filter(q.after)?,
                    limit,
                })
                .await?;
            let next = (users.len() as i64 == limit)
                .then(|| users.last().map(|u| u.id.clone()))
                .flatten();
            let users = users.iter().map(|u| UserView::of(&state, u)).collect();
            Ok(Json(UserPage { users, next }).into_response())
        }
        .await,
    )
}

/// One user, their state and their newest sessions.
#[utoipa::path(
    get,
    path = "/users/{id}",
    tag = "admin",
    summary = "One user with their state and sessions",
    description = "The user and their newest sessions (at most 50). Sessions are shown by the first characters of their id; ID tokens are never shown.",
    params(("id" = String, Path, description = "Internal user id")),
    responses(
        (status = 200, description = "The user with their sessions, newest first", body = UserDetail),
        (status = 401, description = "Not signed in, or no valid DPoP proof", body = ErrorBody),
        (status = 403, description = "Signed in without an administrator role", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    ),
    security(("session" = [], "dpop" = []))
)]
pub async fn get_user(
    State(state): State<AppState>,
    auth: Result<MaybeAuthed, WebError>,
    Path(id): Path<String>,
) -> Response {
    json_answer(
        async {
            administrator(&state, auth, false)?;
            let user = target(&state, &id).await?;
            let now = state.now();
            let sessions = state.store.admin.user_sessions(&user.id).await?;
            Ok(Json(UserDetail {
                user: UserView::of(&state, &user),
                sessions: sessions.iter().map(|s| session_view(s, now)).collect(),
            })
            .into_response())
        }
        .await,
    )
}

/// Deactivate a user: disabled by an administrator (a sign-in is refused until re-enabled)
/// and every live session ended, on every replica within a second. You cannot deactivate
/// yourself.
#[utoipa::path(
    post,
    path = "/users/{id}/deactivate",
    tag = "admin",
    summary = "Deactivate a user",
    description = "The user is disabled by an administrator (a sign-in is refused until re-enabled) and every live session of theirs ends, on every replica within a second. You cannot deactivate yourself; only a platformAdmin can deactivate a platformAdmin.",
    params(("id" = String, Path, description = "Internal user id")),
    responses(
        (status = 200, description = "Deactivated (or already was)", body = ActionResult),
        (status = 401, description = "Not signed in, or no valid DPoP proof", body = ErrorBody),
        (status = 403, description = "No administrator role, no valid CSRF token, or the user is a platformAdmin and you are not", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "The user is you", body = ErrorBody),
    ),
    security(("session" = [], "dpop" = [], "csrf" = []))
)]
pub async fn deactivate(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    auth: Result<MaybeAuthed, WebError>,
    Path(id): Path<String>,
) -> Response {
    act_on_user(&state, peer, auth, &id, &DEACTIVATE, async || {
        let now = state.now();
        let d = state.store.admin.deactivate_user(&id, now).await?;
        // This replica at once; the others through the change feed.
        state.views.users.evict(&id);
        for (sid, exp) in &d.revoked {
            state.views.revoked.revoke(sid, *exp, now);
        }
        let was = if d.changed {
            "disabled"
        } else {
            "already disabled"
        };
        Ok(Done {
            changed: d.changed,
            sessions_revoked: d.revoked.len(),
            detail: format!("{was}; {} session(s) ended", d.revoked.len()),
        })
    })
    .await
}

/// Re-enable a user: clears both "disabled by an administrator" and "deactivated by the
/// identity provider"; they can sign in again (their old sessions stay ended).
#[utoipa::path(
    post,
    path = "/users/{id}/enable",
    tag = "admin",
    summary = "Re-enable a user",
    description = "Clears both \"disabled by an administrator\" and \"signed out by the identity provider\": they can sign in again. Their old sessions stay ended.",
    params(("id" = String, Path, description = "Internal user id")),
    responses(
        (status = 200, description = "Re-enabled (or already was)", body = ActionResult),
        (status = 401, description = "Not signed in, or no valid DPoP proof", body = ErrorBody),
        (status = 403, description = "No administrator role, no valid CSRF token, or the user is a platformAdmin and you are not", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    ),
    security(("session" = [], "dpop" = [], "csrf" = []))
)]
pub async fn enable(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    auth: Result<MaybeAuthed, WebError>,
    Path(id): Path<String>,
) -> Response {
    act_on_user(&state, peer, auth, &id, &ENABLE, async || {
        let changed = state
            .store
            .users
            .set_user_active(&id, true, state.now())
            .await?;
        state.views.users.evict(&id);
        let detail = if changed {
            "re-enabled"
        } else {
            "already active"
        };
        Ok(Done {
            changed,
            sessions_revoked: 0,
            detail: detail.into(),
        })
    })
    .await
}

/// End every live session of a user, on every replica within a second. The user stays
/// enabled and can sign in again.
#[utoipa::path(
    post,
    path = "/users/{id}/revoke-sessions",
    tag = "admin",
    summary = "End all sessions of a user",
    description = "Ends every live session of the user, on every replica within a second. The user stays enabled and can sign in again.",
    params(("id" = String, Path, description = "Internal user id")),
    responses(
        (status = 200, description = "The live sessions were ended", body = ActionResult),
        (status = 401, description = "Not signed in, or no valid DPoP proof", body = ErrorBody),
        (status = 403, description = "No administrator role, no valid CSRF token, or the user is a platformAdmin and you are not", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    ),
    security(("session" = [], "dpop" = [], "csrf" = []))
)]
pub async fn revoke_sessions(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    auth: Result<MaybeAuthed, WebError>,
    Path(id): Path<String>,
) -> Response {
    act_on_user(&state, peer, auth, &id, &REVOKE_SESSIONS, async || {
        let now = state.now();
        let revoked = state.store.admin.revoke_user_sessions(&id, now).await?;
        for (sid, exp) in &revoked {
            state.views.revoked.revoke(sid, *exp, now);
        }
        Ok(Done {
            changed: !revoked.is_empty(),
            sessions_revoked: revoked.len(),
            detail: format!("{} session(s) ended", revoked.len()),
        })
    })
    .await
}

/// The audit log, newest first: sign-ins, refused sign-ins, sign-outs, back-channel logouts
/// and every administrator action.
#[utoipa::path(
    get,
    path = "/audit",
    tag = "admin",
    summary = "The audit log",
    description = "Sign-ins, refused sign-ins, sign-outs, back-channel logouts and administrator actions, newest first, with filters. `names` names the people on the page.",
    params(AuditFilter),
    responses(
        (status = 200, description = "A page of events, newest first", body = AuditPage),
        (status = 400, description = "A malformed parameter", body = ErrorBody),
        (status = 401, description = "Not signed in, or no valid DPoP proof", body = ErrorBody),
        (status = 403, description = "Signed in without an administrator role", body = ErrorBody),
    ),
    security(("session" = [], "dpop" = []))
)]
pub async fn audit_events(
    State(state): State<AppState>,
    auth: Result<MaybeAuthed, WebError>,
    query: Result<Query<AuditFilter>, QueryRejection>,
) -> Response {
    json_answer(
        async {
            administrator(&state, auth, false)?;
            let Query(f) = query.map_err(bad_query)?;
            let limit = f
                .limit
                .unwrap_or(AUDIT_PAGE)
                .clamp(1, portcullis_store::AUDIT_MAX_PAGE);
            let rows = state
                .store
                .audit
                .audit_events(&AuditQuery {
                    subject: filter(f.subject)?,
                    action_prefix: filter(f.action)?,
                    outcome: filter(f.outcome)?,
                    actor: filter(f.actor)?,
                    since: f.since,
                    until: f.until,
                    before_id: f.before,
                    limit,
                })
                .await?;
            let next = (rows.len() as i64 == limit)
                .then(|| rows.last().map(|(id, _)| *id))
                .flatten();
            let names = names_of(&state, &rows).await?;
            let events = rows
                .into_iter()
                .map(|(id, e)| AuditView {
                    id,
                    at: e.at,
                    action: e.action,
                    outcome: e.outcome,
                    actor: e.actor,
                    subject: e.subject,
                    ip: e.ip,
                    detail: e.detail,
                })
                .collect();
            Ok(Json(AuditPage {
                events,
                names,
                next,
            })
            .into_response())
        }
        .await,
    )
}

/// At most this many people are named per audit page (one indexed read each).
const NAMES_MAX: usize = 100;

/// Display names of the actors and subjects of `rows`.
async fn names_of(
    state: &AppState,
    rows: &[(i64, portcullis_store::AuditEvent)],
) -> Result<std::collections::BTreeMap<String, String>, WebError> {
    let mut ids: Vec<&str> = rows
        .iter()
        .flat_map(|(_, e)| [e.actor.as_deref(), e.subject.as_deref()])
        .flatten()
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let mut names = std::collections::BTreeMap::new();
    for id in ids.into_iter().take(NAMES_MAX) {
        if let Some(u) = state.store.users.user(id).await? {
            let p = &u.profile;
            if let Some(n) = [&p.name, &p.email, &p.username]
                .into_iter()
                .flatten()
                .next()
            {
                names.insert(u.id.clone(), n.clone());
            }
        }
    }
    Ok(names)
}

/// Any other path under `/api/admin/`: Portcullis's own, never passed to the app.
pub async fn not_found() -> Response {
    json_answer(Err(WebError::NotFound))
}

/// `GET /.portcullis/admin`: the admin page. Not signed in: the usual sign-in (and back);
/// signed in without an administrator role: the 403 page. The page's script does the rest
/// through the browser client.
pub async fn page(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    auth: Result<MaybeAuthed, WebError>,
) -> Result<Response, WebError> {
    // A refused credential (a tossed cookie, a store failure) is answered as such.
    let MaybeAuthed(signed_in) = auth?;
    let Some(a) = signed_in else {
        // As for any protected page: browsers go to sign in and come back here.
        if method != Method::GET || wants_json(&headers) {
            return Err(WebError::Unauthorized);
        }
        let login = format!(
            "{}/api/login?rd=%2F.portcullis%2Fadmin",
            state.public_origin
        );
        let mut resp = (StatusCode::FOUND, [(header::LOCATION, login)]).into_response();
        no_store(&mut resp);
        return Ok(resp);
    };
    let roles = a.roles.as_deref().unwrap_or_default();
    if !state.config.authz.may_administer(roles) {
        tracing::warn!(event = "admin.denied", user = %a.user.id, "admin page refused: no administrator role");
        return Err(WebError::Forbidden(needed_roles(&state)));
    }
    let mut resp = Html(pages::admin_page(&a.user.id)).into_response();
    pages::allow_own_scripts(&mut resp);
    no_store(&mut resp);
    Ok(resp)
}
