// Drives the jobs server's lab page (GET /) in headless Chromium: submits a job,
// lets the page follow it four ways at once (short polling, long polling, SSE,
// WebSocket), and checks what the page shows against what each pattern must cost.
//
//   node jobs_page.js http://127.0.0.1:PORT/ [path/to/jobs]
//
// The server must be fresh (no job submitted yet): the checks compare its /stats
// with what the page counted for the first job.
//
// Run by jobs_page.sh, which installs Chromium and playwright-core, starts
// `jobs --step-ms 400` and reads its address. Environment: CHROMIUM (default
// /usr/bin/chromium), STEP_TIMEOUT_MS (each short wait, default 10000), STEP_MS
// (the server's --step-ms, default 400), LATE_BOUND_MS (the largest lateness
// accepted, default 3000).
//
// What is checked, with a step (400 ms) longer than the short poll's interval
// (set to 100 ms on the page):
// - all four followers reach 100% and say so (`data-done="1"`), with no error line;
// - long polling, SSE and WebSocket each saw all 11 updates, 0 to 100 by 10, in
//   order; short polling may skip some but saw 100, in increasing order;
// - the costs differ as the patterns do: short polling sent more requests than
//   long polling (and more bytes came back); long polling sent about one request
//   per update (at least one per update, at most two more); SSE and WebSocket
//   opened one connection each;
// - the page's counters are the requests the browser really made (counted here
//   from the browser's own network events);
// - lateness: numbers >= 0, last <= max, max below LATE_BOUND_MS;
// - submitting a second job while the first runs: the first job's followers stop
//   at once (no request for it after the second submit, its held long poll,
//   SSE stream and WebSocket end within 2 s, long before the job would have
//   finished), and all four follow the next job to 100% from scratch;
// - Submit pressed 4 times in a row: the last job is still followed to 100% by all
//   four (the earlier ones' held connections were let go: a browser opens only 6
//   per host);
// - the server's side (GET /stats; job 1 is a fresh server's first job): its
//   request counts are the page's, it held 10 long polls, its exact bytes_out for
//   SSE and WebSocket are close to the page's estimates; at the end it holds
//   nothing, and saw the replaced jobs' streams and sockets leave;
// - failures (with the server's binary as the second argument, which starts two
//   more servers of its own and kills them by PID): on a full store (--max-jobs 1)
//   Submit shows the 503's "try again in N s"; when the server dies mid-job, short
//   polling, long polling and the WebSocket show an error line, SSE that the
//   browser reconnects by itself, and no exception escapes the page.
// Every check prints `ok` or `FAIL` with what was seen; the last line is
// `RESULT passed=N failed=N` for the calling script.
'use strict';

const { spawn } = require('child_process');
const { chromium } = require('playwright-core');

const url = process.argv[2];
// The jobs server's binary, to start the two servers of the failure checks.
const serverBin = process.argv[3];
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const stepTimeout = Number(process.env.STEP_TIMEOUT_MS || 10000);
const stepMs = Number(process.env.STEP_MS || 400);
const lateBoundMs = Number(process.env.LATE_BOUND_MS || 3000);
// A job runs 10 steps; give it that twice over, plus a margin for a slow machine.
const jobTimeout = 20 * stepMs + stepTimeout;
// The whole run, whatever happens inside it (a hung browser included).
const overallTimeoutMs = 120000;

const PATTERNS = ['short', 'long', 'sse', 'ws'];
const ALL_UPDATES = [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100];
const JOB_ID = /^job:\d+(-\d+)?$/;

// The flags this machine needs (see the machine notes): no sandbox as root, no GPU,
// and no background connections to Google, which a closed network refuses.
const chromiumArgs = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

let passed = 0;
let failed = 0;

function check(name, ok, detail) {
  if (ok) {
    passed += 1;
    console.log(`ok   ${name}`);
  } else {
    failed += 1;
    console.log(`FAIL ${name}${detail ? `: ${detail}` : ''}`);
  }
  return ok;
}

/** Servers this script started (the failure checks'): killed by their PID at the end. */
const spawned = [];

