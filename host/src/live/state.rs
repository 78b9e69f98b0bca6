//! The bot state machine, in one place: which commands each state allows,
//! which are no-ops, and where each leads.
//!
//! | state    | plugin called | new entries | commands (besides reconfigure and reads) |
//! |----------|---------------|-------------|------------------------------------------|
//! | stopped  | no            | -           | start, delete, close-all, cancel-pending |
//! | running  | yes           | if trading state allows | stop, pause, kill, close-all, cancel-pending |
//! | paused   | yes (warm)    | refused     | resume, stop, kill, close-all, cancel-pending |
//! | killed   | no            | refused     | reset (-> stopped)                       |
//! | error    | no            | refused     | reset (-> stopped), delete, close-all, cancel-pending |
//!
//! A command that would change nothing (start on a running bot, kill on a
//! killed one) succeeds without side effects.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BotState {
    #[default]
    Stopped,
    Running,
    Paused,
    Killed,
    Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CommandKind {
    Start,
    Stop,
    Pause,
    Resume,
    Kill,
    Reset,
    CloseAll,
    CancelPending,
    Delete,
}

impl CommandKind {
    pub fn name(self) -> &'static str {
        match self {
            CommandKind::Start => "start",
            CommandKind::Stop => "stop",
            CommandKind::Pause => "pause",
            CommandKind::Resume => "resume",
            CommandKind::Kill => "kill",
            CommandKind::Reset => "reset",
            CommandKind::CloseAll => "close-all",
            CommandKind::CancelPending => "cancel-pending",
            CommandKind::Delete => "delete",
        }
    }
}

impl BotState {
    /// The name clients see.
    pub fn name(self) -> &'static str {
        match self {
            BotState::Stopped => "stopped",
            BotState::Running => "running",
            BotState::Paused => "paused",
            BotState::Killed => "killed",
            BotState::Error => "error",
        }
    }

    /// The state as a sentence says it: "while the bot is in error".
    pub fn phrase(self) -> &'static str {
        match self {
            BotState::Error => "in error",
            other => other.name(),
        }
    }

    /// Commands this state allows (reconfigure and reads are always allowed).
    pub fn allowed_commands(self) -> &'static [CommandKind] {
        use CommandKind::*;
        match self {
            BotState::Stopped => &[Start, Delete, CloseAll, CancelPending],
            BotState::Running => &[Stop, Pause, Kill, CloseAll, CancelPending],
            BotState::Paused => &[Resume, Stop, Kill, CloseAll, CancelPending],
            BotState::Killed => &[Reset],
            BotState::Error => &[Reset, Delete, CloseAll, CancelPending],
        }
    }

    /// Commands that are accepted and change nothing in this state.
    fn no_op(self, command: CommandKind) -> bool {
        use CommandKind::*;
        matches!(
            (self, command),
            (BotState::Running, Start)
                | (BotState::Stopped, Stop)
                | (BotState::Paused, Pause)
                | (BotState::Killed, Kill)
        )
    }

    /// What `command` does in this state.
    pub fn transition(self, command: CommandKind) -> Transition {
        if self.no_op(command) {
            return Transition::NoOp;
        }
        if !self.allowed_commands().contains(&command) {
            return Transition::Refused;
        }
        use CommandKind::*;
        Transition::To(match command {
            Start | Resume => BotState::Running,
            Stop | Reset => BotState::Stopped,
            Pause => BotState::Paused,
            Kill => BotState::Killed,
            CloseAll | CancelPending | Delete => self,
        })
    }

    /// Whether candles go to the plugin in this state.
    pub fn consumes_candles(self) -> bool {
        matches!(self, BotState::Running | BotState::Paused)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    To(BotState),
    NoOp,
    Refused,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_of_the_design() {
        use CommandKind::*;
        assert_eq!(
            BotState::Stopped.transition(Start),
            Transition::To(BotState::Running)
        );
        assert_eq!(BotState::Running.transition(Start), Transition::NoOp);
        assert_eq!(
            BotState::Running.transition(Pause),
            Transition::To(BotState::Paused)
        );
        assert_eq!(BotState::Paused.transition(Start), Transition::Refused);
        assert_eq!(
            BotState::Paused.transition(Resume),
            Transition::To(BotState::Running)
        );
        assert_eq!(BotState::Killed.transition(Start), Transition::Refused);
        assert_eq!(BotState::Killed.transition(Kill), Transition::NoOp);
        assert_eq!(
            BotState::Killed.transition(Reset),
            Transition::To(BotState::Stopped)
        );
        assert_eq!(BotState::Error.transition(Start), Transition::Refused);
        assert_eq!(BotState::Running.transition(Delete), Transition::Refused);
        assert_eq!(
            BotState::Stopped.transition(CloseAll),
            Transition::To(BotState::Stopped)
        );
    }
}
