// Shared by the pages: translations (sv, en), the API helper, sign-in, and
// `el`, which builds elements and only ever sets text (never HTML), so that
// names and notes typed by people are shown as they are.
'use strict';
const Vx = (() => {
  const T = {
    sv: {
      waiting: 'Väntar', longest: 'Längsta väntan', ewt: 'Beräknad väntan', free: 'Lediga', on_call: 'I samtal',
      ringing: 'Ringer', wrap_up: 'Efterarbete', on_break: 'Paus', logged_out: 'Utloggade', staffed: 'Bemannade',
      offered: 'Inkomna', answered: 'Besvarade', abandoned: 'Avbrutna', short_abandoned: 'Korta avbrott',
      service_level: 'Servicenivå', asa: 'Snitt svarstid', aht: 'Snitt hanteringstid', callbacks: 'Återuppringningar',
      pending: 'väntar', completed: 'klara', kept: 'inom löfte', ewt_error: 'Fel i beräknad väntan',
      repeat: 'Återkommande', to_human: 'Tid till människa', closed: 'Stängt', high_load: 'HÖG BELASTNING',
      calls_per_hour: 'Samtal per timme idag', open_hours: 'öppet', no_estimate: 'ingen agent',
      sign_in: 'Logga in', agent_id: 'Agent-id', password: 'Lösenord', token: 'Nyckel', sign_out: 'Logga ut',
      available: 'Tillgänglig', status: 'Status', state: 'Läge', idle: 'Ledig', caller: 'Uppringare',
      unknown_caller: 'Okänd uppringare', tier: 'Kundnivå', history: 'Historik', notes: 'Anteckningar',
      resolved: 'Löst', not_resolved: 'Inte löst', note: 'Anteckning', save_outcome: 'Spara utfall', saved: 'Sparat',
      queues: 'Köer', agents: 'Agenter', flows: 'Flöden', customers: 'Kunder', validate: 'Kontrollera', save: 'Spara',
      valid: 'Giltigt', refused: 'Nekat: den körande versionen ligger kvar', find: 'Sök', erase: 'Radera',
      number: 'Nummer', graph: 'Graf', version: 'Version', live: 'direkt', disconnected: 'frånkopplad – återansluter',
      callback: 'återuppringning', calls_today: 'Samtal idag', signed_in_as: 'Inloggad som', wrong: 'Fel uppgifter',
      help: 'Definitioner', saved_version: 'Sparad, version', rollback: 'Återställ föregående',
      reachable: 'Telefon', yes: 'ja', no: 'nej', nothing: 'Inget samtal just nu', outcome: 'Utfall',
    },
    en: {
      waiting: 'Waiting', longest: 'Longest wait', ewt: 'Estimated wait', free: 'Free', on_call: 'On call',
      ringing: 'Ringing', wrap_up: 'Wrap-up', on_break: 'On break', logged_out: 'Logged out', staffed: 'Staffed',
      offered: 'Offered', answered: 'Answered', abandoned: 'Abandoned', short_abandoned: 'Short abandons',
      service_level: 'Service level', asa: 'ASA', aht: 'AHT', callbacks: 'Callbacks',
      pending: 'pending', completed: 'completed', kept: 'within promise', ewt_error: 'Estimate error',
      repeat: 'Repeat callers', to_human: 'Time to human', closed: 'Closed', high_load: 'HIGH LOAD',
      calls_per_hour: 'Calls per hour today', open_hours: 'open', no_estimate: 'no agent',
      sign_in: 'Sign in', agent_id: 'Agent id', password: 'Password', token: 'Token', sign_out: 'Sign out',
      available: 'Available', status: 'Status', state: 'State', idle: 'Idle', caller: 'Caller',
      unknown_caller: 'Unknown caller', tier: 'Tier', history: 'History', notes: 'Notes',
      resolved: 'Resolved', not_resolved: 'Not resolved', note: 'Note', save_outcome: 'Save outcome', saved: 'Saved',
      queues: 'Queues', agents: 'Agents', flows: 'Flows', customers: 'Customers', validate: 'Validate', save: 'Save',
      valid: 'Valid', refused: 'Refused: the running version stays', find: 'Find', erase: 'Erase',
      number: 'Number', graph: 'Graph', version: 'Version', live: 'live', disconnected: 'disconnected – reconnecting',
      callback: 'callback', calls_today: 'Calls today', signed_in_as: 'Signed in as', wrong: 'Wrong credentials',
      help: 'Definitions', saved_version: 'Saved, version', rollback: 'Roll back',
      reachable: 'Phone', yes: 'yes', no: 'no', nothing: 'No call right now', outcome: 'Outcome',
    },
  };
  const q = new URLSearchParams(location.search);
  const lang = (q.get('lang') || (navigator.language || 'sv')).slice(0, 2) === 'en' ? 'en' : 'sv';
  document.documentElement.lang = lang;
  const t = (k) => (T[lang][k] || k);

  // el('div', {class: 'x'}, 'text', child, …): text arguments become text nodes.
  function el(tag, attrs, ...kids) {
    const svg = ['svg', 'rect', 'text', 'line', 'g', 'path'].includes(tag);
    const e = svg ? document.createElementNS('http://www.w3.org/2000/svg', tag) : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const kid of kids.flat()) {
      if (kid === null || kid === undefined || kid === false) continue;
      e.appendChild(typeof kid === 'object' ? kid : document.createTextNode(String(kid)));
    }
    return e;
  }

  async function api(method, path, body) {
    const opts = { method, credentials: 'same-origin', headers: {} };
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    const r = await fetch(path, opts);
    let data = null;
    const text = await r.text();
    try { data = text ? JSON.parse(text) : null; } catch (_) { data = text; }
    if (!r.ok) {
      const err = new Error((data && data.error) || r.statusText);
      err.status = r.status; err.data = data;
      throw err;
    }
    return data;
  }

  // A token in the address's fragment (#token=…) is exchanged for a session
  // cookie and removed from the address bar; the fragment never reaches a server.
  async function signInFromFragment() {
    const m = location.hash.match(/token=([^&]+)/);
    if (!m) return false;
    history.replaceState(null, '', location.pathname + location.search);
    try { await api('POST', '/api/v1/session', { token: decodeURIComponent(m[1]) }); return true; }
    catch (_) { return false; }
  }

  async function session() {
    try { return await api('GET', '/api/v1/session'); } catch (_) { return null; }
  }

  function secs(s) {
    if (s === null || s === undefined) return '–';
    s = Math.round(s);
    if (s < 60) return s + ' s';
    const m = Math.floor(s / 60), r = s % 60;
    if (m < 60) return m + ':' + String(r).padStart(2, '0');
    return Math.floor(m / 60) + ' h ' + (m % 60) + ' min';
  }

  function pct(v) { return v === null || v === undefined ? '–' : Math.round(v * 100) + ' %'; }

  // The event stream, reconnecting on its own (EventSource sends Last-Event-ID
  // and the engine answers with a whole snapshot first).
  function stream(handlers, onState) {
    const es = new EventSource('/api/v1/events');
    for (const [name, fn] of Object.entries(handlers)) {
      es.addEventListener(name, (ev) => fn(JSON.parse(ev.data)));
    }
    es.onopen = () => onState && onState(true);
    es.onerror = () => onState && onState(false);
    return es;
  }

  return { t, lang, el, api, signInFromFragment, session, secs, pct, stream };
})();