function finish(code) {
  for (const child of spawned) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  console.log(`RESULT passed=${passed} failed=${failed}`);
  process.exit(code !== undefined ? code : failed === 0 ? 0 : 1);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Everything the browser sends or opens, as Playwright sees it (not as the page
 * counts it): every request with when it started and when (and how) it ended, and
 * every WebSocket with when it closed. `seq` orders them all.
 */
function watchNetwork(page) {
  const net = { seq: 0, requests: [], sockets: [] };
  const byRequest = new Map();
  page.on('request', (request) => {
    const entry = { seq: ++net.seq, url: request.url(), method: request.method(), started: Date.now(), ended: null, how: null };
    byRequest.set(request, entry);
    net.requests.push(entry);
  });
  page.on('requestfinished', (request) => {
    const entry = byRequest.get(request);
    if (entry && entry.ended === null) Object.assign(entry, { ended: Date.now(), how: 'finished' });
  });
  page.on('requestfailed', (request) => {
    const entry = byRequest.get(request);
    const failure = request.failure();
    if (entry && entry.ended === null) Object.assign(entry, { ended: Date.now(), how: failure ? failure.errorText : 'failed' });
  });
  page.on('websocket', (socket) => {
    const entry = { seq: ++net.seq, url: socket.url(), started: Date.now(), closed: null, frames: 0 };
    net.sockets.push(entry);
    socket.on('framereceived', () => {
      entry.frames += 1;
    });
    socket.on('close', () => {
      entry.closed = Date.now();
    });
  });
  return net;
}

/** The query parameter `name` of `u`, or null. */
function param(u, name) {
  try {
    return new URL(u).searchParams.get(name);
  } catch (e) {
    return null;
  }
}

/** The requests (and sockets) of `net` that were for `job`, by kind. */
function jobTraffic(net, job) {
  const ofJob = (e) => param(e.url, 'jobId') === job;
  const path = (e) => new URL(e.url).pathname;
  const checks = net.requests.filter((e) => ofJob(e) && path(e) === '/checkstatus');
  return {
    short: checks.filter((e) => param(e.url, 'wait') === null),
    long: checks.filter((e) => param(e.url, 'wait') !== null),
    events: net.requests.filter((e) => ofJob(e) && path(e) === '/events'),
    sockets: net.sockets.filter(ofJob),
  };
}

/** What one pattern's panel shows, as numbers where they are numbers. */
async function panel(page, name) {
  return page.evaluate((n) => {
    const text = (id) => document.getElementById(id).textContent.trim();
    const num = (id) => {
      const t = text(id);
      return /^-?\d+$/.test(t) ? Number(t) : t; // `–` when there is none yet
    };
    const section = document.getElementById(n);
    const seen = text(`${n}-seen`).replace(/^seen:\s*/, '');
    return {
      state: section.dataset.state,
      done: section.dataset.done === '1',
      job: section.dataset.job,
      progress: document.getElementById(`${n}-progress`).value,
      percent: text(`${n}-percent`),
      requests: num(`${n}-requests`),
      bytes: num(`${n}-bytes`),
      updates: num(`${n}-updates`),
      lateLast: num(`${n}-late-last`),
      lateMax: num(`${n}-late-max`),
      seen: seen === '' ? [] : seen.split(/\s+/).map(Number),
      error: text(`${n}-error`),
    };
  }, name);
}

async function panels(page) {
  const all = {};
  for (const name of PATTERNS) all[name] = await panel(page, name);
  return all;
}

/** Clicks Submit and waits for the page to show a new handle; returns it (or null). */
async function submitJob(page, previous) {
  await page.click('#submit');
  try {
    const handle = await page.waitForFunction(
      ([re, prev]) => {
        const t = document.getElementById('job').textContent.trim();
        return new RegExp(re).test(t) && t !== prev ? t : null;
      },
      [JOB_ID.source, previous],
      { timeout: stepTimeout },
    );
    return await handle.jsonValue();
  } catch (e) {
    return null;
  }
}

/** Waits until all four panels follow `job` and reached 100%; true if they did in time. */
async function waitAllDone(page, job) {
  try {
    await page.waitForFunction(
      ([names, j]) => names.every((n) => {
        const s = document.getElementById(n);
        return s.dataset.job === j && (s.dataset.done === '1' || s.dataset.state === 'error');
      }),
      [PATTERNS, job],
      { timeout: jobTimeout },
    );
  } catch (e) {
    return false;
  }
  // The polls' byte counts come from the browser's resource entries, delivered a
  // moment after each answer: wait until every panel has counted some bytes.
  try {
    await page.waitForFunction(
      (names) => names.every((n) => Number(document.getElementById(`${n}-bytes`).textContent) > 0),
      PATTERNS,
      { timeout: stepTimeout },
    );
  } catch (e) {
    // Reported by the bytes check below.
  }
  return true;
}

const isLate = (v) => Number.isInteger(v) && v >= 0 && v < lateBoundMs;
const ascending = (xs) => xs.every((x, i) => i === 0 || xs[i - 1] < x);

/** The checks every followed job must pass: `label` names the job in the output. */
async function checkJob(page, net, job, label) {
  const done = await waitAllDone(page, job);
  const p = await panels(page);
  check(`${label}: all four reach 100% within ${jobTimeout} ms`, done && PATTERNS.every((n) => p[n].done),
    PATTERNS.map((n) => `${n} ${p[n].percent} state=${p[n].state} ${p[n].error}`).join('; '));
  for (const n of PATTERNS) {
    check(`${label}: ${n} follows ${job}`, p[n].job === job, `panel's job ${p[n].job}`);
    check(`${label}: ${n} shows 100% (bar and number)`, p[n].progress === 100 && p[n].percent === '100%',
      `bar ${p[n].progress}, number ${p[n].percent}`);
    check(`${label}: ${n} has no error line`, p[n].error === '', JSON.stringify(p[n].error));
  }

  // Updates: all 11 for the three that are told of each update; short polling only
  // sees what there is when it asks.
  for (const n of ['long', 'sse', 'ws']) {
    check(`${label}: ${n} saw all 11 updates, 0..100 in order`,
      JSON.stringify(p[n].seen) === JSON.stringify(ALL_UPDATES) && p[n].updates === 11,
      `seen ${JSON.stringify(p[n].seen)}, counter ${p[n].updates}`);
  }
  const s = p.short;
  check(`${label}: short polling saw 100 and only real updates, in order`,
    s.seen.length === s.updates && s.seen[s.seen.length - 1] === 100 && ascending(s.seen) &&
      s.seen.every((v) => ALL_UPDATES.includes(v)),
    `seen ${JSON.stringify(s.seen)}, counter ${s.updates}`);

  // Requests: what the patterns cost.
  check(`${label}: short polling sent more requests than long polling (step ${stepMs} ms > interval)`,
    Number.isInteger(s.requests) && s.requests > p.long.requests,
    `short ${s.requests}, long ${p.long.requests}`);
  check(`${label}: short polling sent at least one request per update seen`, s.requests >= s.updates,
    `requests ${s.requests}, updates ${s.updates}`);
  check(`${label}: long polling: about one request per update (updates <= requests <= updates + 2)`,
    p.long.requests >= p.long.updates && p.long.requests <= p.long.updates + 2,
    `requests ${p.long.requests}, updates ${p.long.updates}`);
  check(`${label}: SSE opened one connection`, p.sse.requests === 1, `${p.sse.requests}`);
  check(`${label}: WebSocket opened one connection`, p.ws.requests === 1, `${p.ws.requests}`);

  // The page's counters against the browser's own record of its traffic.
  const t = jobTraffic(net, job);
  check(`${label}: short polling's counter = the polls without wait the browser sent`,
    t.short.length === s.requests, `page ${s.requests}, browser ${t.short.length}`);
  check(`${label}: long polling's counter = the polls with wait the browser sent`,
    t.long.length === p.long.requests, `page ${p.long.requests}, browser ${t.long.length}`);
  check(`${label}: long polling's first request is wait=0&since=0, the next ones wait=25`,
    t.long.length > 1 && param(t.long[0].url, 'wait') === '0' && param(t.long[0].url, 'since') === '0' &&
      t.long.slice(1).every((e) => param(e.url, 'wait') === '25'),
    t.long.slice(0, 3).map((e) => new URL(e.url).search).join(' '));
  check(`${label}: the browser sent one /events request`, t.events.length === 1, `${t.events.length}`);
  check(`${label}: the browser opened one WebSocket, which got 11 frames and was closed`,
    t.sockets.length === 1 && t.sockets[0].frames >= 11 && t.sockets[0].closed !== null,
    JSON.stringify(t.sockets.map((w) => ({ frames: w.frames, closed: w.closed !== null }))));

  // Bytes: all counted something; short polling got more back than long polling.
  for (const n of PATTERNS) {
    check(`${label}: ${n} counted bytes received`, Number.isInteger(p[n].bytes) && p[n].bytes > 0, `${p[n].bytes}`);
  }
  check(`${label}: short polling received more bytes than long polling`, s.bytes > p.long.bytes,
    `short ${s.bytes}, long ${p.long.bytes}`);

  // Lateness: numbers, >= 0, last <= max, below the bound.
  for (const n of PATTERNS) {
    check(`${label}: ${n} lateness is numbers, 0 <= last <= max < ${lateBoundMs} ms`,
      isLate(p[n].lateLast) && isLate(p[n].lateMax) && p[n].lateLast <= p[n].lateMax,
      `last ${JSON.stringify(p[n].lateLast)}, max ${JSON.stringify(p[n].lateMax)}`);
  }
  console.log(`     ${label} (${job}): ` + PATTERNS.map((n) =>
    `${n}: ${p[n].requests} req, ${p[n].bytes} B, ${p[n].updates} upd, late ${p[n].lateLast}/${p[n].lateMax} ms`).join(' | '));
  return p;
}

/** The server's `GET /stats`: its status and a map name -> number. */
async function serverStats() {
  try {
    const response = await fetch(new URL('stats', url), { signal: AbortSignal.timeout(stepTimeout) });
    const stats = new Map();
    for (const line of (await response.text()).split('\n')) {
      const m = /^(\S+) (\d+)$/.exec(line);
      if (m) stats.set(m[1], Number(m[2]));
    }
    return { status: response.status, stats };
  } catch (e) {
    return { status: 0, stats: new Map(), error: String(e) };
  }
}

/** The named numbers of `stats` (a serverStats() map), for a failure message. */
const some = (stats, names) => names.map((n) => `${n} ${stats.get(n)}`).join(', ');

/**
 * Job 1 is the first job of a fresh server, so the server's totals are job 1's:
 * its count of each pattern's requests must be the page's, and its exact count of
 * the bytes it sent on the stream and the socket must be close to the page's
 * estimates.
 */
async function checkServerSide(p) {
  const { status, stats, error } = await serverStats();
  if (!check('GET /stats answers 200 with `name value` lines', status === 200 && stats.has('short.requests'),
    `status ${status} ${error || ''}, ${stats.size} lines`)) return;
  check("server's request counts are the page's for job 1 (short, long, sse, ws)",
    stats.get('short.requests') === p.short.requests && stats.get('long.requests') === p.long.requests &&
      stats.get('sse.requests') === 1 && stats.get('ws.requests') === 1,
    `server: ${some(stats, ['short.requests', 'long.requests', 'sse.requests', 'ws.requests'])}; ` +
      `page: ${PATTERNS.map((n) => `${n} ${p[n].requests}`).join(', ')}`);
  check('server held 10 long polls for job 1 (one per update after 0%), none ran out',
    stats.get('long.held_total') === 10 && stats.get('long.timed_out') === 0,
    some(stats, ['long.held_total', 'long.timed_out']));
  const sse = stats.get('sse.bytes_out');
  check("page's SSE byte estimate is within 10% of the server's sse.bytes_out",
    Math.abs(p.sse.bytes - sse) <= 0.1 * sse, `page ${p.sse.bytes}, server ${sse}`);
  // The page's estimate includes the 101 answer (about 170 bytes) and the close
  // frame (16 with its reason); accept the server's count with or without them.
  const ws = stats.get('ws.bytes_out');
  check("page's WebSocket byte estimate is the server's ws.bytes_out (-10%) plus at most 200 (handshake, close)",
    p.ws.bytes >= 0.9 * ws && p.ws.bytes <= ws + 200, `page ${p.ws.bytes}, server ${ws}`);
  console.log(`     server's bytes_out for job 1: short ${stats.get('short.bytes_out')}, long ${stats.get('long.bytes_out')}, ` +
    `sse ${sse}, ws ${ws} (the page's polling counts are transferSize: body + 300 per answer)`);
}

/**
 * At the end every job has finished or was replaced: the server must hold nothing
 * (the replaced jobs' long polls, streams and sockets were closed by the page and
 * noticed by the server), and it saw the replaced jobs' streams and sockets go.
 */
async function checkServerLetGo(replaced) {
  const held = ['long.held_now', 'sse.held_now', 'ws.held_now'];
  let last = null;
  const until = Date.now() + stepTimeout;
  for (;;) {
    last = await serverStats();
    if (held.every((n) => last.stats.get(n) === 0) || Date.now() > until) break;
    await sleep(100);
  }
  check('server holds no long poll, stream or socket once every job ended or was replaced',
    held.every((n) => last.stats.get(n) === 0), some(last.stats, held));
  check(`server saw the ${replaced} replaced jobs' SSE streams and WebSockets leave while held`,
    last.stats.get('sse.left_while_held') >= replaced && last.stats.get('ws.left_while_held') >= replaced,
    some(last.stats, ['sse.left_while_held', 'ws.left_while_held', 'long.left_while_held']));
}

/**
 * Starts `serverBin --addr 127.0.0.1:0 --step-ms STEP ...extra` and returns
 * `{ child, base }` once it printed its ready line (`base` is null if it did not
 * within 10 s).
 */
async function startServer(extra) {
  const child = spawn(serverBin, ['--addr', '127.0.0.1:0', '--step-ms', String(stepMs), ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  spawned.push(child);
  child.stderr.resume();
  const base = await new Promise((resolve) => {
    let out = '';
    const timer = setTimeout(() => resolve(null), 10000);
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const m = /^listening on (http:\/\/[0-9.]+:[0-9]+)$/m.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(`${m[1]}/`);
      }
    });
    child.on('exit', () => {
      clearTimeout(timer);
      resolve(null);
    });
  });
  return { child, base };
}

