//! [`TokenStore`] for auth-store's [`FileStore`]: its blocking calls run on tokio's blocking pool.
//!
//! `FileStore`'s own (inherent) `load`/`save`/`clear` are the blocking ones, for start-up code
//! and tests; the driver uses these async ones.

use std::io;

use auth_core::Snapshot;
use auth_store::FileStore;

use super::{StoreError, TokenStore};

impl TokenStore for FileStore {
    async fn load(&self) -> Result<Option<Snapshot>, StoreError> {
        let store = self.clone();
        blocking(move || store.load()).await
    }

    async fn save(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        let store = self.clone();
        blocking(move || store.save(&snapshot)).await
    }

    async fn clear(&self) -> Result<(), StoreError> {
        let store = self.clone();
        blocking(move || store.clear()).await
    }
}

/// Runs file I/O on tokio's blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(join) => Err(StoreError::Io(io::Error::other(join.to_string()))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use auth_core::{AccessToken, RefreshToken, UnixTime};

    #[tokio::test]
    async fn async_store_round_trips_through_the_blocking_pool() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("session.json"));
        let snapshot = Snapshot {
            access_token: AccessToken::new("at-file-secret"),
            refresh_token: Some(RefreshToken::new("rt-file-secret")),
            expires_at: Some(UnixTime::from_millis(1_800_000_000_000)),
        };
        assert!(TokenStore::load(&store).await.unwrap().is_none());
        TokenStore::save(&store, snapshot.clone()).await.unwrap();
        assert_eq!(
            TokenStore::load(&store).await.unwrap(),
            Some(snapshot.clone())
        );
        assert_eq!(std::fs::read(store.path()).unwrap(), *snapshot.encode());
        TokenStore::clear(&store).await.unwrap();
        assert!(store.load().unwrap().is_none());
    }
}
