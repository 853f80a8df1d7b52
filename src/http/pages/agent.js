// The agent page: sign in with your own credentials (the SIP account), set
// your status, see who rings with their history (screen pop), set the
// outcome of the call in wrap-up.
'use strict';
(() => {
  const { t, el, api, secs } = Vx;
  const main = document.getElementById('main');
  let me = null;        // the agent's id
  let lastCaller = '';  // the caller last popped, to fetch history once

  function signIn(msg) {
    const id = el('input', { name: 'agent', autocomplete: 'username' });
    const pw = el('input', { name: 'password', type: 'password', autocomplete: 'current-password' });
    main.replaceChildren(el('form', { class: 'signin', onsubmit: async (e) => {
      e.preventDefault();
      try { await api('POST', '/api/v1/session', { agent: id.value, password: pw.value }); start(); }
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
      el('p', {}, el('button', { type: 'button', onclick: async () => { await api('DELETE', '/api/v1/session'); location.reload(); } }, t('sign_out'))));
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
  }

  start();
})();
