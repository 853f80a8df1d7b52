//! The built-in answering behaviour, used until call flows exist: play the
//! welcome (Swedish, then English), then read back each key pressed ("fem",
//! "five"), barging in on whatever plays; after `#` say goodbye and hang up;
//! after 20 s with no key press, hang up. Pure: events in, commands out.

use crate::media::dtmf::Digit;
use std::time::{Duration, Instant};

/// What the app asks the call to do (imperative).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Stop whatever plays and play these prompts, in order.
    Play(Vec<String>),
    Hangup,
}

/// What happened to the call (past tense).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppEvent {
    Answered,
    PlaybackFinished,
    DigitReceived(Digit),
}

#[derive(Debug)]
pub struct Builtin {
    languages: Vec<String>,
    silence: Duration,
    deadline: Option<Instant>,
    leaving: bool,
}

fn digit_name(d: Digit) -> String {
    match d.0 {
        '*' => "digit-star".into(),
        '#' => "digit-hash".into(),
        c => format!("digit-{c}"),
    }
}

impl Builtin {
    pub fn new(languages: Vec<String>, silence: Duration) -> Builtin {
        Builtin {
            languages,
            silence,
            deadline: None,
            leaving: false,
        }
    }

    fn each_language(&self, prompt: &str) -> Vec<String> {
        self.languages
            .iter()
            .map(|l| format!("{l}/{prompt}"))
            .collect()
    }

    pub fn on_event(&mut self, now: Instant, ev: AppEvent) -> Vec<Command> {
        match ev {
            AppEvent::Answered => {
                self.deadline = None;
                vec![Command::Play(self.each_language("welcome"))]
            }
            AppEvent::PlaybackFinished if self.leaving => vec![Command::Hangup],
            AppEvent::PlaybackFinished => {
                self.deadline = Some(now + self.silence);
                vec![]
            }
            AppEvent::DigitReceived(_) if self.leaving => vec![],
            AppEvent::DigitReceived(Digit('#')) => {
                self.leaving = true;
                self.deadline = None;
                vec![Command::Play(self.each_language("goodbye"))]
            }
            AppEvent::DigitReceived(d) => {
                self.deadline = None;
                vec![Command::Play(self.each_language(&digit_name(d)))]
            }
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    pub fn handle_timeout(&mut self, now: Instant) -> Vec<Command> {
        match self.deadline {
            Some(d) if now >= d => {
                self.deadline = None;
                vec![Command::Hangup]
            }
            _ => vec![],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn welcome_digits_silence_and_hash() {
        let t0 = Instant::now();
        let mut app = Builtin::new(vec!["sv".into(), "en".into()], Duration::from_secs(20));
        assert_eq!(
            app.on_event(t0, AppEvent::Answered),
            vec![Command::Play(vec![
                "sv/welcome".into(),
                "en/welcome".into()
            ])]
        );
        assert_eq!(
            app.on_event(t0, AppEvent::DigitReceived(Digit('5'))),
            vec![Command::Play(vec![
                "sv/digit-5".into(),
                "en/digit-5".into()
            ])]
        );
        app.on_event(t0, AppEvent::PlaybackFinished);
        assert_eq!(app.poll_timeout(), Some(t0 + Duration::from_secs(20)));
        assert!(app.handle_timeout(t0 + Duration::from_secs(19)).is_empty());
        assert_eq!(
            app.handle_timeout(t0 + Duration::from_secs(20)),
            vec![Command::Hangup]
        );
        let mut app = Builtin::new(vec!["sv".into()], Duration::from_secs(20));
        assert_eq!(
            app.on_event(t0, AppEvent::DigitReceived(Digit('#'))),
            vec![Command::Play(vec!["sv/goodbye".into()])]
        );
        assert!(app
            .on_event(t0, AppEvent::DigitReceived(Digit('1')))
            .is_empty());
        assert_eq!(
            app.on_event(t0, AppEvent::PlaybackFinished),
            vec![Command::Hangup]
        );
    }
}
