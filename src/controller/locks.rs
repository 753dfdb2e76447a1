//! One async lock per key (a source's `namespace/name`), created on demand and dropped with
//! its last user, so a watch-triggered reconcile and a job never refresh one source at once.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, Weak},
};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

#[derive(Default)]
pub struct KeyedLocks {
    locks: Mutex<HashMap<String, Weak<AsyncMutex<()>>>>,
}

impl KeyedLocks {
    pub async fn lock(&self, key: &str) -> OwnedMutexGuard<()> {
        let lock = {
            // Poisoning only means another thread panicked between two map operations.
            let mut locks = self
                .locks
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Some(lock) = locks.get(key).and_then(Weak::upgrade) {
                lock
            } else {
                locks.retain(|_, weak| weak.strong_count() > 0);
                let lock = Arc::new(AsyncMutex::new(()));
                locks.insert(key.to_owned(), Arc::downgrade(&lock));
                lock
            }
        };
        lock.lock_owned().await
    }

    /// Keys with a live lock, for tests.
    pub fn live(&self) -> usize {
        self.locks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .values()
            .filter(|weak| weak.strong_count() > 0)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn one_holder_per_key_and_keys_are_independent() {
        let locks = Arc::new(KeyedLocks::default());
        let held = locks.lock("team-a/models").await;
        let other = tokio::time::timeout(Duration::from_millis(50), locks.lock("team-b/models"))
            .await
            .expect("another key is not blocked");
        let same = {
            let locks = locks.clone();
            tokio::spawn(async move { locks.lock("team-a/models").await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!same.is_finished(), "the same key waits for its holder");
        drop(held);
        let second = tokio::time::timeout(Duration::from_secs(1), same)
            .await
            .expect("released")
            .unwrap();
        drop((second, other));
        assert_eq!(locks.live(), 0, "locks go with their last user");
    }
}