/** Kills `child` (SIGKILL: the server dies, as in a crash) and waits until it has. */
async function killServer(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await Promise.race([exited, sleep(5000)]);
}

/** Opens `base` in a fresh context; returns `{ context, page, pageErrors }`. */
async function openLab(browser, base) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(stepTimeout);
  const pageErrors = [];
  // Uncaught exceptions and unhandled rejections only: a dead server makes the
  // browser log its failed requests as console errors, which is expected here.
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(base, { timeout: stepTimeout });
  return { context, page, pageErrors };
}

/**
 * What the page says when things fail:
 * - a store that is full: Submit answers 503 and the page says when to try again;
 * - the server dies while a job is followed: short polling, long polling and the
 *   WebSocket each show an error line (and `data-state="error"`); SSE shows that
 *   the browser is reconnecting by itself, which EventSource does until told to stop.
 */
async function checkFailures(browser) {
  if (!serverBin) {
    console.log('     (no server binary given: the failure checks are skipped)');
    return;
  }
  // --- a full store: 503 with Retry-After ------------------------------------------
  const full = await startServer(['--max-jobs', '1']);
  if (!check('a jobs server with --max-jobs 1 starts', full.base !== null)) return;
  const filled = await fetch(new URL('submit', full.base), { method: 'POST', signal: AbortSignal.timeout(stepTimeout) });
  check('its one job slot is taken (POST /submit from here: 200)', filled.status === 200, `${filled.status}`);
  {
    const { context, page, pageErrors } = await openLab(browser, full.base);
    await page.click('#submit');
    let said = '';
    try {
      await page.waitForFunction(() => document.getElementById('submit-error').textContent !== '', null, { timeout: stepTimeout });
      said = (await page.textContent('#submit-error')).trim();
    } catch (e) {
      // Reported below.
    }
    check('Submit on a full server: the page says when to try again (503, Retry-After)',
      /try again in \d+ s/.test(said), JSON.stringify(said));
    check('Submit on a full server: no job is followed', (await page.textContent('#job')).trim() === 'none',
      JSON.stringify(await page.textContent('#job')));
    check('Submit on a full server: no page error', pageErrors.length === 0, pageErrors.join('; '));
    await context.close();
  }
  await killServer(full.child);

  // --- the server dies while a job is followed ---------------------------------------
  const doomed = await startServer([]);
  if (!check('a second jobs server starts (to be killed)', doomed.base !== null)) return;
  const { context, page, pageErrors } = await openLab(browser, doomed.base);
  await page.selectOption('#interval', '100');
  await page.click('#submit');
  try {
    // All four are following (each saw 10%), none is done.
    await page.waitForFunction(
      (names) => names.every((n) => document.getElementById(`${n}-seen`).textContent.includes(' 10')),
      PATTERNS,
      { timeout: stepTimeout },
    );
  } catch (e) {
    check('all four follow the job before the server dies', false, `${await page.textContent('#job')}`);
    await context.close();
    await killServer(doomed.child);
    return;
  }
  await killServer(doomed.child);
  const errorOf = (n) => page.evaluate((name) => ({
    state: document.getElementById(name).dataset.state,
    error: document.getElementById(`${name}-error`).textContent,
  }), n);
  for (const n of ['short', 'long', 'ws']) {
    try {
      await page.waitForFunction((name) => document.getElementById(name).dataset.state === 'error', n, { timeout: stepTimeout });
    } catch (e) {
      // Reported below.
    }
    const got = await errorOf(n);
    check(`server killed: ${n} shows an error line`, got.state === 'error' && got.error.trim() !== '',
      JSON.stringify(got));
  }
  try {
    await page.waitForFunction(() => /reconnect/.test(document.getElementById('sse-error').textContent), null, { timeout: stepTimeout });
  } catch (e) {
    // Reported below.
  }
  const sse = await errorOf('sse');
  check('server killed: SSE says the browser is reconnecting by itself', /reconnect/.test(sse.error), JSON.stringify(sse));
  check('server killed: no page error (every failure is caught and shown)', pageErrors.length === 0, pageErrors.join('; '));
  await context.close();
}

