// Browsers as phones, in headless Chromium with a fake microphone (a WAV):
// run by tests/browsers.rs, which owns the engine and the PJSIP phones. At
// each `STEP name` printed here it makes its side happen and answers
// `DONE name`. What the page heard is written as 8 kHz WAV files to $OUT for
// the Rust side to compare (sox) with what the other side played.
//
//  1. the "call us" page calls, presses 0 (RTCDTMFSender) and reaches a PJSIP
//     agent; the caller hangs up from the page;
//  2. the /agent page signs in, registers, rings, answers a PJSIP caller;
//     hold and resume; then the page is closed mid-call (the WebSocket drops);
//  3. JsSIP and SIP.js from npm, unmodified, register and call from a shop's
//     page (an allowed origin); a page from another origin is refused.
import { chromium } from 'playwright-core';
import { rl, step, check } from './steps.mjs';
import fs from 'node:fs';
import { build } from 'esbuild';
import http from 'node:http';

const { BASE, OUT, MIC, SHOTS } = process.env;

// What the page's <audio id="remote-audio"> plays, for `secs`, as 8 kHz
// 16-bit samples (Web Audio at 8 kHz: Chromium resamples, not the engine).
async function capture(page, secs) {
  return page.evaluate(async (secs) => {
    const a = document.getElementById('remote-audio');
    const ctx = new AudioContext({ sampleRate: 8000 });
    const src = ctx.createMediaStreamSource(a.srcObject);
    const proc = ctx.createScriptProcessor(1024, 1, 1);
    const got = [];
    proc.onaudioprocess = (e) => got.push(Float32Array.from(e.inputBuffer.getChannelData(0)));
    src.connect(proc);
    proc.connect(ctx.destination);
    await new Promise((r) => setTimeout(r, secs * 1000));
    proc.disconnect();
    src.disconnect();
    await ctx.close();
    const out = [];
    for (const b of got) for (const v of b) out.push(Math.max(-32768, Math.min(32767, Math.round(v * 32767))));
    return out;
  }, secs);
}
function wav(name, samples) {
  const data = Buffer.alloc(samples.length * 2);
  samples.forEach((s, i) => data.writeInt16LE(s, i * 2));
  const h = Buffer.alloc(44);
  h.write('RIFF', 0); h.writeUInt32LE(36 + data.length, 4); h.write('WAVE', 8); h.write('fmt ', 12);
  h.writeUInt32LE(16, 16); h.writeUInt16LE(1, 20); h.writeUInt16LE(1, 22); h.writeUInt32LE(8000, 24);
  h.writeUInt32LE(16000, 28); h.writeUInt16LE(2, 32); h.writeUInt16LE(16, 34); h.write('data', 36);
  h.writeUInt32LE(data.length, 40);
  fs.writeFileSync(`${OUT}/${name}`, Buffer.concat([h, data]));
  console.log(`WAV ${name} ${samples.length}`);
}

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
    `--use-file-for-fake-audio-capture=${MIC}`, '--allow-loopback-in-peer-connection',
    '--autoplay-policy=no-user-gesture-required'],
});
const errors = [];
const watch = (p) => {
  p.on('pageerror', (e) => errors.push(e.message));
  p.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') console.log(`console ${m.type()}: ${m.text()}`); });
  return p;
};

