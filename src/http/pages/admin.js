// The admin page: queues and agents live, flows with a drawn graph and an
// editor that validates before it saves, and customers (history, erase).
'use strict';
(() => {
  const { t, el, api, secs, pct } = Vx;
  const main = document.getElementById('main');
  let view = 'queues';
  let snapshot = { queues: [], agents: [] };

  function signIn(msg) {
    const input = el('input', { type: 'password', name: 'token', placeholder: t('token'), autocomplete: 'off' });
    main.replaceChildren(el('form', { class: 'signin', onsubmit: async (e) => {
      e.preventDefault();
      try {
        const s = await api('POST', '/api/v1/session', { token: input.value });
        if (s.role !== 'admin') return signIn(t('wrong'));
        start();
      } catch (_) { signIn(t('wrong')); }
    } }, el('label', {}, t('token')), input, el('button', { class: 'primary' }, t('sign_in')), msg ? el('p', { class: 'error' }, msg) : null));
  }

  function queues() {
    return el('section', {}, el('h2', {}, t('queues')), el('table', {},
      el('thead', {}, el('tr', {}, ...['', 'waiting', 'longest', 'ewt', 'staffed', 'free', 'on_call', 'on_break', 'high_load'].map((k) => el('th', {}, k ? t(k) : '')))),
      el('tbody', {}, ...snapshot.queues.map((q) => el('tr', {},
        el('td', {}, q.queue), el('td', {}, q.waiting), el('td', {}, secs(q.longest_wait_s)),
        el('td', {}, q.ewt_s === null ? '–' : secs(q.ewt_s)), el('td', {}, q.agents.staffed), el('td', {}, q.agents.free),
        el('td', {}, q.agents.on_call), el('td', {}, q.agents.on_break), el('td', {}, q.high_load ? '●' : ''))))));
  }

  function agents() {
    return el('section', {}, el('h2', {}, t('agents')), el('table', {},
      el('thead', {}, el('tr', {}, ...['agent_id', '', 'status', 'state', 'reachable', 'caller'].map((k) => el('th', {}, k ? t(k) : '')))),
      el('tbody', {}, ...snapshot.agents.map((a) => {
        const sel = el('select', { 'data-agent': a.id, onchange: async (e) => {
          try { await api('PUT', `/api/v1/agents/${encodeURIComponent(a.id)}/status`, { status: e.target.value }); } catch (err) { alert(err.message); }
        } }, ...['available', 'on_break', 'logged_out'].map((s) => el('option', { value: s, selected: a.status === s }, t(s))));
        return el('tr', {}, el('td', {}, a.id), el('td', {}, a.name), el('td', {}, sel), el('td', {}, t(a.state)),
          el('td', {}, a.reachable ? t('yes') : t('no')), el('td', {}, a.caller ? a.caller.display : ''));
      }))));
  }

  // Steps laid out in rows by their distance from the start.
  function drawGraph(g) {
    const depth = new Map([[g.start, 0]]);
    const queue = [g.start];
    while (queue.length) {
      const n = queue.shift();
      for (const e of g.edges.filter((x) => x.from === n)) {
        if (!depth.has(e.to)) { depth.set(e.to, depth.get(n) + 1); queue.push(e.to); }
      }
    }
    let extra = Math.max(0, ...depth.values()) + 1;
    for (const n of g.nodes) if (!depth.has(n.id)) depth.set(n.id, extra);
    const rows = new Map();
    for (const n of g.nodes) { const d = depth.get(n.id); if (!rows.has(d)) rows.set(d, []); rows.get(d).push(n); }
    const W = 150, H = 40, GX = 20, GY = 50;
    const pos = new Map();
    let width = 0;
    for (const [d, ns] of rows) ns.forEach((n, i) => { pos.set(n.id, { x: 10 + i * (W + GX), y: 10 + d * (H + GY) }); width = Math.max(width, 10 + (i + 1) * (W + GX)); });
    const height = 10 + rows.size * (H + GY);
    const svg = el('svg', { class: 'graph', viewBox: `0 0 ${width} ${height}`, width, height, id: 'graph' });
    for (const e of g.edges) {
      const a = pos.get(e.from), b = pos.get(e.to);
      if (!a || !b) continue;
      svg.appendChild(el('line', { x1: a.x + W / 2, y1: a.y + H, x2: b.x + W / 2, y2: b.y }));
      svg.appendChild(el('text', { class: 'edge', x: (a.x + b.x) / 2 + W / 2 + 3, y: (a.y + H + b.y) / 2 }, e.label));
    }
    for (const n of g.nodes) {
      const p = pos.get(n.id);
      svg.appendChild(el('g', { 'data-step': n.id },
        el('rect', { x: p.x, y: p.y, width: W, height: H, rx: 6, class: n.kind === 'queue' ? 'human' : '' }),
        el('text', { x: p.x + 6, y: p.y + 16 }, n.id),
        el('text', { x: p.x + 6, y: p.y + 31, class: 'edge' }, `${n.kind} · line ${n.line}`)));
    }
    return svg;
  }

  async function flows() {
    const list = await api('GET', '/api/v1/flows');
    const box = el('div', {});
    const pick = async (name) => {
      const [src, g] = await Promise.all([api('GET', `/api/v1/flows/${name}`), api('GET', `/api/v1/flows/${name}/graph`)]);
      const editor = el('textarea', { class: 'editor', id: 'editor', spellcheck: 'false' });
      editor.value = src.source;
      const result = el('div', { id: 'result' });
      const show = (ok, head, problems) => result.replaceChildren(
        el('p', { class: ok ? 'ok' : 'error', id: 'verdict' }, head),
        el('ul', { class: 'problems' }, ...(problems || []).map((p) => el('li', { class: p.severity === 'error' ? 'error' : 'muted' }, p.text))));
      const validate = async () => {
        try {
          const v = await api('POST', `/api/v1/flows/${name}/validate`, { source: editor.value });
          show(v.valid, v.valid ? t('valid') : t('refused'), v.problems);
        } catch (e) { show(false, e.message, e.data && e.data.problems); }
      };
      const save = async () => {
        try {
          const r = await api('PUT', `/api/v1/flows/${name}`, { source: editor.value });
          show(true, `${t('saved_version')} ${r.version}`, r.warnings);
          box.querySelector('#graph').replaceWith(drawGraph(await api('GET', `/api/v1/flows/${name}/graph`)));
        } catch (e) { show(false, t('refused'), e.data && e.data.problems); }
      };
      const rollback = async () => {
        try { const r = await api('POST', `/api/v1/flows/${name}/rollback`); show(true, `${t('saved_version')} ${r.version}`); pick(name); }
        catch (e) { show(false, e.message); }
      };
      box.replaceChildren(el('h3', {}, `${name} · ${t('version')} ${src.version}`), drawGraph(g),
        editor, el('p', {}, el('button', { type: 'button', id: 'validate', onclick: validate }, t('validate')), ' ',
          el('button', { type: 'button', class: 'primary', id: 'save', onclick: save }, t('save')), ' ',
          src.history.length ? el('button', { type: 'button', id: 'rollback', onclick: rollback }, t('rollback')) : null), result);
    };
    return el('section', {}, el('h2', {}, t('flows')), el('table', {}, el('tbody', {}, ...list.map((f) => el('tr', {},
      el('td', {}, el('button', { type: 'button', 'data-flow': f.name, onclick: () => pick(f.name) }, f.name)),
      el('td', {}, f.version), el('td', {}, f.numbers.join(', ')), el('td', { class: 'muted' }, f.description))))), box);
  }

  function customers() {
    const input = el('input', { name: 'number', placeholder: '+46701234567' });
    const out = el('div', { id: 'customer' });
    const find = async (e) => {
      e.preventDefault();
      try {
        const c = await api('GET', `/api/v1/customers/${encodeURIComponent(input.value.trim())}`);
        out.replaceChildren(el('h3', { id: 'customer-name' }, c.name || c.number), el('p', {}, `${c.number} · ${t('tier')}: ${c.tier || '–'}`),
          c.notes ? el('p', {}, c.notes) : null,
          el('table', {}, el('tbody', {}, ...c.calls.map((x) => el('tr', {}, el('td', {}, new Date(x.started).toLocaleString(Vx.lang)),
            el('td', {}, x.queue || x.flow), el('td', {}, x.agent || ''), el('td', {}, x.outcome))))),
          el('button', { type: 'button', onclick: async () => {
            if (!confirm(`${t('erase')} ${c.number}?`)) return;
            const r = await api('DELETE', `/api/v1/customers/${encodeURIComponent(c.number)}`);
            out.replaceChildren(el('p', {}, `${t('erase')}: ${r.removed}`));
          } }, t('erase')));
      } catch (err) { out.replaceChildren(el('p', { class: 'error' }, err.message)); }
    };
    return el('section', {}, el('h2', {}, t('customers')), el('form', { onsubmit: find }, input, ' ', el('button', {}, t('find'))), out);
  }

  async function render() {
    if (view === 'queues') main.replaceChildren(queues(), agents());
    else if (view === 'flows') main.replaceChildren(await flows());
    else if (view === 'customers') main.replaceChildren(customers());
  }

  function start() {
    document.getElementById('nav').replaceChildren(...['queues', 'flows', 'customers'].map((v) =>
      el('button', { type: 'button', 'data-view': v, onclick: () => { view = v; render(); } }, t(v))));
    const conn = document.getElementById('conn');
    Vx.stream({
      snapshot: (s) => { snapshot = s; if (view === 'queues') render(); },
      queue: (q) => { const i = snapshot.queues.findIndex((x) => x.queue === q.queue); if (i >= 0) snapshot.queues[i] = q; else snapshot.queues.push(q); if (view === 'queues') render(); },
      agent: (a) => { const i = snapshot.agents.findIndex((x) => x.id === a.id); if (i >= 0) snapshot.agents[i] = a; else snapshot.agents.push(a); if (view === 'queues') render(); },
    }, (up) => { conn.textContent = up ? '● ' + t('live') : '○ ' + t('disconnected'); conn.className = 'conn' + (up ? '' : ' down'); });
    render();
  }

  (async () => {
    await Vx.signInFromFragment();
    const s = await Vx.session();
    if (s && s.role === 'admin') start(); else signIn();
  })();
})();