async function main() {
  if (!url) {
    console.error('usage: node jobs_page.js http://127.0.0.1:PORT/');
    process.exit(2);
  }
  const problems = [];
  const browser = await chromium.launch({ executablePath, headless: true, args: chromiumArgs, timeout: 30000 });
  try {
    console.log(`browser: Chromium ${browser.version()}, page ${url}`);
    const context = await browser.newContext();
    const page = await context.newPage();
    page.setDefaultTimeout(stepTimeout);
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console error: ${m.text()} (${(m.location() && m.location().url) || ''})`);
    });
    const net = watchNetwork(page);

    const response = await page.goto(url, { timeout: stepTimeout });
    const status = response ? response.status() : 0;
    const type = response ? response.headers()['content-type'] : '';
    check('GET / answers 200 text/html with the lab page',
      status === 200 && /^text\/html/.test(type || '') && (await page.title()) === 'wirepatterns jobs lab',
      `status ${status}, content-type ${type}, title ${JSON.stringify(await page.title())}`);
    check('the short poll interval is 1 s by default', (await page.inputValue('#interval')) === '1000',
      JSON.stringify(await page.inputValue('#interval')));
    const how = await page.$$eval('.bytes-how', (els) => els.map((e) => e.textContent));
    check("polling bytes come from the browser's transferSize in Chromium (labelled transferSize)",
      how.length === 2 && how.every((t) => t === '(transferSize)'), JSON.stringify(how));

    // --- one job, followed four ways ------------------------------------------------
    await page.selectOption('#interval', '100');
    const first = await submitJob(page, null);
    if (!check('Submit shows the new job handle', first !== null, `#job shows ${JSON.stringify(await page.textContent('#job'))}`)) return;
    const p1 = await checkJob(page, net, first, 'job 1');
    await checkServerSide(p1);

    // --- a second job while another runs: the first one's followers stop -------------
    const second = await submitJob(page, first);
    if (!check('a second Submit shows another handle', second !== null && second !== first, `${second}`)) return;
    // Let it run a little (short polling saw 0% and 10%), then replace it.
    try {
      await page.waitForFunction(() => Number(document.getElementById('short-updates').textContent) >= 2,
        null, { timeout: stepTimeout });
    } catch (e) {
      // Checked below: the job must still have been running when it was replaced.
    }
    const before = await panels(page);
    check('job 2 was still running when replaced', PATTERNS.every((n) => !before[n].done),
      PATTERNS.map((n) => `${n} ${before[n].percent}`).join(', '));
    const clickedAt = Date.now();
    const third = await submitJob(page, second);
    if (!check('Submit while a job runs shows another handle', third !== null && third !== second, `${third}`)) return;
    // The POST of the third job: nothing for the second job may start after it.
    const post = net.requests.filter((e) => e.method === 'POST' && new URL(e.url).pathname === '/submit').pop();
    // Give the old followers' held requests and sockets time to end: 2 s, well
    // before the second job would end on its own (it had 8 steps of 400 ms left).
    await sleep(2000);
    const old = jobTraffic(net, second);
    const after = [...old.short, ...old.long, ...old.events, ...old.sockets].filter((e) => e.seq > post.seq);
    check('no request for job 2 after job 3 was submitted', after.length === 0,
      after.map((e) => e.url).join(', '));
    const heldLong = old.long.filter((e) => e.ended === null || e.ended >= clickedAt);
    check("job 2's held long poll was cancelled at the click",
      heldLong.length >= 1 && heldLong.every((e) => e.ended !== null && e.ended - clickedAt < 2000),
      JSON.stringify(heldLong.map((e) => ({ ended: e.ended && e.ended - clickedAt, how: e.how }))));
    check("job 2's SSE stream was closed at the click",
      old.events.length === 1 && old.events[0].ended !== null && old.events[0].ended - clickedAt < 2000,
      JSON.stringify(old.events.map((e) => ({ ended: e.ended && e.ended - clickedAt, how: e.how }))));
    check("job 2's WebSocket was closed at the click",
      old.sockets.length === 1 && old.sockets[0].closed !== null && old.sockets[0].closed - clickedAt < 2000,
      JSON.stringify(old.sockets.map((e) => ({ closed: e.closed && e.closed - clickedAt, frames: e.frames }))));
    // The third job is followed from scratch, all four to 100%, with the same checks.
    await checkJob(page, net, third, 'job 3');

    // --- Submit pressed again and again ----------------------------------------------
    // Each press must let go of the previous job's held long poll and SSE stream: if
    // it did not, 4 jobs' worth would use up the browser's 6 connections per host
    // and the last job's polls would wait for a free one.
    let last = third;
    let presses = 0;
    for (; presses < 4; presses += 1) {
      const next = await submitJob(page, last);
      if (next === null) break;
      last = next;
      await sleep(300); // long enough for every follower to have its connection open
    }
    if (!check('4 quick Submits in a row each show a new handle', presses === 4, `${presses} did`)) return;
    const replaced = 1 + (presses - 1); // job 2, and every quick one but the last
    await checkJob(page, net, last, `job ${3 + presses} (after ${presses} quick Submits)`);

    await checkServerLetGo(replaced);
    check('no page errors or console errors', problems.length === 0, problems.join('; '));
    const foreign = net.requests.filter((e) => new URL(e.url).origin !== new URL(url).origin);
    check('the page loads nothing from elsewhere', foreign.length === 0, foreign.map((e) => e.url).join(', '));
    await context.close();

    await checkFailures(browser);
  } finally {
    await browser.close();
  }
}

const watchdog = setTimeout(() => {
  check(`the run ends within ${overallTimeoutMs / 1000} s`, false, 'watchdog fired');
  finish(1);
}, overallTimeoutMs);

main()
  .then(() => {
    clearTimeout(watchdog);
    finish();
  })
  .catch((e) => {
    clearTimeout(watchdog);
    check('the browser run completes', false, e && e.stack ? e.stack : String(e));
    finish(1);
  });
