//! In-band DTMF detection with the Goertzel algorithm (ITU-T Q.24 tones), for
//! callers that send no RFC 4733 events.
//!
//! Each 20 ms frame (160 samples at 8 kHz) is measured at the eight DTMF
//! frequencies. A frame holds a key when the strongest row and column tones are
//! loud enough, each dominates its group, their ratio (twist) is within limits,
//! and together they carry most of the frame's energy (speech spreads its energy;
//! a DTMF tone does not). A key is reported after two consecutive frames (≥ 40 ms,
//! Q.24 asks for detection from 40 ms) and not again until a frame without it.

use super::dtmf::Digit;

const ROWS: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
const COLS: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
const KEYS: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];
pub const FRAME: usize = 160;

/// Minimum power of each tone (per-sample mean square of a sine of amplitude
/// about 300, roughly -40 dBm0).
const MIN_TONE_POWER: f32 = 300.0 * 300.0 / 2.0;
/// Normal twist (column louder) and reverse twist limits, as power ratios.
const MAX_TWIST: f32 = 6.3; // 8 dB
const MAX_REV_TWIST: f32 = 2.5; // 4 dB
/// Each winning tone must beat the others in its group by this power ratio.
const GROUP_DOMINANCE: f32 = 6.3;
/// The two tones together must hold this share of the frame's energy.
const MIN_ENERGY_SHARE: f32 = 0.6;
const FRAMES_TO_CONFIRM: u8 = 2;

fn coefficients() -> [f32; 8] {
    let mut c = [0.0; 8];
    for (i, f) in ROWS.iter().chain(COLS.iter()).enumerate() {
        c[i] = 2.0 * (2.0 * std::f32::consts::PI * f / 8000.0).cos();
    }
    c
}

/// The mean-square power of `samples` at the frequency with Goertzel `coeff`.
fn goertzel_power(samples: &[i16], coeff: f32) -> f32 {
    let (mut s1, mut s2) = (0.0f32, 0.0f32);
    for &x in samples {
        let s0 = x as f32 + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let n = samples.len() as f32;
    // |X(k)|² scaled so that a sine of amplitude A gives A²/2.
    (s1 * s1 + s2 * s2 - coeff * s1 * s2) * 2.0 / (n * n)
}

/// Classifies one frame: the key it holds, if any.
pub fn detect_frame(samples: &[i16]) -> Option<Digit> {
    if samples.len() < FRAME / 2 {
        return None;
    }
    let coeffs = coefficients();
    let mut p = [0.0f32; 8];
    for (i, c) in coeffs.iter().enumerate() {
        p[i] = goertzel_power(samples, *c);
    }
    let best = |g: &[f32]| {
        let (i, &max) = g
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap_or((0, &0.0));
        let second = g
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, v)| *v)
            .fold(0.0f32, f32::max);
        (i, max, second)
    };
    let (r, rp, r2) = best(&p[..4]);
    let (c, cp, c2) = best(&p[4..]);
    if rp < MIN_TONE_POWER || cp < MIN_TONE_POWER {
        return None;
    }
    if rp < r2 * GROUP_DOMINANCE || cp < c2 * GROUP_DOMINANCE {
        return None;
    }
    if cp > rp * MAX_TWIST || rp > cp * MAX_REV_TWIST {
        return None;
    }
    let total: f32 = samples
        .iter()
        .map(|&x| (x as f32) * (x as f32))
        .sum::<f32>()
        / samples.len() as f32;
    if rp + cp < MIN_ENERGY_SHARE * total {
        return None;
    }
    Some(Digit(KEYS[r][c]))
}

/// Per-call in-band detector: frames in, confirmed key presses out.
#[derive(Debug, Default)]
pub struct ToneDetector {
    candidate: Option<Digit>,
    frames: u8,
    reported: bool,
}

