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
}

impl Player {
    pub fn play(&mut self, prompts: Vec<Arc<Prompt>>) {
        self.queue = prompts.into();
        self.frame = 0;
        self.active = !self.queue.is_empty();
    }

    pub fn stop(&mut self) {
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
}
