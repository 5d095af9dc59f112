//! The decision a driver makes under the store's lock before a refresh: was the refresh token
//! about to be spent already rotated by another holder of the store? Shared by every driver so
//! they follow one protocol (see the crate documentation, "Locking").

use core::time::Duration;

use auth_core::{RefreshToken, Snapshot, TokenSet, UnixTime};

/// Whether the stored session shows that `spent` was already replaced by another holder of the
/// store (a rotation by another process, or a login): then refreshing with `spent` would burn a
/// token that is no longer current, and the stored tokens are the ones to use.
///
/// A store without a refresh token says nothing about `spent`: refresh.
pub fn rotated_elsewhere(stored: &Snapshot, spent: &RefreshToken) -> bool {
    stored
        .refresh_token
        .as_ref()
        .is_some_and(|stored| stored.expose_secret() != spent.expose_secret())
}

/// A stored session as the result of a refresh: its remaining lifetime is counted from
/// `wall_now` (read by the caller), so an expired one gets zero and is refreshed before use.
pub fn stored_tokens(stored: Snapshot, wall_now: UnixTime) -> TokenSet {
    TokenSet {
        access_token: stored.access_token,
        refresh_token: stored.refresh_token,
        expires_in: stored
            .expires_at
            .map(|at| Duration::from_millis(at.as_millis().saturating_sub(wall_now.as_millis()))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use auth_core::AccessToken;

    use super::*;

    fn stored(refresh: Option<&str>, expires_at: Option<u64>) -> Snapshot {
        Snapshot {
            access_token: AccessToken::new("at-stored"),
            refresh_token: refresh.map(RefreshToken::new),
            expires_at: expires_at.map(UnixTime::from_millis),
        }
    }

    #[test]
    fn only_another_stored_refresh_token_means_rotated_elsewhere() {
        let spent = RefreshToken::new("rt-1");
        assert!(rotated_elsewhere(&stored(Some("rt-2"), None), &spent));
        assert!(!rotated_elsewhere(&stored(Some("rt-1"), None), &spent));
        assert!(!rotated_elsewhere(&stored(None, None), &spent));
    }

    #[test]
    fn stored_tokens_keep_their_remaining_lifetime() {
        let now = UnixTime::from_millis(1_000_000);
        let tokens = stored_tokens(stored(Some("rt-2"), Some(1_060_000)), now);
        assert_eq!(tokens.access_token.expose_secret(), "at-stored");
        assert_eq!(tokens.refresh_token.unwrap().expose_secret(), "rt-2");
        assert_eq!(tokens.expires_in, Some(Duration::from_secs(60)));
        let expired = stored_tokens(stored(Some("rt-2"), Some(999_000)), now);
        assert_eq!(expired.expires_in, Some(Duration::ZERO));
        assert_eq!(stored_tokens(stored(None, None), now).expires_in, None);
    }
}
