// The browser as a phone: SIP over WebSocket to this engine's /sip (JsSIP),
// audio over WebRTC (the engine is ICE-lite on one UDP port, DTLS-SRTP).
// Used by the "call us" page and the agent page.
'use strict';
const VxPhone = (() => {
  const wsUrl = () => (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/sip';
  // No STUN or TURN: the engine's candidate is enough for a host candidate
  // pair, and nothing is asked of third parties.
  const pcConfig = { iceServers: [] };

  // A call in progress: its audio goes to an <audio> element of the page.
  function wrap(session, onEnd) {
    const audio = document.getElementById('remote-audio') ||
      document.body.appendChild(Object.assign(document.createElement('audio'), { id: 'remote-audio', autoplay: true }));
    const attach = (pc) => pc.addEventListener('track', (e) => { audio.srcObject = e.streams[0]; });
    if (session.connection) attach(session.connection);
    session.on('peerconnection', (e) => attach(e.peerconnection));
    const ended = (why) => { audio.srcObject = null; onEnd && onEnd(why); };
    session.on('ended', (e) => ended(e.cause));
    session.on('failed', (e) => ended(e.cause));
    return {
      session,
      answer: () => session.answer({ mediaConstraints: { audio: true, video: false }, pcConfig }),
      hangup: () => { try { session.terminate(); } catch (_) { /* already over */ } },
      mute: (on) => (on ? session.mute({ audio: true }) : session.unmute({ audio: true })),
      hold: (on) => (on ? session.hold() : session.unhold()),
      // RFC 4733 events through the browser's RTCDTMFSender.
      dtmf: (d) => session.sendDTMF(d, { transportType: 'RFC2833', duration: 160, interToneGap: 80 }),
    };
  }

  // opts: { user, password, register, onState(text, up), onIncoming(call) }
  function start(opts) {
    if (window.JsSIP && JsSIP.debug) JsSIP.debug.disable();
    const ua = new JsSIP.UA({
      sockets: [new JsSIP.WebSocketInterface(wsUrl())],
      uri: `sip:${opts.user}@${location.hostname}`,
      password: opts.password,
      register: !!opts.register,
      register_expires: 120,
      session_timers: false,
      user_agent: 'Vaxel page (JsSIP)',
    });
    const state = (s, up) => opts.onState && opts.onState(s, up);
    ua.on('connected', () => state('connected', !opts.register));
    ua.on('disconnected', () => state('disconnected', false));
    ua.on('registered', () => state('registered', true));
    ua.on('unregistered', () => state('unregistered', false));
    ua.on('registrationFailed', (e) => state('registration_failed: ' + e.cause, false));
    ua.on('newRTCSession', (e) => {
      if (e.originator === 'remote' && opts.onIncoming) opts.onIncoming(wrap(e.session, opts.onEnd), e.request);
    });
    ua.start();
    return {
      ua,
      call(target, extraHeaders, onEnd) {
        const s = ua.call(target, { mediaConstraints: { audio: true, video: false }, pcConfig, extraHeaders: extraHeaders || [] });
        return wrap(s, onEnd);
      },
      stop: () => ua.stop(),
    };
  }

  return { start, wsUrl };
})();
