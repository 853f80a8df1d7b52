//! Arbitrary text as a flow file: the loader and validator never panic, and a
//! flow they accept runs in the simulator with arbitrary keys without panicking.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;
use std::time::Duration;
use vaxel::flow::simulate::{self, Key, Scenario};
use vaxel::media::dtmf::Digit;
use vaxel::media::prompt::{Prompt, PromptCache};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data).into_owned();
    let prompts = PromptCache::from_prompts(vec![
        Prompt::from_pcm("sv/welcome", vec![100; 1600]),
        Prompt::from_pcm("sv/human-option", vec![100; 800]),
        Prompt::from_pcm("sv/digit-1", vec![100; 400]),
    ]);
    let (set, _problems) = vaxel::flow::load::load_sources(
        &[("f.toml".into(), text)],
        prompts,
        &vaxel::config::Config::default().known(),
    );
    if let Some(set) = set {
        let keys = data
            .iter()
            .take(8)
            .enumerate()
            .filter_map(|(i, b)| {
                Digit::from_char("0123456789*#".as_bytes()[*b as usize % 12] as char).map(|d| Key {
                    digit: d,
                    at: Some(Duration::from_millis(i as u64 * 700)),
                })
            })
            .collect();
        let sc = Scenario {
            flow: "f".into(),
            from: "+46701234567".into(),
            dialled: String::new(),
            at: jiff::Timestamp::UNIX_EPOCH,
            keys,
            customer: None,
            webhook: None,
            transfer_ok: false,
            limit: Duration::from_secs(60),
        };
        let _ = simulate::run(Arc::new(set), &sc);
    }
});
