//! vrrp_sync_group: virtual routers that move together. When one member
//! becomes Active (or Backup) on its own, the others follow; one member in
//! Fault puts the whole group in Fault until every member is healthy again.

use std::time::Instant;

use super::{Action, Input, Reason, Router, State};

#[derive(Debug, Clone)]
pub struct SyncGroup {
    pub name: String,
    members: Vec<Router>,
}

impl SyncGroup {
    pub fn new(name: &str, members: Vec<Router>) -> SyncGroup {
        SyncGroup {
            name: name.to_owned(),
            members,
        }
    }

    pub fn members(&self) -> &[Router] {
        &self.members
    }

    /// The group's state: Fault if any member is, else Active if any is.
    pub fn state(&self) -> State {
        let states: Vec<State> = self.members.iter().map(|m| m.state()).collect();
        if states.contains(&State::Fault) {
            State::Fault
        } else if states.contains(&State::Active) {
            State::Active
        } else if states.contains(&State::Backup) {
            State::Backup
        } else {
            State::Initialize
        }
    }

    #[must_use]
    pub fn next_deadline(&self) -> Option<Instant> {
        self.members.iter().filter_map(|m| m.next_deadline()).min()
    }

    /// Feeds `input` to member `index` (or, for Startup/Shutdown/Timeout, to
    /// every member), then moves the others along. Actions are tagged with
    /// the member they belong to.
    #[must_use]
    pub fn handle(&mut self, now: Instant, index: usize, input: Input) -> Vec<(usize, Action)> {
        let mut out: Vec<(usize, Action)> = Vec::new();
        let targets: Vec<usize> = match input {
            Input::Startup | Input::Shutdown | Input::Timeout | Input::Resume => {
                (0..self.members.len()).collect()
            }
            _ => vec![index],
        };
        for i in targets {
            let actions = self.members[i].handle(now, input.clone());
            out.extend(actions.into_iter().map(|a| (i, a)));
        }
        if matches!(input, Input::Shutdown) {
            return out;
        }
        // A member that moved on its own (not pushed by the group).
        let moved = out.iter().rev().find_map(|(_, a)| match a {
            Action::Transition { to, reason, .. }
                if !matches!(reason, Reason::Group(_))
                    && matches!(to, State::Active | State::Backup) =>
            {
                Some(*to)
            }
            _ => None,
        });
        let push = |group: &mut SyncGroup,
                    out: &mut Vec<(usize, Action)>,
                    to: State,
                    which: &dyn Fn(&Router) -> bool| {
            for i in 0..group.members.len() {
                if which(&group.members[i]) {
                    let actions = group.members[i].handle(now, Input::Group(to));
                    out.extend(actions.into_iter().map(|a| (i, a)));
                }
            }
        };
        if self.members.iter().any(|m| m.own_fault()) {
            push(self, &mut out, State::Fault, &|m| {
                !m.held_by_group() && !m.own_fault()
            });
        } else if self.members.iter().any(|m| m.held_by_group()) {
            push(self, &mut out, State::Backup, &|m| m.held_by_group());
        } else if let Some(to) = moved {
            push(self, &mut out, to, &|m| {
                m.state() != to && matches!(m.state(), State::Active | State::Backup)
            });
        }
        out
    }
}
