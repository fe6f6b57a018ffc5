// Drives chat_push's page (GET /) in headless Chromium, as two people in two
// browser windows would, and checks what each page shows.
//
//   node chat_page.js http://127.0.0.1:PORT/ [http://127.0.0.1:PORT2/]
//   node chat_page.js --room http://127.0.0.1:PORT_A/ http://127.0.0.1:PORT_B/
//
// The second URL, if given, is a chat_push that allows only another origin: the
// page served from it must say that it could not connect and why. With --room,
// page A opens the first server and page B the second, two chat_push sharing one
// room through Redis: the same checks, across servers, with names
// `User<port>@<server>`.
//
// Run by chat_page.sh, which installs Chromium and playwright-core, starts the
// server and reads its address. Environment: CHROMIUM (default /usr/bin/chromium),
// STEP_TIMEOUT_MS (how long each wait may take, default 10000).
//
// Each page learns its own user name from the first line it shows: the server
// adds a newcomer to the chat and then tells everyone, the newcomer first among
// them, `User<port> just connected.`, so nothing can come before it. The checks
// then follow one message from page A to page B (push to another client), one
// back, a non-ASCII one (UTF-8 through the browser's masking and our unmasking),
// and B leaving. It also checks that each page says which user it is, and that
// joins and leaves are styled apart from messages. Every check prints `ok` or `FAIL` with what was seen; the last
// line is `RESULT passed=N failed=N` for the calling script.
'use strict';

const { chromium } = require('playwright-core');

const room = process.argv[2] === '--room';
const url = room ? process.argv[3] : process.argv[2];
const urlB = room ? process.argv[4] : process.argv[2];
const refusingUrl = room ? undefined : process.argv[3];
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const stepTimeout = Number(process.env.STEP_TIMEOUT_MS || 10000);
// The whole run, whatever happens inside it (a hung browser included).
const overallTimeoutMs = 90000;

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

function finish(code) {
  console.log(`RESULT passed=${passed} failed=${failed}`);
  process.exit(code !== undefined ? code : failed === 0 ? 0 : 1);
}

/** The text of `selector` for a failure message, or what went wrong reading it. */
async function textOf(page, selector) {
  try {
    return JSON.stringify(await page.textContent(selector, { timeout: 1000 }));
  } catch (e) {
    return `(no ${selector})`;
  }
}

/** The lines the page shows in #messages, in order. */
async function lines(page) {
  return page.$$eval('#messages li', (items) => items.map((li) => li.textContent));
}

/**
 * Waits until `page` shows `line` in #messages. Returns true if it came within the
 * step timeout; otherwise false, and the caller reports the lines that were there.
 */
async function waitForLine(page, line) {
  try {
    await page.waitForFunction(
      (want) =>
        Array.from(document.querySelectorAll('#messages li')).some((li) => li.textContent === want),
      line,
      { timeout: stepTimeout },
    );
    return true;
  } catch (e) {
    return false;
  }
}

/** Checks that `page` shows `line`, naming what it showed instead if not. */
async function expectLine(name, page, line) {
  const ok = await waitForLine(page, line);
  return check(name, ok, ok ? '' : `wanted ${JSON.stringify(line)}, page shows ${JSON.stringify(await lines(page))}`);
}

/** Opens the chat page at `pageUrl` in a fresh context; returns the page and its user's name. */
async function openChat(browser, label, problems, pageUrl) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(stepTimeout);
  page.on('pageerror', (e) => problems.push(`${label}: page error: ${e.message}`));
  page.on('console', (m) => {
    // The browser asks for /favicon.ico on its own; the chat has none (404).
    const from = (m.location() && m.location().url) || '';
    if (m.type() === 'error' && !from.endsWith('/favicon.ico')) {
      problems.push(`${label}: console error: ${m.text()} (${from})`);
    }
  });
  const response = await page.goto(pageUrl, { timeout: stepTimeout });
  const status = response ? response.status() : 0;
  check(`${label}: GET / answers 200 with the chat page`, status === 200 && (await page.title()) === 'wirepatterns push chat',
    `status ${status}, title ${JSON.stringify(await page.title())}`);
  // The page's own join notice is the first line it gets: `User<port>`, or
  // `User<port>@<server>` in a room shared through Redis.
  let name = null;
  try {
    await page.waitForSelector('#messages li', { timeout: stepTimeout });
    const first = (await lines(page))[0] || '';
    const m = (room ? /^(User\d+@[A-Za-z0-9._-]+) just connected\.$/ : /^(User\d+) just connected\.$/).exec(first);
    name = m ? m[1] : null;
    check(`${label}: first line is its own join notice`, name !== null, `first line ${JSON.stringify(first)}`);
  } catch (e) {
    check(`${label}: first line is its own join notice`, false, `no line within ${stepTimeout} ms; status line ${await textOf(page, '#status')}`);
  }
  const statusLine = await textOf(page, '#status');
  check(`${label}: status line says connected`, /^"connected to ws:\/\//.test(statusLine), statusLine);
  if (name !== null) {
    const me = await textOf(page, '#me');
    check(`${label}: says which user it is`, me === JSON.stringify(`You are ${name}.`), me);
  }
  return { context, page, name };
}

