// Växel's pages in headless Chromium (Debian's, driven by playwright-core).
// Run by tests/pages.rs, which owns the engine and the SIP phones: at each
// `STEP name` printed here it makes the calls happen and answers `DONE name`
// on stdin. Screenshots go to $SHOTS.
import { chromium } from 'playwright-core';
import { rl, step, check } from './steps.mjs';

const BASE = process.env.BASE;
const SHOTS = process.env.SHOTS;

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const ctx = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const dialogs = [];
  ctx.on('page', (p) => p.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss(); }));
  const errors = [];

  // The wallboard, signed in by the read token in the address's fragment.
  const wall = await ctx.newPage();
  wall.on('pageerror', (e) => errors.push(e.message));
  await wall.goto(`${BASE}/wallboard?lang=en#token=${process.env.READ}`);
  const waiting = wall.locator('[data-queue="kundtjanst"] [data-figure="waiting"]');
  await waiting.waitFor({ timeout: 10000 });
  check(!wall.url().includes('token'), 'the token left the address bar');
  check((await waiting.textContent()) === '0', 'nobody waits at first');
  await wall.screenshot({ path: `${SHOTS}/wallboard-empty.png` });

  const entered = await step('caller-waits');
  await wall.waitForFunction(() => document.querySelector('[data-queue="kundtjanst"] [data-figure="waiting"]').textContent === '1', null, { timeout: 5000 });
  const shown = Date.now() - entered;
  console.log(`wallboard showed the waiting caller ${shown} ms after the key`);
  check(shown < 1000, `the wallboard shows a waiting caller within a second (${shown} ms)`);
  await wall.screenshot({ path: `${SHOTS}/wallboard-waiting.png` });

  // The agent page: Alice signs in with her own credentials, goes available.
  const agent = await ctx.newPage();
  agent.on('pageerror', (e) => errors.push(e.message));
  await agent.goto(`${BASE}/agent?lang=en`);
  await agent.fill('input[name=agent]', 'alice');
  await agent.fill('input[name=password]', 'wrong');
  await agent.click('button[type=submit]');
  await agent.locator('p.error').waitFor({ timeout: 5000 });
  check(true, 'a wrong password is refused');
  await agent.fill('input[name=agent]', 'alice');
  await agent.fill('input[name=password]', 'alice-secret');
  await agent.click('button[type=submit]');
  await agent.locator('[data-status=available]').waitFor({ timeout: 5000 });
  const cookies = await ctx.cookies();
  const session = cookies.find((c) => c.name === 'vaxel_session');
  check(session && session.httpOnly && session.sameSite === 'Strict', 'the session cookie is HttpOnly and SameSite=Strict');
  check(!(await agent.evaluate(() => document.cookie)).includes('vaxel_session'), 'scripts cannot read the session');
  await step('agent-phone-ready');
  await agent.click('[data-status=available]');
  // The caller is offered to Alice: her phone rings, the page pops the caller.
  await agent.locator('#pop.ringing').waitFor({ timeout: 10000 });
  const name = await agent.locator('#caller-name').textContent();
  check(name === '<script>alert(1)</script>', `the customer's name shows as text (${name})`);
  check((await agent.locator('[data-field=tier]').textContent()) === 'gold', 'the screen pop shows the tier');
  check(await agent.locator('#pop script').count() === 0, 'no script element came from the name');
  await agent.screenshot({ path: `${SHOTS}/agent-screen-pop.png` });

  // Alice's phone answers: the caller leaves the queue on the wallboard.
  await agent.locator('#state').filter({ hasText: 'on_call' }).or(agent.locator('#state').filter({ hasText: 'On call' })).waitFor({ timeout: 15000 });
  await wall.waitForFunction(() => document.querySelector('[data-queue="kundtjanst"] [data-figure="waiting"]').textContent === '0', null, { timeout: 3000 });
  check(true, 'the wallboard drops the caller once answered');
  await agent.click('[data-outcome=resolved]');
  await agent.locator('.ok').filter({ hasText: 'Saved' }).waitFor({ timeout: 5000 });
  check(true, 'the outcome is saved in wrap-up');
  await step('call-ended');
  await wall.waitForFunction(() => document.querySelector('[data-queue="kundtjanst"] [data-figure="answered"]').textContent === '1', null, { timeout: 15000 });
  check(true, "today's answered calls show 1 on the wallboard");
  await wall.screenshot({ path: `${SHOTS}/wallboard-answered.png` });

  // The admin page: a broken edit is refused and shown so; the running version stays.
  const admin = await ctx.newPage();
  admin.on('pageerror', (e) => errors.push(e.message));
  await admin.goto(`${BASE}/admin?lang=en#token=${process.env.ADMIN}`);
  await admin.click('[data-view=flows]');
  const first = admin.locator('[data-flow]').first();
  const flow = await first.getAttribute('data-flow');
  await first.click();
  await admin.locator('#graph g').first().waitFor({ timeout: 5000 });
  check(await admin.locator('#graph g').count() >= 2, `flow ${flow} is drawn as a graph`);
  const editor = admin.locator('#editor');
  const source = await editor.inputValue();
  check(/^start = "[^"]+"/m.test(source), 'the editor holds the flow');
  await editor.fill(source.replace(/^start = "[^"]+"/m, 'start = "nowhere"'));
  await admin.click('#save');
  await admin.locator('#verdict.error').waitFor({ timeout: 5000 });
  const problems = await admin.locator('ul.problems li').allTextContents();
  check(problems.some((p) => p.startsWith(`${flow}.toml:`) && p.includes('nowhere')), `the refusal names file and line (${problems[0]})`);
  await admin.screenshot({ path: `${SHOTS}/admin-refused.png`, fullPage: true });
  await step('check-flow-unchanged');

  check(dialogs.length === 0, `no dialog opened (${dialogs.join(', ')})`);
  check(errors.length === 0, `no script errors (${errors.join('; ')})`);
  console.log('ALL OK');
} finally {
  await browser.close();
  // stdin (the steps' answers) would keep node running.
  rl.close();
}
