//! Prompts: audio files decoded once at start-up and cached, ready to send.
//!
//! Every file under the audio directory (WAV, MP3, OGG/Vorbis, FLAC) is decoded
//! with symphonia, mixed to mono, resampled to 8 kHz with rubato's FFT resampler
//! (band-limited, not sample dropping), and encoded to both PCMU and PCMA. A
//! prompt is named by its path without extension (`sv/welcome`). Playing a
//! prompt then only copies 160-byte frames out of these buffers.
//!
//! Loading is the one place this module touches the file system; it runs before
//! any call. An unreadable or unsupported file is an error naming the file.

use super::g711::Codec;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use thiserror::Error;

pub const RATE: u32 = 8000;
pub const FRAME_SAMPLES: usize = 160;
const EXTENSIONS: [&str; 5] = ["wav", "mp3", "ogg", "oga", "flac"];

#[derive(Debug, Error)]
pub enum PromptError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: unsupported or corrupt audio: {reason}")]
    Decode { path: PathBuf, reason: String },
    #[error("{path}: contains no audio")]
    Empty { path: PathBuf },
    #[error("{dir}: audio directory not found")]
    NoDir { dir: PathBuf },
}

/// One decoded prompt in every form the media path needs.
#[derive(Debug)]
pub struct Prompt {
    pub name: String,
    /// 8 kHz mono linear samples.
    pub pcm: Vec<i16>,
    pub pcmu: Vec<u8>,
    pub pcma: Vec<u8>,
}

impl Prompt {
    pub fn from_pcm(name: &str, pcm: Vec<i16>) -> Prompt {
        // Pad to whole 20 ms frames with silence so frames are plain slices.
        let mut pcm = pcm;
        let rem = pcm.len() % FRAME_SAMPLES;
        if rem != 0 {
            pcm.resize(pcm.len() + FRAME_SAMPLES - rem, 0);
        }
        Prompt {
            name: name.to_string(),
            pcmu: pcm.iter().map(|s| Codec::Pcmu.encode(*s)).collect(),
            pcma: pcm.iter().map(|s| Codec::Pcma.encode(*s)).collect(),
            pcm,
        }
    }

    pub fn frames(&self) -> usize {
        self.pcm.len() / FRAME_SAMPLES
    }

    pub fn duration_ms(&self) -> u64 {
        self.frames() as u64 * 20
    }

    /// The first frame that carries sound (more than half its samples away
    /// from the encoded silence): where a listener starts to hear the prompt.
    pub fn first_sounding_frame(&self, codec: Codec) -> Option<usize> {
        let silent = codec.silence();
        (0..self.frames()).find(|&i| {
            self.frame(codec, i)
                .is_some_and(|f| f.iter().filter(|b| **b != silent).count() > FRAME_SAMPLES / 2)
        })
    }

    /// The encoded 20 ms frame `i` (panics never: callers check `frames()`).
    pub fn frame(&self, codec: Codec, i: usize) -> Option<&[u8]> {
        let data = match codec {
            Codec::Pcmu => &self.pcmu,
            Codec::Pcma => &self.pcma,
        };
        data.get(i * FRAME_SAMPLES..(i + 1) * FRAME_SAMPLES)
    }
}

/// All prompts by name. Cheap to clone and share between shards.
#[derive(Clone, Debug, Default)]
pub struct PromptCache {
    prompts: Arc<HashMap<String, Arc<Prompt>>>,
}

