#!/usr/bin/env bash
# Regenerates the shipped prompts in audio/ with espeak-ng and sox (and lame for
# MP3). The results are committed, so the engine itself never needs espeak.
# Formats are mixed on purpose: every decoder the engine supports is exercised at
# start-up (WAV speech, FLAC digits, MP3 goodbyes, OGG/Vorbis hold music).
set -euo pipefail
cd "$(dirname "$0")/.."
need() { command -v "$1" >/dev/null || { echo "need $1 (apt-get install -y $2)" >&2; exit 1; }; }
need espeak-ng espeak-ng; need sox sox; need lame lame
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

say() { # lang voice outfile text
  espeak-ng -v "$2" -s 150 -w "$tmp/raw.wav" "$4"
  case "$3" in
    *.wav)  sox -D "$tmp/raw.wav" -b 16 -c 1 "$3" ;;                  # espeak's 22.05 kHz: the engine resamples
    *.flac) sox -D "$tmp/raw.wav" -b 16 -c 1 -r 16000 "$3" ;;
    *.mp3)  sox -D "$tmp/raw.wav" -b 16 -c 1 "$tmp/x.wav" && lame --quiet -b 32 "$tmp/x.wav" "$3" ;;
  esac
}

mkdir -p audio/sv audio/en audio/music
say sv sv audio/sv/welcome.wav "Välkommen till Växel. Tryck noll när som helst för att prata med en människa."
say en en audio/en/welcome.wav "Welcome to Växel. Press zero at any time to talk to a person."
say sv sv audio/sv/goodbye.mp3 "Tack för att du ringde. Hej då."
say en en audio/en/goodbye.mp3 "Thank you for calling. Goodbye."
sv=(noll ett två tre fyra fem sex sju åtta nio); en=(zero one two three four five six seven eight nine)
for i in 0 1 2 3 4 5 6 7 8 9; do
  say sv sv "audio/sv/digit-$i.flac" "${sv[$i]}"
  say en en "audio/en/digit-$i.flac" "${en[$i]}"
done
say sv sv audio/sv/digit-star.flac "stjärna"; say en en audio/en/digit-star.flac "star"
say sv sv audio/sv/digit-hash.flac "fyrkant"; say en en audio/en/digit-hash.flac "pound"
# Hold music: a slow progression of soft chords, 16 s, as Ogg Vorbis at 44.1 kHz stereo.
parts=()
for chord in "C4 E4 G4" "A3 C4 E4" "F3 A3 C4" "G3 B3 D4"; do
  set -- $chord
  sox -D -n -r 44100 -c 2 "$tmp/c$((${#parts[@]})).wav" synth 4 pluck "$1" pluck "$2" pluck "$3" fade 0.05 4 0.8 gain -8
  parts+=("$tmp/c${#parts[@]}.wav")
done
sox -D "${parts[@]}" -C 3 audio/music/hold.ogg
ls -l audio/*/
