// The wallboard: one tile per queue, live over the event stream; today's
// figures from /api/v1/queues every few seconds and after each call event.
'use strict';
(() => {
  const { t, el, api, secs, pct } = Vx;
  const live = new Map();      // queue → live figures (event stream)
  const today = new Map();     // queue → interval figures (API)
  let refreshAt = 0;

  function level(q, d) {
    // Colours by thresholds: red when a caller waits past the service-level
    // threshold or the level today is under 80 %; amber when callers wait
    // with no free agent or the level is under 90 %.
    const threshold = d ? d.service_level.threshold_s : 20;
    const sl = d ? d.service_level.value : null;
    if (q.longest_wait_s > threshold || (sl !== null && sl < 0.8)) return 'bad';
    if ((q.waiting > 0 && q.agents.free === 0) || (sl !== null && sl < 0.9)) return 'warn';
    return 'ok';
  }

  function chart(d) {
    const w = 480, h = 110, bw = w / 24;
    const max = Math.max(1, ...d.per_hour.map((x) => x.offered + x.closed));
    const g = el('svg', { class: 'chart', viewBox: `0 0 ${w} ${h + 14}`, role: 'img', 'aria-label': t('calls_per_hour') });
    for (const x of d.per_hour) {
      const xpos = x.hour * bw;
      if (x.open) g.appendChild(el('rect', { class: 'openh', x: xpos, y: 0, width: bw, height: h }));
      const hOff = (x.offered / max) * (h - 4);
      const hClosed = (x.closed / max) * (h - 4);
      if (x.offered) g.appendChild(el('rect', { class: 'bar', x: xpos + 2, y: h - hOff, width: bw - 4, height: hOff }));
      if (x.closed) g.appendChild(el('rect', { class: 'closedbar', x: xpos + 2, y: h - hOff - hClosed, width: bw - 4, height: hClosed }));
      if (x.hour % 3 === 0) g.appendChild(el('text', { x: xpos + 2, y: h + 11 }, String(x.hour).padStart(2, '0')));
    }
    return el('div', {}, el('span', { class: 'muted' }, `${t('calls_per_hour')} (${t('open_hours')}: ▇, ${t('closed')}: ▇)`), g);
  }

  function tile(name) {
    const q = live.get(name), d = today.get(name);
    const a = q.agents;
    return el('div', { class: 'tile ' + level(q, d), 'data-queue': name },
      el('h2', {}, name, q.high_load ? el('span', { class: 'badge' }, t('high_load')) : null),
      el('div', { class: 'big' },
        el('div', {}, el('b', { 'data-figure': 'waiting' }, q.waiting), el('span', {}, t('waiting'))),
        el('div', {}, el('b', { 'data-figure': 'longest' }, secs(q.longest_wait_s)), el('span', {}, t('longest'))),
        el('div', {}, el('b', { 'data-figure': 'ewt' }, q.ewt_s === null ? t('no_estimate') : secs(q.ewt_s)), el('span', {}, t('ewt')))),
      el('div', { class: 'small' },
        el('div', {}, el('b', { 'data-figure': 'free' }, a.free), el('span', {}, t('free'))),
        el('div', {}, el('b', {}, a.on_call + a.ringing), el('span', {}, t('on_call'))),
        el('div', {}, el('b', {}, a.wrap_up), el('span', {}, t('wrap_up'))),
        el('div', {}, el('b', {}, a.on_break), el('span', {}, t('on_break')))),
      d ? el('div', { class: 'small' },
        el('div', {}, el('b', { 'data-figure': 'service_level' }, pct(d.service_level.value)), el('span', {}, `${t('service_level')} ${d.service_level.threshold_s} s`)),
        el('div', {}, el('b', { 'data-figure': 'offered' }, d.offered), el('span', {}, t('offered'))),
        el('div', {}, el('b', { 'data-figure': 'answered' }, d.answered), el('span', {}, t('answered'))),
        el('div', {}, el('b', { 'data-figure': 'abandoned' }, d.abandoned), el('span', {}, t('abandoned'))),
        el('div', {}, el('b', {}, secs(d.asa_s)), el('span', {}, t('asa'))),
        el('div', {}, el('b', {}, secs(d.aht_s)), el('span', {}, t('aht'))),
        el('div', {}, el('b', {}, secs(d.time_to_human.p50_s)), el('span', {}, t('to_human') + ' p50')),
        el('div', {}, el('b', {}, pct(d.repeat_rate)), el('span', {}, t('repeat'))),
        el('div', {}, el('b', {}, `${d.callbacks.pending}`), el('span', {}, `${t('callbacks')} ${t('pending')}`)),
        el('div', {}, el('b', {}, `${d.callbacks.kept_within_promise}/${d.callbacks.completed}`), el('span', {}, `${t('callbacks')} ${t('kept')}`)),
        el('div', {}, el('b', {}, d.ewt_error_s === null ? '–' : secs(d.ewt_error_s)), el('span', {}, t('ewt_error'))),
        el('div', {}, el('b', {}, d.closed), el('span', {}, t('closed')))) : null,
      d ? chart(d) : null);
  }

  function render() {
    const tiles = document.getElementById('tiles');
    tiles.replaceChildren(...[...live.keys()].sort().map(tile));
  }

  async function refresh() {
    refreshAt = Date.now();
    try {
      for (const f of await api('GET', '/api/v1/queues')) {
        live.set(f.live.queue, f.live);
        today.set(f.live.queue, f.interval);
      }
      render();
    } catch (e) { if (e.status === 401) showSignIn(); }
  }

  function helpText() {
    const d = [...today.values()][0];
    const formula = d ? d.service_level.formula : '';
    document.getElementById('help').replaceChildren(
      el('summary', {}, t('help')),
      el('p', {}, `${t('offered')}: calls that entered the queue. ${t('answered')}: connected to an agent. ${t('abandoned')}: hung up while waiting after 5 s or more (callbacks apart).`),
      el('p', {}, `${t('service_level')}: ${formula}.`),
      el('p', {}, `${t('asa')}: mean wait of answered calls. ${t('aht')}: talk + wrap-up. ${t('ewt')}: (position + 1 − free agents) × AHT ÷ staffed agents; its error is the mean absolute difference between announced and actual waits.`),
      el('p', {}, `${t('to_human')}: from the answer to an agent connected, for callers who pressed the human key. ${t('repeat')}: calls from callers who called within the repeat window (7 days) before.`));
  }

  function showSignIn(msg) {
    const box = document.getElementById('signin');
    const input = el('input', { type: 'password', name: 'token', placeholder: t('token'), autocomplete: 'off' });
    box.replaceChildren(el('form', { class: 'signin', onsubmit: async (e) => {
      e.preventDefault();
      try { await api('POST', '/api/v1/session', { token: input.value }); box.replaceChildren(); start(); }
      catch (_) { showSignIn(t('wrong')); }
    } }, el('label', {}, t('token')), input, el('button', { class: 'primary' }, t('sign_in')), msg ? el('p', { class: 'error' }, msg) : null));
  }

  function start() {
    const conn = document.getElementById('conn');
    Vx.stream({
      snapshot: (s) => { live.clear(); for (const q of s.queues) live.set(q.queue, q); render(); },
      queue: (q) => { live.set(q.queue, q); render(); },
      call: () => { if (Date.now() - refreshAt > 1000) refresh(); },
    }, (up) => { conn.textContent = up ? '● ' + t('live') : '○ ' + t('disconnected'); conn.className = 'conn' + (up ? '' : ' down'); });
    refresh().then(helpText);
    setInterval(refresh, 10000);
  }

  setInterval(() => { document.getElementById('clock').textContent = new Date().toLocaleTimeString(Vx.lang); }, 1000);
  (async () => {
    await Vx.signInFromFragment();
    if (await Vx.session()) start(); else showSignIn();
  })();
})();
