// "Call us": a button a shop embeds (an <iframe allow="microphone">). The
// caller talks to the engine's flow from the browser; pressing 0 reaches a
// human as from any phone. A logged-in customer's number is sent only when
// the shop's site signed it (?customer=NUMBER.EXPIRES.SIGNATURE): the engine
// checks the signature and otherwise treats the caller as anonymous.
'use strict';
(() => {
  const { el } = Vx;
  const main = document.getElementById('main');
  const number = document.body.dataset.number;
  const customer = new URLSearchParams(location.search).get('customer');
  const L = Vx.lang === 'en'
    ? { call: 'Call us', hangup: 'Hang up', mute: 'Mute', unmute: 'Unmute', calling: 'Calling…', talking: 'Connected', ended: 'Call ended', idle: 'Talk to us from your browser', nomic: 'No microphone' }
    : { call: 'Ring oss', hangup: 'Lägg på', mute: 'Tyst', unmute: 'Ljud på', calling: 'Ringer…', talking: 'Kopplad', ended: 'Samtalet avslutat', idle: 'Prata med oss direkt i webbläsaren', nomic: 'Ingen mikrofon' };
  let phone = null;
  let call = null;
  let muted = false;

  function render(status) {
    const keypad = el('div', { class: 'keypad' }, ...'123456789*0#'.split('').map((d) =>
      el('button', { type: 'button', 'data-key': d, disabled: !call, onclick: () => call && call.dtmf(d) }, d)));
    main.replaceChildren(
      el('p', { id: 'status', class: 'muted' }, status),
      call
        ? el('p', {},
          el('button', { type: 'button', id: 'hangup', class: 'danger', onclick: () => call && call.hangup() }, L.hangup), ' ',
          el('button', { type: 'button', id: 'mute', onclick: () => { muted = !muted; call.mute(muted); render(status); } }, muted ? L.unmute : L.mute))
        : el('p', {}, el('button', { type: 'button', id: 'call', class: 'primary', onclick: dial }, L.call)),
      keypad);
  }

  function dial() {
    if (!phone) phone = VxPhone.start({ user: 'web' });
    const headers = customer ? [`X-Vaxel-Customer: ${customer.replace(/[^0-9+.a-f]/g, '')}`] : [];
    muted = false;
    call = phone.call(`sip:${number}@${location.hostname}`, headers, (why) => { call = null; render(`${L.ended}${why ? ' (' + why + ')' : ''}`); });
    call.session.on('confirmed', () => render(L.talking));
    render(L.calling);
  }

  render(L.idle);
})();
