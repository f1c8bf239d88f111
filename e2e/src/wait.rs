//! Polling helpers: wait until the cluster reaches a state, with a deadline and a clear error.

use std::{fmt::Display, future::Future, time::Duration};

use anyhow::{Result, bail};
use tokio::time::{Instant, sleep};

/// Polls `check` every 250 ms until it returns `Ok(Some(value))`, then returns the value.
///
/// `Ok(None)` means "not yet"; an `Err` is remembered (the cluster may be settling) and shown if
/// the deadline passes. The error names `what` and how long was waited.
pub async fn until<T, E, F, Fut>(timeout: Duration, what: &str, mut check: F) -> Result<T>
where
    E: Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<Option<T>, E>>,
{
    let start = Instant::now();
    let mut last_error = None;
    loop {
        match check().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(err) => last_error = Some(err.to_string()),
        }
        if start.elapsed() >= timeout {
            match last_error {
                Some(err) => bail!(
                    "timed out after {:.0?} waiting for {what} (last error: {err})",
                    timeout
                ),
                None => bail!("timed out after {:.0?} waiting for {what}", timeout),
            }
        }
        sleep(Duration::from_millis(250)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn returns_the_first_ready_value() {
        let mut n = 0;
        let got = until(Duration::from_secs(5), "n to reach 3", || {
            n += 1;
            let v = n;
            async move { Ok::<_, String>((v >= 3).then_some(v)) }
        })
        .await
        .unwrap();
        assert_eq!(got, 3);
    }

    #[tokio::test]
    async fn times_out_with_the_last_error() {
        let err = until(Duration::from_millis(300), "never", || async {
            Err::<Option<()>, _>("boom")
        })
        .await
        .unwrap_err()
        .to_string();
        assert!(err.contains("waiting for never"), "{err}");
        assert!(err.contains("last error: boom"), "{err}");
    }
}
