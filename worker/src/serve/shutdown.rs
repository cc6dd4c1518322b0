//! A stop signal that many tasks can wait on and any of them can fire: the worker's own
//! "shutting down" and each lease's "revoked" are one of these. Built on a `watch`
//! channel, so a task that starts waiting after the signal fired returns at once.

use std::sync::Arc;

use tokio::sync::watch;

/// A one-way switch from running to stopped; clones share the switch.
#[derive(Clone)]
pub struct Shutdown {
    /// The switch; `true` once fired. Shared so that any clone can fire it.
    tx: Arc<watch::Sender<bool>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// A switch that has not fired.
    pub fn new() -> Self {
        Shutdown {
            tx: Arc::new(watch::channel(false).0),
        }
    }

    /// Fires the switch (again is harmless).
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// Whether the switch has fired.
    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }

    /// Completes once the switch has fired.
    pub async fn wait(&self) {
        let mut rx = self.tx.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = rx.wait_for(|fired| *fired).await;
    }
}

#[cfg(test)]
mod tests {
    use super::Shutdown;

    #[tokio::test]
    async fn fires_once_for_every_clone_and_late_waiter() {
        let s = Shutdown::new();
        let c = s.clone();
        assert!(!c.is_triggered());
        let waiter = tokio::spawn(async move { c.wait().await });
        s.trigger();
        waiter.await.unwrap();
        s.wait().await;
        assert!(s.is_triggered());
    }
}
