// The page tests' side of the step protocol with their Rust test: `STEP
// name` on stdout asks the Rust side to make something happen (calls,
// phones); its `DONE name` on stdin says it did. And `check`, which fails the
// test with what was expected.
import readline from 'node:readline';

export const rl = readline.createInterface({ input: process.stdin });
const lines = [];
let wake = null;
rl.on('line', (l) => { lines.push(l); if (wake) { wake(); wake = null; } });

// Resolves (with the time) once the Rust side answered `DONE name`.
export async function step(name) {
  console.log(`STEP ${name}`);
  for (;;) {
    const i = lines.indexOf(`DONE ${name}`);
    if (i >= 0) { lines.splice(i, 1); return Date.now(); }
    await new Promise((r) => { wake = r; });
  }
}

export function check(ok, what) {
  if (!ok) throw new Error(`FAILED: ${what}`);
  console.log(`ok ${what}`);
}
