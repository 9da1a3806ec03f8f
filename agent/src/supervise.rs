//! Supervised background tasks (docs/design.md rule 6): a task that fails takes
//! the agent down with a non-zero exit, so the service manager restarts it
//! and the restart resumes hitlessly. An agent whose ring reader or control
//! server died silently would be an Active deaf to other routers, or a
//! daemon nobody can ask: worse than a restart.

use std::future::Future;

use tokio::sync::mpsc;

/// Exit status after a supervised task failed (EX_SOFTWARE). Like SIGQUIT's
/// 75, it leaves the dataplane, VIPs and vmacs as they are, so the restart
/// re-adopts them without a transition.
pub const TASK_FAILED_EXIT_CODE: i32 = 70;

/// Fault injection for the tests: `XVRRP_FAIL_TASK=NAME` makes the task
/// whose name starts with NAME fail a second after it starts.
const FAIL_TASK_ENV: &str = "XVRRP_FAIL_TASK";

/// A task that ended with an error: its name and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub task: String,
    pub error: String,
}

/// Spawns tasks and reports the ones that fail to the event loop.
#[derive(Clone)]
pub struct Tasks {
    failures: mpsc::UnboundedSender<Failure>,
}

impl Tasks {
    /// The spawner and the receiver the event loop selects on.
    pub fn new() -> (Tasks, mpsc::UnboundedReceiver<Failure>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Tasks { failures: tx }, rx)
    }

    /// Runs `task`; an `Err` is reported as a failure of `name`. `Ok` is an
    /// intended end (its receiver went away at shutdown).
    pub fn spawn<F>(&self, name: impl Into<String>, task: F) -> tokio::task::JoinHandle<()>
    where
        F: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let name = name.into();
        let failures = self.failures.clone();
        let inject = std::env::var(FAIL_TASK_ENV)
            .ok()
            .filter(|n| !n.is_empty() && name.starts_with(n.as_str()));
        tokio::spawn(async move {
            let result = match inject {
                Some(_) => tokio::select! {
                    r = task => r,
                    _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {
                        Err(anyhow::anyhow!("failure injected by {FAIL_TASK_ENV}"))
                    }
                },
                None => task.await,
            };
            if let Err(e) = result {
                let _ = failures.send(Failure {
                    task: name,
                    error: format!("{e:#}"),
                });
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failing_task_is_reported_with_its_error_and_an_ending_one_is_not() {
        let (tasks, mut failures) = Tasks::new();
        tasks.spawn("ends", async { Ok(()) }).await.unwrap();
        tasks
            .spawn("breaks", async { Err(anyhow::anyhow!("socket closed")) })
            .await
            .unwrap();
        assert_eq!(
            failures.recv().await,
            Some(Failure {
                task: "breaks".into(),
                error: "socket closed".into()
            })
        );
        assert!(failures.try_recv().is_err());
    }
}