impl PromptCache {
    pub fn from_prompts(list: Vec<Prompt>) -> PromptCache {
        PromptCache {
            prompts: Arc::new(
                list.into_iter()
                    .map(|p| (p.name.clone(), Arc::new(p)))
                    .collect(),
            ),
        }
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Prompt>> {
        self.prompts.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.prompts.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.prompts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.prompts.is_empty()
    }

    /// Loads every audio file under `dir`, recursively.
    pub fn load_dir(dir: &Path) -> Result<PromptCache, PromptError> {
        if !dir.is_dir() {
            return Err(PromptError::NoDir {
                dir: dir.to_path_buf(),
            });
        }
        let mut files = Vec::new();
        collect(dir, &mut files).map_err(|source| PromptError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        files.sort();
        let mut list = Vec::with_capacity(files.len());
        for f in files {
            let rel = f.strip_prefix(dir).unwrap_or(&f).with_extension("");
            let name = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            let pcm = decode_file(&f)?;
            list.push(Prompt::from_pcm(&name, pcm));
        }
        Ok(PromptCache::from_prompts(list))
    }
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        {
            out.push(path);
        }
    }
    Ok(())
}

/// Decodes one file to 8 kHz mono samples.
pub fn decode_file(path: &Path) -> Result<Vec<i16>, PromptError> {
    use symphonia::core::codecs::audio::AudioDecoderOptions;
    use symphonia::core::errors::Error as SymErr;
    use symphonia::core::formats::probe::Hint;
    use symphonia::core::formats::{FormatOptions, TrackType};
    use symphonia::core::io::MediaSourceStream;
    use symphonia::core::meta::MetadataOptions;

    let fail = |reason: String| PromptError::Decode {
        path: path.to_path_buf(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|source| PromptError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mss = MediaSourceStream::new(Box::new(file), Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    let mut format = symphonia::default::get_probe()
        .probe(
            &hint,
            mss,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(|e| fail(e.to_string()))?;
    let track = format
        .default_track(TrackType::Audio)
        .ok_or_else(|| fail("no audio track".into()))?;
    let params = track
        .codec_params
        .as_ref()
        .and_then(|p| p.audio())
        .ok_or_else(|| fail("no audio codec parameters".into()))?
        .clone();
    let track_id = track.id;
    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(&params, &AudioDecoderOptions::default())
        .map_err(|e| fail(e.to_string()))?;

    let mut mono: Vec<f32> = Vec::new();
    let mut rate = params.sample_rate.unwrap_or(0);
    let mut scratch: Vec<f32> = Vec::new();
    loop {
        let packet = match format.next_packet() {
            Ok(Some(p)) => p,
            Ok(None) => break,
            Err(SymErr::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(fail(e.to_string())),
        };
        if packet.track_id != track_id {
            continue;
        }
        match decoder.decode(&packet) {
            Ok(buf) => {
                rate = buf.spec().rate();
                let ch = buf.spec().channels().count().max(1);
                buf.copy_to_vec_interleaved(&mut scratch);
                mono.extend(
                    scratch
                        .chunks_exact(ch)
                        .map(|f| f.iter().sum::<f32>() / ch as f32),
                );
            }
            // A damaged packet is skipped, as players do; a file of nothing but
            // damage ends up empty and is refused below.
            Err(SymErr::DecodeError(_)) | Err(SymErr::IoError(_)) => continue,
            Err(e) => return Err(fail(e.to_string())),
        }
    }
    if mono.is_empty() || rate == 0 {
        return Err(PromptError::Empty {
            path: path.to_path_buf(),
        });
    }
    let resampled = resample(&mono, rate).map_err(fail)?;
    Ok(resampled
        .iter()
        .map(|s| (s * 32767.0).clamp(-32768.0, 32767.0) as i16)
        .collect())
}

/// Resamples mono audio from `rate` to 8 kHz.
pub fn resample(input: &[f32], rate: u32) -> Result<Vec<f32>, String> {
    use rubato::audioadapter_buffers::direct::SequentialSliceOfVecs;
    use rubato::{Fft, FixedSync, Resampler};
    if rate == RATE {
        return Ok(input.to_vec());
    }
    let mut r = Fft::<f32>::new(rate as usize, RATE as usize, 1024, 1, FixedSync::Input)
        .map_err(|e| e.to_string())?;
    let data = vec![input.to_vec()];
    let inbuf = SequentialSliceOfVecs::new(&data, 1, input.len()).map_err(|e| e.to_string())?;
    let out_len = r.process_all_needed_output_len(input.len());
    let mut out = vec![vec![0.0f32; out_len]];
    let mut outbuf =
        SequentialSliceOfVecs::new_mut(&mut out, 1, out_len).map_err(|e| e.to_string())?;
    let (_, n) = r
        .process_all_into_buffer(&inbuf, &mut outbuf, input.len(), None)
        .map_err(|e| e.to_string())?;
    let mut v = out.pop().unwrap_or_default();
    v.truncate(n);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn audio_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("audio")
    }

    #[test]
    fn resampler_keeps_a_tone_and_its_length() {
        let rate = 22050;
        let tone: Vec<f32> = (0..rate)
            .map(|i| 0.5 * (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / rate as f32).sin())
            .collect();
        let out = resample(&tone, rate).unwrap();
        assert!((out.len() as i64 - 8000).abs() <= 2, "len {}", out.len());
        // The 1 kHz tone survives at the same level: RMS of 0.5 sine is 0.354.
        let mid = &out[1000..7000];
        let rms = (mid.iter().map(|x| x * x).sum::<f32>() / mid.len() as f32).sqrt();
        assert!((rms - 0.3535).abs() < 0.02, "rms {rms}");
        // A 6 kHz tone (above the new Nyquist) is removed, not aliased to 2 kHz.
        let high: Vec<f32> = (0..rate)
            .map(|i| 0.5 * (2.0 * std::f32::consts::PI * 6000.0 * i as f32 / rate as f32).sin())
            .collect();
        let out = resample(&high, rate).unwrap();
        let rms = (out[1000..7000].iter().map(|x| x * x).sum::<f32>() / 6000.0).sqrt();
        assert!(rms < 0.01, "aliasing rms {rms}");
    }

    #[test]
    fn shipped_prompts_load_in_every_format() {
        let cache = PromptCache::load_dir(&audio_dir()).unwrap();
        for name in [
            "sv/welcome",
            "en/welcome",
            "sv/digit-5",
            "en/digit-5",
            "sv/goodbye",
            "music/hold",
        ] {
            let p = cache.get(name).unwrap_or_else(|| panic!("missing {name}"));
            assert!(p.duration_ms() > 200, "{name} too short");
            let peak = p.pcm.iter().map(|s| s.unsigned_abs()).max().unwrap();
            assert!(peak > 3000, "{name} is silent");
        }
    }

    #[test]
    fn broken_file_is_named() {
        let dir = std::env::temp_dir().join(format!("vaxel-prompt-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("bad.wav"), b"RIFF\x10\0\0\0WAVEjunkjunk").unwrap();
        let err = PromptCache::load_dir(&dir).unwrap_err().to_string();
        assert!(err.contains("bad.wav"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
