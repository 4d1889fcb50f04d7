//! Interrupts: SIGINT, SIGTERM and SIGHUP while privfence holds a cut, a restore or a fence.
//!
//! Before anything is changed, a signal ends the process as it always did (exit 128 + the
//! signal's number). Once a command [`Interrupts::guard`]s, a signal is only recorded: the
//! code that changes servers looks at it between statements (never inside one) and takes the
//! safe way out: a cut or a watch restores at once, a restore that is interrupted again by
//! SIGINT stops and leaves the journal for `session resume`, a promotion undoes its fence.
//! SIGHUP (the terminal went away) and SIGTERM never stop a restore: only a second Ctrl-C from
//! an operator who is still there does.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

/// Shared record of the signals received; cheap to clone. The default records nothing until
/// [`Interrupts::raise`] is called (library users and tests that install no handler).
#[derive(Clone, Default)]
pub struct Interrupts {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Set once a command holds something a signal must not abandon.
    guarded: AtomicBool,
    /// Every signal received while guarded.
    total: AtomicU32,
    /// SIGINTs received while guarded (a second one stops a restore).
    sigints: AtomicU32,
    /// The first signal's name, for the verdict's reason.
    first: Mutex<Option<&'static str>>,
    /// Wakes waiters when a signal arrives.
    notify: tokio::sync::Notify,
}

impl std::fmt::Debug for Interrupts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interrupts").field("total", &self.total()).field("first", &self.first()).finish()
    }
}

impl Interrupts {
    /// Installs handlers for SIGINT, SIGTERM and SIGHUP (inside a tokio runtime). Until
    /// [`guard`](Self::guard) is called they end the process with 128 + the signal number.
    pub fn install() -> std::io::Result<Interrupts> {
        use tokio::signal::unix::{signal, SignalKind};
        let me = Interrupts::default();
        for (kind, name, number) in [
            (SignalKind::interrupt(), "SIGINT", libc::SIGINT),
            (SignalKind::terminate(), "SIGTERM", libc::SIGTERM),
            (SignalKind::hangup(), "SIGHUP", libc::SIGHUP),
        ] {
            let mut stream = signal(kind)?;
            let me = me.clone();
            tokio::spawn(async move {
                while stream.recv().await.is_some() {
                    if !me.inner.guarded.load(Ordering::SeqCst) {
                        std::process::exit(128 + number);
                    }
                    me.raise(name);
                }
            });
        }
        Ok(me)
    }

    /// From now on, signals are recorded instead of ending the process.
    pub fn guard(&self) {
        self.inner.guarded.store(true, Ordering::SeqCst);
    }

    /// Records a signal (the handler calls this; tests may too).
    pub fn raise(&self, name: &'static str) {
        {
            let mut first = self.inner.first.lock().unwrap_or_else(|e| e.into_inner());
            first.get_or_insert(name);
        }
        if name == "SIGINT" {
            self.inner.sigints.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.total.fetch_add(1, Ordering::SeqCst);
        self.inner.notify.notify_waiters();
    }

    /// Any signal so far?
    pub fn any(&self) -> bool {
        self.total() > 0
    }

    pub fn total(&self) -> u32 {
        self.inner.total.load(Ordering::SeqCst)
    }

    /// SIGINTs so far.
    pub fn sigints(&self) -> u32 {
        self.inner.sigints.load(Ordering::SeqCst)
    }

    /// The first signal's name.
    pub fn first(&self) -> Option<&'static str> {
        *self.inner.first.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The reason a verdict cites: `interrupted (SIGINT)`.
    pub fn reason(&self) -> String {
        format!("interrupted ({})", self.first().unwrap_or("signal"))
    }

    /// Resolves once `total()` exceeds `seen`.
    pub async fn wait_beyond(&self, seen: u32) {
        loop {
            let n = self.inner.notify.notified();
            tokio::pin!(n);
            n.as_mut().enable();
            if self.total() > seen {
                return;
            }
            n.await;
        }
    }

    /// Resolves once `sigints()` exceeds `seen`.
    pub async fn wait_sigint_beyond(&self, seen: u32) {
        loop {
            let n = self.inner.notify.notified();
            tokio::pin!(n);
            n.as_mut().enable();
            if self.sigints() > seen {
                return;
            }
            n.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn raised_signals_are_counted_and_wake_waiters() {
        let i = Interrupts::default();
        assert!(!i.any());
        let w = i.clone();
        let waiter = tokio::spawn(async move { w.wait_beyond(0).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        i.raise("SIGHUP");
        tokio::time::timeout(Duration::from_secs(1), waiter).await.expect("woken").unwrap();
        assert_eq!((i.total(), i.sigints()), (1, 0));
        assert_eq!(i.reason(), "interrupted (SIGHUP)");
        i.raise("SIGINT");
        assert_eq!(i.sigints(), 1);
        assert_eq!(i.first(), Some("SIGHUP"));
        tokio::time::timeout(Duration::from_secs(1), i.wait_sigint_beyond(0)).await.expect("already beyond");
    }
}
