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
# The shipped web-shop flow (flows/webbshop.toml): Nordkorgen's customer service.
shop() { # name sv-text en-text
  say sv sv "audio/sv/$1.wav" "$2"; say en en "audio/en/$1.wav" "$3"
}
shop welcome-shop "Välkommen till Nordkorgens kundtjänst." "Welcome to Nordkorgen customer service."
shop human-option "Tryck noll när som helst för att prata med en person." "Press zero at any time to talk to a person."
shop welcome-known "Hej igen, och välkommen tillbaka till Nordkorgen." "Hello again, and welcome back to Nordkorgen."
shop welcome-back "Hej igen! Vi kopplar dig direkt till en kollega." "Hello again! We are putting you straight through."
shop main-menu "Gäller det en beställning, tryck ett. Retur eller reklamation, tryck två. Betalning eller faktura, tryck tre." "For an order, press one. For returns or complaints, press two. For payment or invoices, press three."
shop invalid "Det valet finns inte." "That is not one of the choices."
shop no-input "Jag hörde inget val." "I did not hear a choice."
shop ask-order-number "Slå ditt ordernummer och avsluta med fyrkant." "Enter your order number, then press pound."
shop order-number-is "Ordernummer" "Order number"
shop connecting "Ett ögonblick, du kopplas till en kollega." "One moment, we are connecting you to a colleague."
shop returns-info "Returer är fria inom trettio dagar. Du kopplas nu till vår returavdelning." "Returns are free within thirty days. We are now connecting you to our returns team."
shop closed "Kundtjänsten är stängd just nu. Vi har öppet måndag till lördag klockan åtta till tjugotvå, och söndag klockan tio till fjorton och arton till tjugotvå." "Customer service is closed right now. We are open Monday to Saturday from eight to ten p m, and Sunday from ten to two and six to ten p m."
shop closed-menu "För att bli uppringd när vi öppnar, tryck ett. För att lämna ett meddelande, tryck två." "To get a call back when we open, press one. To leave a message, press two."
shop callback-booked "Tack. Vi ringer upp dig så snart vi öppnar." "Thank you. We will call you back as soon as we open."
shop voicemail-intro "Lämna ditt meddelande efter tonen och avsluta med fyrkant." "Leave your message after the tone, then press pound."
shop thanks-goodbye "Tack för ditt meddelande. Hej då." "Thank you for your message. Goodbye."
# Agents' feature codes (*1, *2, *0), confirmed on the agent's phone.
shop agent-available "Du är tillgänglig för samtal." "You are available for calls."
shop agent-break "Du har paus." "You are on a break."
shop agent-logged-out "Du är utloggad." "You are logged out."
# Queues: the estimated wait ("about" N "minutes"), high load, callbacks.
shop ewt-about "Beräknad väntetid är ungefär" "The estimated wait is about"
shop minute "minut" "minute"
shop minutes "minuter" "minutes"
shop queue-busy "Just nu är det många som ringer. Tryck ett så ringer vi upp dig när det är din tur, du behåller din plats i kön." "Many people are calling right now. Press one and we will call you back when it is your turn; you keep your place in the queue."
shop callback-queued "Tack. Vi ringer upp dig när det är din tur. Du kan lägga på nu." "Thank you. We will call you back when it is your turn. You can hang up now."
shop callback-calling "Återuppringning. Vi ringer upp kunden nu." "Callback. We are calling the customer now."
shop callback-refused "Det numret kan vi tyvärr inte ringa upp." "Sorry, we cannot call that number back."
say en en audio/sv/for-english.wav "For English, press nine."
say sv sv audio/en/for-english.wav "För svenska, tryck nio."
# Numbers for `say` steps.
svn=(noll ett två tre fyra fem sex sju åtta nio tio elva tolv tretton fjorton femton sexton sjutton arton nitton)
enn=(zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen)
for i in $(seq 0 19); do shop "num-$i" "${svn[$i]}" "${enn[$i]}"; done
svt=(x x tjugo trettio fyrtio femtio sextio sjuttio åttio nittio)
ent=(x x twenty thirty forty fifty sixty seventy eighty ninety)
for i in 2 3 4 5 6 7 8 9; do shop "num-${i}0" "${svt[$i]}" "${ent[$i]}"; done
shop num-100 "hundra" "hundred"; shop num-1000 "tusen" "thousand"
sox -D -n -r 8000 -b 16 -c 1 audio/music/beep.wav synth 0.4 sine 1000 gain -10
# Hold music: a slow progression of soft chords, 16 s, as Ogg Vorbis at 44.1 kHz stereo.
parts=()
for chord in "C4 E4 G4" "A3 C4 E4" "F3 A3 C4" "G3 B3 D4"; do
  set -- $chord
  sox -D -n -r 44100 -c 2 "$tmp/c$((${#parts[@]})).wav" synth 4 pluck "$1" pluck "$2" pluck "$3" fade 0.05 4 0.8 gain -8
  parts+=("$tmp/c${#parts[@]}.wav")
done
sox -D "${parts[@]}" -C 3 audio/music/hold.ogg
ls -l audio/*/
