//! MISC_CHECK: the operator's script decides. Exit 0 is up, 1 down; with
//! misc_dynamic, 2-255 is up with weight exit-2 (keepalived's check_misc.c).
//! Killed with its process group at misc_timeout (default delay_loop).

use std::time::Duration;

use super::Outcome;
use crate::{
    config::model::{Command, ScriptUser},
    track::exec,
};

pub async fn check(
    cmd: &Command,
    timeout: Duration,
    dynamic: bool,
    user: Option<&ScriptUser>,
) -> Outcome {
    let (outcome, _) = exec::run(cmd, &[], cmd.user.as_ref().or(user), timeout).await;
    judge(outcome, dynamic, &cmd.text)
}

fn judge(outcome: exec::Outcome, dynamic: bool, text: &str) -> Outcome {
    match outcome {
        exec::Outcome::Exit(0) => Outcome::Up,
        exec::Outcome::Exit(code @ 2..=255) if dynamic => Outcome::UpWeight(code as u32 - 2),
        exec::Outcome::Exit(code) => Outcome::Down(format!("MISC_CHECK `{text}` exited {code}")),
        exec::Outcome::Signal(s) => {
            Outcome::Down(format!("MISC_CHECK `{text}` killed by signal {s}"))
        }
        exec::Outcome::Timeout => Outcome::Down(format!("MISC_CHECK `{text}` timed out")),
        exec::Outcome::NotRun => Outcome::Down(format!("MISC_CHECK `{text}` could not be run")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_read_as_keepalived_reads_them() {
        assert_eq!(judge(exec::Outcome::Exit(0), false, "x"), Outcome::Up);
        assert!(!judge(exec::Outcome::Exit(1), true, "x").ok());
        assert!(
            !judge(exec::Outcome::Exit(7), false, "x").ok(),
            "without misc_dynamic"
        );
        assert_eq!(
            judge(exec::Outcome::Exit(2), true, "x"),
            Outcome::UpWeight(0)
        );
        assert_eq!(
            judge(exec::Outcome::Exit(12), true, "x"),
            Outcome::UpWeight(10)
        );
        assert!(!judge(exec::Outcome::Timeout, true, "x").ok());
    }
}
