//! The prompt player: a queue of cached prompts read out frame by frame.
//! Playing copies nothing until a frame is sent, and then only a slice.

use super::g711::Codec;
use super::prompt::Prompt;
use std::collections::VecDeque;
use std::sync::Arc;

#[derive(Debug, Default)]
pub struct Player {
    queue: VecDeque<Arc<Prompt>>,
    frame: usize,
    active: bool,
    /// Played again and again once the queue runs out (music on hold).
    looped: Option<Arc<Prompt>>,
}

impl Player {
    pub fn play(&mut self, prompts: Vec<Arc<Prompt>>) {
        self.queue = prompts.into();
        self.frame = 0;
        self.active = !self.queue.is_empty();
        self.looped = None;
    }

    /// Plays `prompt` in a loop until the next `play` or `stop` (never finishes).
    pub fn play_looped(&mut self, prompt: Arc<Prompt>) {
        self.play(vec![prompt.clone()]);
        self.looped = (prompt.frames() > 0).then_some(prompt);
    }

    /// Plays `prompts`, then `looped` again and again (an announcement over
    /// music on hold: the music resumes from its start).
    pub fn play_then_loop(&mut self, prompts: Vec<Arc<Prompt>>, looped: Arc<Prompt>) {
        self.play(prompts);
        if self.queue.is_empty() {
            return self.play_looped(looped);
        }
        self.looped = (looped.frames() > 0).then_some(looped);
    }

    pub fn stop(&mut self) {
        self.looped = None;
        self.queue.clear();
        self.frame = 0;
        self.active = false;
    }

    pub fn is_playing(&self) -> bool {
        self.active
    }

    /// The next frame, and whether this call finished the queue (reported once).
    pub fn next_frame(&mut self, codec: Codec) -> (Option<&[u8]>, bool) {
        while let Some(p) = self.queue.front() {
            if self.frame < p.frames() {
                break;
            }
            self.queue.pop_front();
            self.frame = 0;
            if self.queue.is_empty() {
                if let Some(l) = &self.looped {
                    self.queue.push_back(l.clone());
                }
            }
        }
        let Some(p) = self.queue.front() else {
            let finished = std::mem::take(&mut self.active);
            return (None, finished);
        };
        let i = self.frame;
        self.frame += 1;
        (p.frame(codec, i), false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plays_frames_in_order_then_reports_once() {
        let a = Arc::new(Prompt::from_pcm("a", vec![1000; 320]));
        let b = Arc::new(Prompt::from_pcm("b", vec![-1000; 100]));
        let mut p = Player::default();
        p.play(vec![a.clone(), b.clone()]);
        let mut frames = vec![];
        let mut finished = 0;
        for _ in 0..6 {
            let (f, done) = p.next_frame(Codec::Pcmu);
            if let Some(f) = f {
                frames.push(f.to_vec());
            }
            finished += done as usize;
        }
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[0], a.pcmu[..160]);
        assert_eq!(frames[2], b.pcmu[..160]);
        assert_eq!(finished, 1);
        assert!(!p.is_playing());
    }

    #[test]
    fn a_looped_prompt_never_finishes() {
        let a = Arc::new(Prompt::from_pcm("a", vec![1000; 320]));
        let mut p = Player::default();
        p.play_looped(a.clone());
        for _ in 0..7 {
            let (f, done) = p.next_frame(Codec::Pcmu);
            assert!(f.is_some() && !done);
        }
        p.stop();
        assert!(!p.is_playing());
    }
}