try {
  const ctx = await browser.newContext({ viewport: { width: 1200, height: 800 } });
  // The pages ask for the browser's voice processing (echo cancellation,
  // noise suppression, automatic gain), as they should for people on
  // speakers. It reshapes the voice, so sample-level comparison needs it
  // off: the test (not the pages) turns it off, like bypassing a phone's DSP
  // on a test bench. Everything else is the pages' own code.
  await ctx.addInitScript(() => {
    const gum = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
    navigator.mediaDevices.getUserMedia = (c) => gum(c && c.audio
      ? { ...c, audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false } }
      : c);
  });

  // 1. A web visitor calls, presses 0 and talks to a PJSIP agent.
  if (process.env.ONLY !== 'stacks') {
  const caller = watch(await ctx.newPage());
  await caller.goto(`${BASE}/call?lang=en`);
  await caller.click('#call');
  await caller.waitForFunction(() => document.getElementById('status').textContent === 'Connected', null, { timeout: 10000 });
  check(true, 'the "call us" page is connected to the flow');
  await caller.waitForTimeout(1500);
  await caller.click('[data-key="0"]');
  await step('caller-pressed-0');
  wav('browser-caller-heard.wav', await capture(caller, 8));
  await caller.screenshot({ path: `${SHOTS}/call-us-talking.png` });
  await caller.click('#hangup');
  await caller.waitForFunction(() => document.getElementById('status').textContent.startsWith('Call ended'), null, { timeout: 5000 });
  await step('caller-hung-up');
  await caller.close();

  // 2. Alice answers in the agent page.
  const agent = watch(await ctx.newPage());
  await agent.goto(`${BASE}/agent?lang=en`);
  await agent.fill('input[name=agent]', 'alice');
  await agent.fill('input[name=password]', 'alice-secret');
  await agent.click('button[type=submit]');
  await agent.click('#phone-start');
  await agent.locator('#phone-state[data-state=registered]').waitFor({ timeout: 10000 });
  check(true, 'the agent page registered the browser phone');
  await step('agent-registered');
  await agent.locator('#answer').waitFor({ timeout: 15000 });
  check(true, "the agent page rang");
  await agent.screenshot({ path: `${SHOTS}/agent-phone-ringing.png` });
  await agent.click('#answer');
  console.log(`ANSWERED ${(Date.now() / 1000).toFixed(3)}`);
  await agent.locator('#hangup').waitFor({ timeout: 5000 });
  await agent.waitForFunction(() => document.getElementById('remote-audio') && document.getElementById('remote-audio').srcObject, null, { timeout: 5000 });
  wav('browser-agent-heard.wav', await capture(agent, 8));
  await agent.click('#hold');
  await step('agent-held');
  await agent.click('#hold');
  await step('agent-resumed');
  await agent.screenshot({ path: `${SHOTS}/agent-phone-talking.png` });
  await agent.close(); // the WebSocket drops mid-call
  await step('agent-page-closed');
  }

  // 3. JsSIP and SIP.js, unmodified, from a shop's page.
  for (const [name, entry] of [
    ['jssip', 'import JsSIP from "jssip"; window.JsSIP = JsSIP;'],
    ['sipjs', 'import * as SIP from "sip.js"; window.SIP = SIP;'],
  ]) {
    fs.writeFileSync(`${name}-entry.mjs`, entry);
    await build({ entryPoints: [`${name}-entry.mjs`], bundle: true, format: 'iife', outfile: `${OUT}/${name}.js`, logLevel: 'warning' });
    fs.unlinkSync(`${name}-entry.mjs`);
  }
  const shopPage = (scripts) => `<!doctype html><html><body>${scripts.map((s) => `<script src="/${s}.js"></script>`).join('')}<audio id="remote-audio" autoplay></audio></body></html>`;
  // The shop and another site: real servers on loopback addresses of their
  // own (a page from a public address may not reach loopback at all:
  // Chromium's local network access checks).
  const serve = (host, handler) => new Promise((resolve) => {
    const srv = http.createServer(handler);
    srv.listen(9000, host, () => resolve(srv));
  });
  const shopSrv = await serve('127.0.0.66', (req, res) => {
    if (req.url.endsWith('.js')) {
      res.writeHead(200, { 'content-type': 'text/javascript' });
      return res.end(fs.readFileSync(`${OUT}${req.url}`));
    }
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(shopPage(['jssip', 'sipjs']));
  });
  const evilSrv = await serve('127.0.0.77', (req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end('<!doctype html><p>another site</p>');
  });
  const shop = watch(await ctx.newPage());
  await shop.goto('http://127.0.0.66:9000/');
  const ws = BASE.replace('http', 'ws') + '/sip';
  console.log('shop page loaded');
  const jssip = await shop.evaluate((ws) => new Promise((resolve) => {
    setTimeout(() => resolve('no answer within 10 s'), 10000);
    const ua = new JsSIP.UA({ sockets: [new JsSIP.WebSocketInterface(ws)], uri: 'sip:bob@127.0.0.1', password: 'bob-secret' });
    ua.on('registered', () => resolve('registered'));
    ua.on('registrationFailed', (e) => resolve('failed ' + e.cause));
    ua.start();
    window.jssipUa = ua;
  }), ws);
  check(jssip === 'registered', `JsSIP registers over /sip with digest (${jssip})`);
  // SIP.js: one user agent registers Alice's phone; another (a visitor,
  // not registered: an agent's phone may only dial feature codes) calls.
  const sipjsReg = await shop.evaluate((ws) => new Promise((resolve) => {
    setTimeout(() => resolve('no answer within 10 s'), 10000);
    const ua = new SIP.UserAgent({
      uri: SIP.UserAgent.makeURI('sip:alice@127.0.0.1'),
      transportOptions: { server: ws },
      authorizationUsername: 'alice',
      authorizationPassword: 'alice-secret',
    });
    window.sipjsAgent = ua;
    ua.start().then(() => {
      const reg = new SIP.Registerer(ua);
      reg.stateChange.addListener((s) => resolve(s));
      reg.register().catch((e) => resolve('register failed ' + e));
    }).catch((e) => resolve('start failed ' + e));
  }), ws);
  check(sipjsReg === 'Registered', `SIP.js registers over /sip with digest (${sipjsReg})`);
  const sipjs = await shop.evaluate((ws) => new Promise((resolve) => {
    setTimeout(() => resolve('no answer within 15 s'), 15000);
    const ua = new SIP.UserAgent({
      uri: SIP.UserAgent.makeURI('sip:visitor@127.0.0.1'),
      transportOptions: { server: ws },
      sessionDescriptionHandlerFactoryOptions: { peerConnectionConfiguration: { iceServers: [] } },
    });
    ua.start().then(() => {
      const inv = new SIP.Inviter(ua, SIP.UserAgent.makeURI('sip:100@127.0.0.1'));
      inv.stateChange.addListener((st) => {
        if (st === 'Established') {
          const pc = inv.sessionDescriptionHandler.peerConnection;
          document.getElementById('remote-audio').srcObject = new MediaStream(pc.getReceivers().map((r) => r.track));
          window.sipjsCall = inv;
          resolve('established');
        }
        if (st === 'Terminated') resolve('terminated');
      });
      inv.invite().catch((e) => resolve('invite failed ' + e));
    }).catch((e) => resolve('start failed ' + e));
  }), ws);
  check(sipjs === 'established', `SIP.js calls and the flow answers (${sipjs})`);
  wav('sipjs-heard.wav', await capture(shop, 5));
  await shop.evaluate(() => window.sipjsCall.state === 'Established' && window.sipjsCall.bye());
  await step('sipjs-done');

  const evil = watch(await ctx.newPage());
  await evil.goto('http://127.0.0.77:9000/');
  const refused = await evil.evaluate((ws) => new Promise((resolve) => {
    setTimeout(() => resolve('no answer within 5 s'), 5000);
    const s = new WebSocket(ws, 'sip');
    s.onopen = () => resolve('opened');
    s.onerror = () => resolve('refused');
  }), ws);
  check(refused === 'refused', 'a page from an origin not configured cannot open /sip');

  shopSrv.close();
  evilSrv.close();
  check(errors.length === 0, `no script errors (${errors.join('; ')})`);
  console.log('ALL OK');
} finally {
  await browser.close();
}
// Stdin (the steps), the shop's servers' idle connections and the user
// agents' sockets would keep node alive: the test is over.
process.exit(0);