impl ToneDetector {
    pub fn on_frame(&mut self, samples: &[i16]) -> Option<Digit> {
        let d = detect_frame(samples);
        if d != self.candidate {
            self.candidate = d;
            self.frames = 0;
            self.reported = false;
        }
        d?;
        self.frames = self.frames.saturating_add(1);
        if self.frames >= FRAMES_TO_CONFIRM && !self.reported {
            self.reported = true;
            return d;
        }
        None
    }
}

/// Generates the tone for a key (test and tooling helper): `ms` milliseconds at
/// amplitude `amp` per tone, 8 kHz.
pub fn generate(key: char, ms: usize, amp: f32) -> Vec<i16> {
    let (mut r, mut c) = (0, 0);
    for (i, row) in KEYS.iter().enumerate() {
        if let Some(j) = row.iter().position(|k| *k == key) {
            (r, c) = (i, j);
        }
    }
    let n = ms * 8;
    (0..n)
        .map(|i| {
            let t = i as f32 / 8000.0;
            let v = amp * (2.0 * std::f32::consts::PI * ROWS[r] * t).sin()
                + amp * (2.0 * std::f32::consts::PI * COLS[c] * t).sin();
            v.clamp(-32768.0, 32767.0) as i16
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(samples: &[i16]) -> Vec<char> {
        let mut d = ToneDetector::default();
        samples
            .chunks(FRAME)
            .filter_map(|f| d.on_frame(f))
            .map(|d| d.0)
            .collect()
    }

    /// A small deterministic noise source (xorshift).
    fn noise(n: usize, amp: f32, seed: u32) -> Vec<i16> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                ((x as f32 / u32::MAX as f32 - 0.5) * 2.0 * amp) as i16
            })
            .collect()
    }

    #[test]
    fn every_key_once() {
        for key in "0123456789*#ABCD".chars() {
            let mut s = vec![0i16; 400];
            s.extend(generate(key, 100, 4000.0));
            s.extend(vec![0i16; 800]);
            assert_eq!(run(&s), vec![key], "key {key}");
        }
    }

    #[test]
    fn two_presses_of_the_same_key() {
        let mut s = generate('7', 80, 4000.0);
        s.extend(vec![0i16; 480]);
        s.extend(generate('7', 80, 4000.0));
        assert_eq!(run(&s), vec!['7', '7']);
    }

    #[test]
    fn tones_in_noise() {
        let tone = generate('5', 100, 3000.0);
        let n = noise(tone.len(), 1000.0, 7);
        let mixed: Vec<i16> = tone
            .iter()
            .zip(&n)
            .map(|(a, b)| a.saturating_add(*b))
            .collect();
        assert_eq!(run(&mixed), vec!['5']);
        // Noise alone triggers nothing.
        assert!(run(&noise(8000 * 5, 8000.0, 3)).is_empty());
    }

    #[test]
    fn too_short_quiet_or_twisted_tones_are_ignored() {
        assert!(run(&generate('3', 20, 4000.0)).is_empty());
        assert!(run(&generate('3', 100, 100.0)).is_empty());
        // One tone alone (a dial-tone-like single frequency).
        let single: Vec<i16> = (0..1600)
            .map(|i| {
                (6000.0 * (2.0 * std::f32::consts::PI * 941.0 * i as f32 / 8000.0).sin()) as i16
            })
            .collect();
        assert!(run(&single).is_empty());
    }

    #[test]
    fn speech_does_not_trigger() {
        // Real speech: the shipped welcome prompts, decoded as the engine does.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("audio");
        for name in [
            "sv/welcome.wav",
            "en/welcome.wav",
            "sv/goodbye.mp3",
            "en/goodbye.mp3",
        ] {
            let pcm = crate::media::prompt::decode_file(&dir.join(name)).unwrap();
            assert!(pcm.len() > 8000, "{name} too short");
            assert!(run(&pcm).is_empty(), "{name} triggered the detector");
        }
    }
}
