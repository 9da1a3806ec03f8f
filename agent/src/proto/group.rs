//! vrrp_sync_group: virtual routers that move together. One member in Fault
//! puts the whole group in Fault until every member is healthy again. A
//! member whose Active_Down timer runs out *wants* Active; the group goes
//! Active only when every member does (keepalived, vrrp_sync.c: "prefer
//! backup state to avoid thrashing") — a member that still hears a
//! higher-priority Active keeps the whole group Backup, instead of being
//! dragged Active, sending the other back, and cycling every interval.
//! A member that goes Backup on its own (a higher priority heard) takes the
//! others along.

use std::time::Instant;

use super::{Action, Input, Reason, Router, State};

#[derive(Debug, Clone)]
pub struct SyncGroup {
    pub name: String,
    members: Vec<Router>,
    /// Members whose Active_Down timer ran out and that wait for the rest.
    wants_active: Vec<bool>,
    /// One member's actions while they are tagged (kept: no allocation
    /// per input).
    scratch: Vec<Action>,
}

impl SyncGroup {
    pub fn new(name: &str, members: Vec<Router>) -> SyncGroup {
        SyncGroup {
            name: name.to_owned(),
            wants_active: vec![false; members.len()],
            members,
            scratch: Vec::new(),
        }
    }

    pub fn members(&self) -> &[Router] {
        &self.members
    }

    /// Member `index`'s Adver_Timer, lent (`Router::lend_adver_timer`).
    pub fn lend_adver_timer(&mut self, index: usize) -> Option<super::router::LentTimer> {
        self.members[index].lend_adver_timer()
    }

    /// Gives member `index` its lent Adver_Timer back.
    pub fn return_adver_timer(&mut self, index: usize, due: Instant) {
        self.members[index].return_adver_timer(due);
    }

    /// The group's state: Fault if any member is, else Active if any is.
    pub fn state(&self) -> State {
        let any = |s: State| self.members.iter().any(|m| m.state() == s);
        if any(State::Fault) {
            State::Fault
        } else if any(State::Active) {
            State::Active
        } else if any(State::Backup) {
            State::Backup
        } else {
            State::Initialize
        }
    }

    /// Whether member `index` would go Active the moment its Active_Down
    /// timer runs out: a Backup (so not Fault) whose group lets it — every
    /// other member Active already, or waiting for its own takeover
    /// (`gate_takeover`'s rule). The kernel may then take over for it.
    pub fn takes_over_on_expiry(&self, index: usize) -> bool {
        self.members[index].state() == State::Backup
            && self
                .members
                .iter()
                .zip(&self.wants_active)
                .enumerate()
                .all(|(j, (m, w))| j == index || m.state() == State::Active || *w)
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
        let mut out = Vec::new();
        self.handle_into(now, index, input, &mut out);
        out
    }

    /// `handle`, appending the tagged actions to `out` (a buffer the caller
    /// keeps: a steady Active's interval costs no allocation).
    pub fn handle_into(
        &mut self,
        now: Instant,
        index: usize,
        input: Input,
        out: &mut Vec<(usize, Action)>,
    ) {
        let start = out.len();
        if let Input::Timeout = input {
            self.gate_takeover(now);
        }
        let targets = match input {
            Input::Startup | Input::Shutdown | Input::Timeout | Input::Resume => {
                0..self.members.len()
            }
            _ => index..index + 1,
        };
        let mut actions = std::mem::take(&mut self.scratch);
        for i in targets {
            actions.clear();
            self.members[i].handle_into(now, input.clone(), &mut actions);
            // An advert the member followed: it hears an Active again.
            if matches!(input, Input::Advert(_))
                && !actions
                    .iter()
                    .any(|a| matches!(a, Action::Discarded { .. }))
                && !self.members[i].down_due(now)
            {
                self.wants_active[i] = false;
            }
            out.extend(actions.drain(..).map(|a| (i, a)));
        }
        self.scratch = actions;
        if self.members.iter().all(|m| m.state() != State::Backup) {
            self.wants_active.iter_mut().for_each(|w| *w = false);
        }
        if matches!(input, Input::Shutdown) {
            return;
        }
        // A member that moved on its own (not pushed by the group).
        let moved = out[start..].iter().rev().find_map(|(_, a)| match a {
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
            push(self, out, State::Fault, &|m| {
                !m.held_by_group() && !m.own_fault()
            });
        } else if self.members.iter().any(|m| m.held_by_group()) {
            push(self, out, State::Backup, &|m| m.held_by_group());
        } else if let Some(to) = moved {
            push(self, out, to, &|m| {
                m.state() != to && matches!(m.state(), State::Active | State::Backup)
            });
        }
    }

    /// Before a Timeout: members whose timer ran out want Active. Unless
    /// every member is Active or wants to be, they are held in Backup (timer
    /// re-armed) and nobody moves.
    fn gate_takeover(&mut self, now: Instant) {
        if self.members.len() < 2 {
            return;
        }
        for (i, m) in self.members.iter().enumerate() {
            if m.down_due(now) {
                self.wants_active[i] = true;
            }
        }
        let ready = self
            .members
            .iter()
            .zip(&self.wants_active)
            .all(|(m, w)| m.state() == State::Active || *w);
        if !ready {
            for (i, m) in self.members.iter_mut().enumerate() {
                if m.down_due(now) {
                    m.hold_backup(now);
                    debug_assert!(self.wants_active[i]);
                }
            }
        }
    }
}
