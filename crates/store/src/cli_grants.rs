//! Grants that sign the command-line tool in (RFC 8252 loopback codes and RFC 8628 device
//! codes): short-lived rows, shared by every replica, that end in one minted API token.
//! Only the SHA-256 of a code is stored (`portcullis_core::cli_login::grant_id`).

use async_trait::async_trait;
use portcullis_core::cli_login::{DeviceStatus, PollVerdict};

use crate::StoreError;

/// Which grant a row belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantKind {
    /// A loopback authorization code: approved when created, redeemed once with PKCE.
    Code,
    /// A device authorization: pending until the person approves or denies it.
    Device,
}

impl GrantKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            GrantKind::Code => "code",
            GrantKind::Device => "device",
        }
    }
}

/// One grant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CliGrant {
    /// SHA-256 (hex) of the code or device code.
    pub id: String,
    pub kind: GrantKind,
    /// Device grants: the code the person types (canonical form, unique among live ones).
    pub user_code: Option<String>,
    /// Who approved it (set at creation for codes, at approval for device grants).
    pub user_id: Option<String>,
    pub status: DeviceStatus,
    /// The machine the CLI announced (shown to the person; part of the token's name).
    pub machine: String,
    /// Expiry the CLI asked for its token, in days (`None`: none).
    pub token_days: Option<i64>,
    /// Codes: the PKCE S256 challenge and the loopback redirect URI they are bound to.
    pub code_challenge: Option<String>,
    pub redirect_uri: Option<String>,
    /// The address the grant was started from (device grants: the CLI's), shown to the
    /// person who decides.
    pub client_ip: Option<String>,
    /// Device grants: seconds between polls, and the last poll.
    pub interval: i64,
    pub last_poll: Option<i64>,
    pub created_at: i64,
    pub expires_at: i64,
}

/// Grants of the command-line sign-in. Every call that ends a grant removes its row in the
/// same statement or transaction that read it, so two replicas can never both redeem it.
#[async_trait]
pub trait CliGrantStore: Send + Sync {
    /// Store a grant after purging expired ones; refused with [`StoreError::Full`] when
    /// `max_live` live grants exist (anonymous clients start device grants). `Ok(false)`, and
    /// nothing stored, when a live grant has the same user code (the caller draws another).
    async fn insert_cli_grant(
        &self,
        grant: &CliGrant,
        max_live: i64,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Remove and return the loopback code `id` (expired or not: the caller judges, and a
    /// code is spent by its first redemption attempt either way).
    async fn take_cli_code(&self, id: &str) -> Result<Option<CliGrant>, StoreError>;
    /// The live, pending device grant with this user code.
    async fn pending_device_grant(
        &self,
        user_code: &str,
        now: i64,
    ) -> Result<Option<CliGrant>, StoreError>;
    /// Approve (for `user_id`) or deny the live, pending device grant with this user code;
    /// returns whether one was decided.
    async fn decide_device_grant(
        &self,
        user_code: &str,
        user_id: &str,
        approve: bool,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// One poll by the CLI holding device code `id`: judged by
    /// `portcullis_core::cli_login::judge_poll` inside one transaction that records the poll,
    /// or removes the grant when the verdict ends it. `None` for an unknown id.
    async fn poll_device_grant(
        &self,
        id: &str,
        now: i64,
    ) -> Result<Option<(PollVerdict, CliGrant)>, StoreError>;
}