/** The class of the line `line` on `page` (`join`, `leave`, `message`, `mine`, `note`). */
async function classOf(page, line) {
  return page.$$eval('#messages li', (items, want) => {
    const li = items.find((item) => item.textContent === want);
    return li ? li.className : null;
  }, line);
}

/** Checks that the line `line` on `page` has the class `kind`. */
async function expectClass(name, page, line, kind) {
  const got = await classOf(page, line);
  return check(name, got === kind, `line ${JSON.stringify(line)} has class ${JSON.stringify(got)}`);
}

/** Types `text` into the page's box and clicks Send, as a person would. */
async function say(page, text) {
  await page.fill('#text', text);
  await page.click('#send');
}

async function main() {
  if (!url || !urlB) {
    console.error('usage: node chat_page.js http://127.0.0.1:PORT/ [http://127.0.0.1:PORT2/]\n' +
      '       node chat_page.js --room http://127.0.0.1:PORT_A/ http://127.0.0.1:PORT_B/');
    process.exit(2);
  }
  const problems = [];
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    args: chromiumArgs,
    timeout: 30000,
  });
  try {
    console.log(`browser: Chromium ${browser.version()}, page ${url}${room ? ` and ${urlB}, one room through Redis` : ''}`);
    const a = await openChat(browser, 'page A', problems, url);
    const b = await openChat(browser, room ? 'page B (the other server)' : 'page B', problems, urlB);
    if (a.name === null || b.name === null) {
      check('both pages know their user', false, 'cannot go on without both names');
      return;
    }
    check('the two pages are two users', a.name !== b.name, `both are ${a.name}`);

    // B's arrival is pushed to A.
    await expectLine('page A sees B join', a.page, `${b.name} just connected.`);

    // A says something: both pages show it, under A's name.
    const hello = `hello from A ${Date.now()}`;
    await say(a.page, hello);
    await expectLine('page A shows its own message', a.page, `${a.name} says: ${hello}`);
    await expectLine("page B gets A's message (push to another client)", b.page, `${a.name} says: ${hello}`);
    check('page A clears the text box after sending', (await a.page.inputValue('#text')) === '',
      JSON.stringify(await a.page.inputValue('#text')));

    // B answers, with text outside ASCII: UTF-8, masked by the browser.
    const reply = 'réponse de B: ✓ 世界 🙂';
    await say(b.page, reply);
    await expectLine("page A gets B's non-ASCII reply", a.page, `${b.name} says: ${reply}`);
    await expectLine('page B shows its own reply', b.page, `${b.name} says: ${reply}`);

    // Joins and messages look different; one's own messages too.
    await expectClass("page A shows B's join as a join", a.page, `${b.name} just connected.`, 'join');
    await expectClass("page A shows its own message as its own", a.page, `${a.name} says: ${hello}`, 'mine');
    await expectClass("page A shows B's reply as a message", a.page, `${b.name} says: ${reply}`, 'message');

    // B leaves: A is told.
    await b.context.close();
    await expectLine('page A sees B leave', a.page, `${b.name} left.`);
    await expectClass("page A shows B's leave as a leave", a.page, `${b.name} left.`, 'leave');

    // Order on A: the join, the message, the reply, the leave.
    const seen = await lines(a.page);
    const order = [
      `${a.name} just connected.`,
      `${b.name} just connected.`,
      `${a.name} says: ${hello}`,
      `${b.name} says: ${reply}`,
      `${b.name} left.`,
    ];
    check('page A shows exactly these lines, in order', JSON.stringify(seen) === JSON.stringify(order),
      `page shows ${JSON.stringify(seen)}`);
    check('no page errors or console errors', problems.length === 0, problems.join('; '));
    await a.context.close();

    if (refusingUrl) {
      // A server that allows another origin only: its 403 reaches the page as a
      // bare 1006, which the page must explain.
      const context = await browser.newContext();
      const page = await context.newPage();
      page.setDefaultTimeout(stepTimeout);
      await page.goto(refusingUrl, { timeout: stepTimeout });
      await expectLine('a refused origin is explained on the page', page,
        'could not connect (the server refused the WebSocket handshake — is this origin allowed? see --allow-origin)');
      const statusLine = await textOf(page, '#status');
      check('a refused origin: status line says could not connect', statusLine === '"could not connect"', statusLine);
      await context.close();
    }
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
