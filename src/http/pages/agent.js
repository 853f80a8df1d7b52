// The agent page: sign in with your own credentials (the SIP account), set
// your status, see who rings with their history (screen pop), set the
// outcome of the call in wrap-up.
'use strict';
(() => {
  const { t, el, api, secs } = Vx;
  const main = document.getElementById('main');
  let me = null;        // the agent's id
  let lastCaller = '';  // the caller last popped, to fetch history once
  let password = null;  // kept in memory only, for the browser phone

  function signIn(msg) {
    const id = el('input', { name: 'agent', autocomplete: 'username' });
    const pw = el('input', { name: 'password', type: 'password', autocomplete: 'current-password' });
    main.replaceChildren(el('form', { class: 'signin', onsubmit: async (e) => {
      e.preventDefault();
      try { await api('POST', '/api/v1/session', { agent: id.value, password: pw.value }); password = pw.value; start(); }
      catch (err) { signIn(err.status === 429 ? err.message : t('wrong')); }
    } }, el('label', {}, t('agent_id')), id, el('label', {}, t('password')), pw,
      el('button', { class: 'primary', type: 'submit' }, t('sign_in')), msg ? el('p', { class: 'error' }, msg) : null));
  }

  function history(c) {
    if (!c) return el('p', { class: 'muted' }, t('unknown_caller'));
    return el('div', {},
      c.tier ? el('p', {}, `${t('tier')}: `, el('b', { 'data-field': 'tier' }, c.tier)) : null,
      c.notes ? el('p', {}, `${t('notes')}: `, el('span', { 'data-field': 'notes' }, c.notes)) : null,
      el('h3', {}, t('history')),
      el('table', {}, el('tbody', {}, ...c.calls.slice(0, 8).map((x) => el('tr', {},
        el('td', {}, new Date(x.started).toLocaleString(Vx.lang)), el('td', {}, x.queue || x.flow),
        el('td', {}, x.agent || ''), el('td', {}, x.outcome))))),
      c.outcomes.length ? el('ul', {}, ...c.outcomes.slice(0, 5).map((o) => el('li', {},
        `${new Date(o.at).toLocaleString(Vx.lang)} ${o.agent}: ${o.resolved ? t('resolved') : t('not_resolved')}${o.note ? ' – ' : ''}`, o.note || ''))) : null);
  }

  function outcomeForm() {
    const note = el('input', { name: 'note', maxlength: 1000, placeholder: t('note') });
    const msg = el('span', { class: 'ok' });
    const send = async (resolved) => {
      try { await api('POST', '/api/v1/me/outcome', { resolved, note: note.value || null }); msg.textContent = t('saved'); }
      catch (e) { msg.textContent = e.message; msg.className = 'error'; }
    };
    return el('div', {}, el('h3', {}, t('outcome')),
      el('button', { type: 'button', 'data-outcome': 'resolved', onclick: () => send(true) }, t('resolved')), ' ',
      el('button', { type: 'button', 'data-outcome': 'not-resolved', onclick: () => send(false) }, t('not_resolved')), ' ',
      note, ' ', msg);
  }

  let customer = null;
  function render(view) {
    const a = view.agent;
    const statusButtons = ['available', 'on_break', 'logged_out'].map((s) => el('button', {
      type: 'button', class: a.status === s ? 'on' : '', 'data-status': s,
      onclick: async () => { await api('PUT', '/api/v1/me/status', { status: s }); },
    }, t(s)));
    const c = a.caller;
    const pop = c && a.state !== 'idle'
      ? el('div', { class: 'pop' + (a.state === 'ringing' ? ' ringing' : ''), id: 'pop' },
        el('p', { class: 'muted' }, `${t(a.state)} · ${c.queue}${c.callback ? ' · ' + t('callback') : ''}`),
        el('h2', { id: 'caller-name' }, (customer && customer.name) || c.display),
        el('p', { id: 'caller-number' }, c.number),
        history(customer),
        a.state === 'wrap_up' || a.state === 'on_call' ? outcomeForm() : null)
      : el('p', { class: 'muted', id: 'pop' }, t('nothing'));
    main.replaceChildren(
      el('div', { class: 'status' }, el('span', {}, `${t('status')}: `), ...statusButtons),
      el('p', {}, `${t('state')}: `, el('b', { id: 'state' }, t(a.state)), ` · ${t('reachable')}: ${a.reachable ? t('yes') : t('no')} · ${t('calls_today')}: ${view.calls_today}`),
      pop,
      el('p', {}, el('button', { type: 'button', onclick: async () => { await api('DELETE', '/api/v1/session'); if (phone) phone.stop(); localStorage.removeItem('vaxel.browserPhone'); location.reload(); } }, t('sign_out'))));
  }

  // The browser phone: registers with the agent's own SIP credentials over
  // /sip and answers here, with mute, hold, keys and hang-up.
  const phoneBox = document.getElementById('phone');
  const P = Vx.lang === 'en'
    ? { title: 'Browser phone', use: 'Use the browser phone', pw: 'Password for the phone', incoming: 'Incoming call', answer: 'Answer', decline: 'Decline', hangup: 'Hang up', mute: 'Mute', unmute: 'Unmute', hold: 'Hold', resume: 'Resume', registered: 'ready', connected: 'connecting', disconnected: 'offline', unregistered: 'offline', talking: 'in call' }
    : { title: 'Webbtelefon', use: 'Använd webbtelefonen', pw: 'Lösenord för telefonen', incoming: 'Inkommande samtal', answer: 'Svara', decline: 'Avvisa', hangup: 'Lägg på', mute: 'Tyst', unmute: 'Ljud på', hold: 'Parkera', resume: 'Återuppta', registered: 'redo', connected: 'ansluter', disconnected: 'frånkopplad', unregistered: 'frånkopplad', talking: 'i samtal' };
  let phone = null;
  let call = null;
  let phoneState = '';
  let phoneDetail = '';
  const flags = { muted: false, held: false, ringing: false };

  function renderPhone() {
    if (!phone) {
      const pw = el('input', { type: 'password', name: 'phone-password', placeholder: P.pw, autocomplete: 'current-password' });
      phoneBox.replaceChildren(el('h3', {}, P.title), el('form', { onsubmit: (e) => {
        e.preventDefault();
        if (!password) password = pw.value;
        localStorage.setItem('vaxel.browserPhone', 'on');
        startPhone();
      } },
        password ? null : pw, ' ', el('button', { type: 'submit', id: 'phone-start' }, P.use)));
      return;
    }
    const label = P[phoneState] || phoneDetail;
    const kids = [el('h3', {}, P.title, ' ', el('span', { id: 'phone-state', class: 'muted', 'data-state': phoneState }, label))];
    if (call && flags.ringing) {
      kids.push(el('p', { class: 'ringing', id: 'incoming' }, P.incoming, ' ',
        el('button', { type: 'button', id: 'answer', class: 'primary', onclick: () => { flags.ringing = false; call.answer(); renderPhone(); } }, P.answer), ' ',
        el('button', { type: 'button', id: 'decline', onclick: () => call.hangup() }, P.decline)));
    } else if (call) {
      kids.push(el('p', {},
        el('button', { type: 'button', id: 'hangup', class: 'danger', onclick: () => call.hangup() }, P.hangup), ' ',
        el('button', { type: 'button', id: 'mute', onclick: () => { flags.muted = !flags.muted; call.mute(flags.muted); renderPhone(); } }, flags.muted ? P.unmute : P.mute), ' ',
        el('button', { type: 'button', id: 'hold', onclick: () => { flags.held = !flags.held; call.hold(flags.held); renderPhone(); } }, flags.held ? P.resume : P.hold)),
      el('div', { class: 'keypad' }, ...'123456789*0#'.split('').map((d) => el('button', { type: 'button', 'data-key': d, onclick: () => call.dtmf(d) }, d))));
    }
    phoneBox.replaceChildren(...kids);
  }

  function startPhone() {
    if (phone || !password || !me) return renderPhone();
    phone = VxPhone.start({
      user: me, password, register: true,
      onState: (s) => { phoneState = s.split(':')[0]; phoneDetail = s; renderPhone(); },
      onIncoming: (c) => {
        if (call) { c.hangup(); return; }
        call = c; Object.assign(flags, { muted: false, held: false, ringing: true });
        c.session.on('accepted', () => { flags.ringing = false; phoneState = 'talking'; renderPhone(); });
        renderPhone();
      },
      onEnd: () => { call = null; flags.ringing = false; phoneState = 'registered'; renderPhone(); },
    });
    renderPhone();
  }

  async function refresh() {
    try {
      const view = await api('GET', '/api/v1/me');
      const num = view.agent.caller ? view.agent.caller.number : '';
      if (num !== lastCaller || view.customer) { customer = view.customer; lastCaller = num; }
      render(view);
    } catch (e) { if (e.status === 401 || e.status === 403) signIn(); }
  }

  async function start() {
    const s = await Vx.session();
    if (!s || s.role !== 'agent') return signIn();
    me = s.agent;
    document.getElementById('who').textContent = `${t('signed_in_as')} ${me}`;
    const conn = document.getElementById('conn');
    Vx.stream({
      snapshot: () => refresh(),
      agent: (a) => { if (a.id === me) refresh(); },
    }, (up) => { conn.textContent = up ? '● ' + t('live') : '○ ' + t('disconnected'); conn.className = 'conn' + (up ? '' : ' down'); });
    refresh();
    // The browser phone is the agent's choice (a desk phone may be theirs):
    // once chosen on this browser, it starts with the page.
    if (localStorage.getItem('vaxel.browserPhone') === 'on') startPhone();
    else renderPhone();
  }

  start();
})();
