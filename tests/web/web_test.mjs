// The web page in a real browser: playwright-core (pinned in package-lock.json) driving Debian's headless Chromium
// against a whole stack started by `scripts/stack start` on free ports in a temporary directory.
//
//   node tests/web/web_test.mjs            (ctest runs it as the test `web`; npm ci first: scripts/test does it)
//   UPDATE_SCREENSHOT=1 node tests/web/web_test.mjs   also writes docs/screenshot.png
import { chromium } from "playwright-core";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, readFileSync, writeFileSync, copyFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { inflateRawSync } from "node:zlib";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const bin = process.env.MP3C_STACK_BIN || path.join(root, "build", "dev", "bin");
const chromiumPath = process.env.CHROMIUM || "/usr/bin/chromium";

// A free port for each of the stack's port variables (scripts/services.toml), from the harness's free_port: below the
// kernel's ephemeral range, so no other test's outgoing connection can hold one as its local end and keep a restarted
// server of this stack from binding it.
function freeStackPorts() {
  const out = execFileSync("python3", ["-B", path.join(root, "scripts", "lib", "mp3c_local"), "free-ports"],
    { encoding: "utf8" }).trim().split("\n").map((line) => line.split("="));
  assert.ok(out.length >= 10 && out.every(([name, port]) => name.endsWith("_PORT") && Number(port) > 0), String(out));
  return Object.fromEntries(out);
}

function log(message) {
  process.stderr.write(`web: ${message}\n`);
}

const work = mkdtempSync(path.join(tmpdir(), "mp3c-web-"));
const env = { ...process.env, MP3C_VAR_DIR: path.join(work, "var"), MP3C_STACK_BIN: bin, MP3C_STACK_BUILD: "0",
  STACK_START_TIMEOUT: "300" };
delete env.SMTP_HOST;
Object.assign(env, freeStackPorts());
const base = `http://127.0.0.1:${env.GATEWAY_PORT}`;

function stack(command) {
  const r = spawnSync(path.join(root, "scripts", "stack"), [command], { env, encoding: "utf8", timeout: 600_000 });
  if (r.status !== 0 && command !== "stop") {
    let tail = "";
    try { tail = readFileSync(path.join(env.MP3C_VAR_DIR, "log", "stack.log"), "utf8").split("\n").slice(-40).join("\n"); } catch {}
    throw new Error(`scripts/stack ${command} failed (${r.status}):\n${r.stdout}\n${r.stderr}\n${tail}`);
  }
}

// The first link matching `pattern` in a mail to `email`, from maildev's inbox (the stack's mail catcher), waiting.
async function linkMailedTo(email, pattern) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      const mails = await (await fetch(`http://127.0.0.1:${env.MAILDEV_PORT}/email`)).json();
      for (const m of mails) {
        if (!(m.to || []).some((t) => t.address === email)) continue;
        const found = (m.text || "").match(pattern);
        if (found) return found[0];
      }
    } catch {}
    assert.ok(Date.now() < deadline, `no mail to ${email} with ${pattern}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
const VERIFY_LINK = /https?:\/\/\S+\/verify\?token=[A-Za-z0-9_-]+/;
const RESET_LINK = /https?:\/\/\S+\/#reset=[A-Za-z0-9_-]+/;
// A job mail's link to the page's unsubscribe question (in its text); the token is "<user id>.<signature>".
const UNSUBSCRIBE_LINK = /https?:\/\/\S+\/#unsubscribe=[A-Za-z0-9._-]+/;

// The one-click address of the List-Unsubscribe header of a mail to `email`, from the mail's source in maildev. The
// header is folded, the address on a line of its own: "List-Unsubscribe:\r\n <URL>".
async function listUnsubscribeOf(email) {
  const mails = await (await fetch(`http://127.0.0.1:${env.MAILDEV_PORT}/email`)).json();
  for (const m of mails) {
    if (!(m.to || []).some((t) => t.address === email)) continue;
    const source = await (await fetch(`http://127.0.0.1:${env.MAILDEV_PORT}/email/${m.id}/source`)).text();
    const found = /^List-Unsubscribe:[ \t]*(?:\r?\n[ \t]+)?<([^>\s]+)>/im.exec(source);
    if (found) return found[1];
  }
  return null;
}

// Signs up through the API and follows the mailed link, as a person does from the mail.
async function register(email, password) {
  const r = await fetch(`${base}/register`, { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ email, password }) });
  assert.equal(r.status, 202, await r.text());
  const verified = await fetch(await linkMailedTo(email, VERIFY_LINK), { headers: { Accept: "application/json" } });
  assert.equal(verified.status, 200, await verified.text());
}

function makeAudio(file, seconds) {
  execFileSync("ffmpeg", ["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
    `sine=frequency=440:duration=${seconds}`, "-ac", "1", file]);
  return file;
}

function makeVideo(file, seconds = 4) {
  execFileSync("ffmpeg", ["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
    `testsrc=size=160x120:rate=10:duration=${seconds}`, "-f", "lavfi", "-i", `sine=frequency=330:duration=${seconds}`,
    "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", file]);
  return file;
}

// The entries of a ZIP file, from its central directory (ZIP64 too): [{name, size, data}] with each entry's bytes
// (stored or deflated).
function zipEntries(zip) {
  let end = -1;
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 22 - 0xffff); i -= 1) {
    if (zip.readUInt32LE(i) === 0x06054b50) { end = i; break; }
  }
  assert.ok(end >= 0, "the ZIP has no end of central directory record");
  let count = zip.readUInt16LE(end + 10);
  let offset = zip.readUInt32LE(end + 16);
  if (count === 0xffff || offset === 0xffffffff) {
    const locator = end - 20;
    assert.equal(zip.readUInt32LE(locator), 0x07064b50, "ZIP64 end of central directory locator");
    const record = Number(zip.readBigUInt64LE(locator + 8));
    assert.equal(zip.readUInt32LE(record), 0x06064b50, "ZIP64 end of central directory record");
    count = Number(zip.readBigUInt64LE(record + 32));
    offset = Number(zip.readBigUInt64LE(record + 48));
  }
  const entries = [];
  for (let i = 0; i < count; i += 1) {
    assert.equal(zip.readUInt32LE(offset), 0x02014b50, `central directory header ${i}`);
    const method = zip.readUInt16LE(offset + 10);
    let packed = zip.readUInt32LE(offset + 20), size = zip.readUInt32LE(offset + 24);
    let local = zip.readUInt32LE(offset + 42);
    const nameLength = zip.readUInt16LE(offset + 28), extraLength = zip.readUInt16LE(offset + 30);
    const commentLength = zip.readUInt16LE(offset + 32);
    const name = zip.toString("utf8", offset + 46, offset + 46 + nameLength);
    // ZIP64 extra field: the 8-byte values of the fields set to 0xffffffff, in this order.
    for (let p = offset + 46 + nameLength, stop = p + extraLength; p + 4 <= stop; p += 4 + zip.readUInt16LE(p + 2)) {
      if (zip.readUInt16LE(p) !== 0x0001) continue;
      let q = p + 4;
      if (size === 0xffffffff) { size = Number(zip.readBigUInt64LE(q)); q += 8; }
      if (packed === 0xffffffff) { packed = Number(zip.readBigUInt64LE(q)); q += 8; }
      if (local === 0xffffffff) local = Number(zip.readBigUInt64LE(q));
    }
    assert.equal(zip.readUInt32LE(local), 0x04034b50, `local header of ${name}`);
    const start = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
    const raw = zip.subarray(start, start + packed);
    assert.ok(method === 0 || method === 8, `${name}: compression method ${method}`);
    const data = method === 0 ? raw : inflateRawSync(raw);
    assert.equal(data.length, size, `${name}: size`);
    entries.push({ name, size, data });
    offset += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}

function probeMp3(file) {
  return JSON.parse(execFileSync("ffprobe", ["-v", "error", "-show_entries",
    "stream=codec_name,channels:format=duration", "-of", "json", file], { encoding: "utf8" }));
}

// The page's formatBytes (common.js), to compare the words it shows with the API's numbers.
function formatBytes(n) {
  if (n < 1000) return `${n} B`;
  const units = ["kB", "MB", "GB", "TB"];
  let value = n, unit = -1;
  do { value /= 1000; unit += 1; } while (value >= 1000 && unit < units.length - 1);
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

// A job as the API has it, with the page's own token.
async function jobJson(page, id) {
  const token = await page.evaluate(() => JSON.parse(sessionStorage.getItem("mp3c.session")).token);
  const r = await fetch(`${base}/jobs/${id}`, { headers: { Authorization: `Bearer ${token}` } });
  assert.equal(r.status, 200, await r.clone().text());
  return r.json();
}

// The account's choice of e-mails about its files, as the API has it, with the page's own token.
async function jobMailsOf(page) {
  const token = await page.evaluate(() => JSON.parse(sessionStorage.getItem("mp3c.session")).token);
  const r = await fetch(`${base}/account/preferences`, { headers: { Authorization: `Bearer ${token}` } });
  assert.equal(r.status, 200, await r.clone().text());
  return (await r.json()).job_mails;
}

// Waits until the page's e-mail setting is loaded (its select enabled) and shows `value`.
function waitForJobMails(page, value) {
  return page.waitForFunction((v) => {
    const select = document.querySelector('[data-testid="job-mails"]');
    return select !== null && !select.disabled && select.value === v;
  }, value, { timeout: 10_000 });
}

// Waits until an element's text (innerText, trimmed) is `text`.
async function waitForText(locator, text, timeout = 10_000) {
  await locator.page().waitForFunction(([el, t]) => el.innerText.trim() === t, [await locator.elementHandle(), text],
    { timeout });
}

// The computed colour of the page's --danger (the error colour).
function dangerColour(page) {
  return page.evaluate(() => {
    const probe = document.createElement("span");
    probe.style.color = "var(--danger)";
    document.body.append(probe);
    const colour = getComputedStyle(probe).color;
    probe.remove();
    return colour;
  });
}

async function signIn(page, email, password) {
  await page.getByTestId("signin-email").fill(email);
  await page.getByTestId("signin-password").fill(password);
  await page.getByTestId("signin-submit").click();
}

let browser;
let failed = false;
try {
  const started = Date.now();
  stack("start");
  log(`stack started in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  const alice = `alice-${process.pid}@example.com`, bob = `bob-${process.pid}@example.com`, password = "web-test-password";
  await register(bob, password);

  browser = await chromium.launch({ executablePath: chromiumPath, args: ["--no-sandbox", "--autoplay-policy=no-user-gesture-required"] });
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1100, height: 760 } });
  const page = await context.newPage();
  const consoleErrors = [];
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
  page.on("pageerror", (e) => consoleErrors.push(String(e)));
  // Dialogs (confirm, beforeunload) are kept, and accepted unless a step answers them itself (answerDialog).
  const dialogs = [];
  let answerDialog = (d) => d.accept();
  page.on("dialog", (d) => {
    dialogs.push({ type: d.type(), message: d.message() });
    answerDialog(d).catch((e) => log(`dialog not answered: ${e}`));
  });
  await page.goto(base + "/");
  // The sign-in page says what the service does.
  assert.match(await page.getByTestId("service-intro").innerText(), /video.*MP3.*e-mail.*7 days/s);

  // Sign-up in the page: the account waits for the mailed link; signing in before says so and offers a new link.
  await page.getByTestId("register-toggle").click();
  await page.getByTestId("register-email").fill(alice);
  await page.getByTestId("register-password").fill(password);
  await page.getByTestId("register-submit").click();
  await page.getByTestId("auth-notice").waitFor({ state: "visible" });
  assert.match(await page.getByTestId("auth-notice").innerText(), /check your e-mail/i);
  await signIn(page, alice, password);
  await page.getByTestId("resend-verification").waitFor({ state: "visible" });
  assert.match(await page.getByTestId("signin-error").innerText(), /not active yet/i);
  consoleErrors.length = 0;  // the browser logs the expected 403 itself
  const verifyLink = await linkMailedTo(alice, VERIFY_LINK);
  await page.goto(verifyLink);  // as from the mail: the gateway activates the account and opens the page
  await page.getByTestId("auth-notice").waitFor({ state: "visible" });
  assert.match(await page.getByTestId("auth-notice").innerText(), /confirmed/i);
  assert.equal(await page.evaluate(() => location.hash), "", "the link's outcome is not left in the address bar");
  log("signed up in the page, activated by the mailed link");

  // A wrong password shows the error, in words.
  await signIn(page, alice, "not-the-password");
  await page.getByTestId("signin-error").waitFor({ state: "visible" });
  assert.match(await page.getByTestId("signin-error").innerText(), /password|invalid|wrong/i);
  log("wrong password: error shown");
  consoleErrors.length = 0;  // the browser logs that expected 401 itself

  await signIn(page, alice, password);
  await page.getByTestId("user-email").waitFor();
  assert.equal((await page.getByTestId("user-email").innerText()).trim(), alice);
  assert.equal(await page.evaluate(() => location.href.includes("eyJ")), false, "no token in the URL");

  // Upload two generated videos with options; watch both reach done.
  const first = makeVideo(path.join(work, "holiday.mp4"));
  const second = makeVideo(path.join(work, "concert.mp4"), 3);
  await page.getByTestId("option-mono").check();
  await page.getByTestId("file-input").setInputFiles([first, second]);
  await page.getByTestId("upload-row").first().waitFor();
  const done = page.locator('[data-testid="job-row"][data-status="done"]');
  await done.nth(1).waitFor({ timeout: 120_000 });
  assert.equal(await done.count(), 2);
  log("two uploads converted, progress reached done");
  const row = page.locator('[data-testid="job-row"]', { hasText: "holiday.mp4" });
  assert.equal(await row.getAttribute("data-status"), "done");
  // Each done job says how long its MP3 is kept (RETENTION, 7 days by default; a poll brings it at the latest).
  await row.locator('[data-testid="job-expires"]', { hasText: /^Kept until \S/ }).waitFor({ timeout: 20_000 });
  // The size shown is the MP3's (not the video's), and the settings it was made with are shown.
  const holidayJob = await jobJson(page, await row.getAttribute("data-job-id"));
  assert.equal(typeof holidayJob.mp3_size, "number", JSON.stringify(holidayJob));
  assert.equal((await row.getByTestId("job-size").innerText()).trim(), formatBytes(holidayJob.mp3_size));
  assert.equal(await row.getByTestId("job-size").getAttribute("data-kind"), "mp3");
  assert.match(await row.getByTestId("job-settings").innerText(), /^192 kb\/s, mono\b/);

  // Tick both and download them as one ZIP (fetched by the page with its token, saved from a Blob); look inside.
  const downloadSelected = page.getByTestId("download-selected");
  assert.equal(await downloadSelected.isDisabled(), true, "nothing ticked: Download selected is disabled");
  for (const name of ["holiday.mp4", "concert.mp4"]) {
    await page.locator('[data-testid="job-row"]', { hasText: name }).getByTestId("job-select").check();
  }
  assert.equal((await downloadSelected.innerText()).trim(), "Download selected (2)");
  assert.equal(await page.getByTestId("select-all").isChecked(), true, "all done jobs ticked: select all is ticked");
  const [zipDownload] = await Promise.all([page.waitForEvent("download"), downloadSelected.click()]);
  assert.match(zipDownload.suggestedFilename(), /^mp3converter-\d{8}-\d{6}\.zip$/);
  const zipPath = path.join(work, "selected.zip");
  await zipDownload.saveAs(zipPath);
  const entries = zipEntries(readFileSync(zipPath));
  assert.deepEqual(entries.map((e) => e.name).sort(), ["concert.mp3", "holiday.mp3"]);
  for (const entry of entries) {
    const file = path.join(work, `zip-${entry.name}`);
    writeFileSync(file, entry.data);
    const zipped = probeMp3(file);
    assert.equal(zipped.streams[0].codec_name, "mp3", entry.name);
    const seconds = entry.name === "holiday.mp3" ? 4 : 3;
    assert.ok(Math.abs(Number(zipped.format.duration) - seconds) < 0.2, `${entry.name}: ${zipped.format.duration} s`);
  }
  log("the two MP3s downloaded as one ZIP and checked");

  // The same file with the same settings again is done at once, with a copy of the earlier MP3.
  const again = path.join(work, "holiday-again.mp4");
  copyFileSync(first, again);
  await page.getByTestId("file-input").setInputFiles([again]);
  const againRow = page.locator('[data-testid="job-row"]', { hasText: "holiday-again.mp4" });
  await againRow.getByTestId("job-reused").waitFor({ timeout: 30_000 });
  assert.equal(await againRow.getAttribute("data-status"), "done");
  assert.match(await againRow.getByTestId("job-reused").innerText(), /done at once: same file and settings/i);
  await againRow.getByTestId("job-delete").click();
  await againRow.waitFor({ state: "detached", timeout: 30_000 });
  assert.match(dialogs.at(-1).message, /^Delete the job "holiday-again\.mp4" and its MP3\?/);
  log("an identical upload was done at once");

  // Play it in the page: the player gets a signed link (no token in it) and decodes the MP3.
  await row.getByTestId("job-play").click();
  const player = page.getByTestId("player");
  await player.waitFor({ state: "attached" });
  const src = await player.getAttribute("src");
  assert.ok(src && src.includes("signature=") && !src.includes("eyJ"), `player source ${src}`);
  await page.waitForFunction(() => {
    const a = document.querySelector('[data-testid="player"]');
    return a && a.readyState >= 1 && a.duration > 3;
  }, null, { timeout: 30_000 });
  log("the MP3 plays in the page");

  // Play says Pause while it plays; pressed, it pauses and says Play; again, it goes on; at the end it says Play.
  // (Slowed down, so that the 4 s clip does not end before the steps below; started again if it did.)
  const playButton = row.getByTestId("job-play");
  await player.evaluate((a) => { a.playbackRate = 0.25; });
  if (await player.evaluate((a) => a.ended)) await playButton.click();
  await waitForText(playButton, "Pause");
  await playButton.click();
  await waitForText(playButton, "Play");
  assert.equal(await player.evaluate((a) => a.paused), true);
  await playButton.click();
  await waitForText(playButton, "Pause");
  assert.equal(await player.evaluate((a) => a.paused), false);
  await player.evaluate((a) => { a.playbackRate = 1; a.currentTime = Math.max(0, a.duration - 0.5); });
  await waitForText(playButton, "Play", 20_000);
  assert.equal(await player.evaluate((a) => a.ended), true);
  log("Play becomes Pause while playing, and Play again at the end");

  // Under the player, the waveform the converter measured: drawn, a click seeks there, Home goes to the start.
  const waveform = row.getByTestId("waveform");
  await waveform.waitFor({ timeout: 10_000 });
  const drawn = await waveform.evaluate((c) => {
    const pixels = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let painted = 0;
    for (let i = 3; i < pixels.length; i += 4) painted += pixels[i] > 0 ? 1 : 0;
    return painted / (c.width * c.height);
  });
  assert.ok(drawn > 0.25, `the waveform of a tone fills much of the canvas; silence would not (${drawn})`);
  const box = await waveform.boundingBox();
  await waveform.click({ position: { x: box.width * 0.5, y: box.height / 2 } });
  const at = await player.evaluate((a) => a.currentTime / a.duration);
  assert.ok(Math.abs(at - 0.5) < 0.05, `clicked in the middle, the player is at ${at}`);
  await player.evaluate((a) => a.pause());
  await waveform.press("Home");
  assert.equal(await player.evaluate((a) => a.currentTime), 0);
  assert.match(await waveform.getAttribute("aria-valuetext"), /^0:00 of 0:0[45]$/);
  log("the waveform shows under the player and seeks");

  if (process.env.UPDATE_SCREENSHOT) {
    await page.screenshot({ path: path.join(root, "docs", "screenshot.png"), fullPage: true });
    log("docs/screenshot.png written");
  }

  // Download it with its proper name, and check it with ffprobe.
  const [download] = await Promise.all([page.waitForEvent("download"), row.getByTestId("job-download").click()]);
  assert.equal(download.suggestedFilename(), "holiday.mp3");
  const saved = path.join(work, "downloaded.mp3");
  await download.saveAs(saved);
  const probe = probeMp3(saved);
  assert.equal(probe.streams[0].codec_name, "mp3");
  assert.equal(probe.streams[0].channels, 1, "the mono option applied");
  assert.ok(Math.abs(Number(probe.format.duration) - 4) < 0.2, `duration ${probe.format.duration}`);
  log("downloaded holiday.mp3 checked with ffprobe");

  // Delete it: the row goes, the other job stays.
  await row.getByTestId("job-delete").click();
  await row.waitFor({ state: "detached", timeout: 30_000 });
  assert.equal(await page.locator('[data-testid="job-row"]').count(), 1);
  log("deleted");

  // A file that is not a video fails, and its upload is kept for a retry. Retry queues it again (same settings) and
  // the page follows it like a new upload, to the same failure: it is still not a video.
  const notVideo = path.join(work, "notes.mp4");
  writeFileSync(notVideo, "These are notes, not a video.\n".repeat(200));
  await page.getByTestId("file-input").setInputFiles([notVideo]);
  const failedRow = page.locator('[data-testid="job-row"]', { hasText: "notes.mp4" });
  await page.locator('[data-testid="job-row"][data-status="failed"]', { hasText: "notes.mp4" })
    .waitFor({ timeout: 60_000 });
  assert.notEqual((await failedRow.getByTestId("job-error").innerText()).trim(), "", "the failure has a reason");
  await failedRow.locator('[data-testid="job-expires"]', { hasText: /^Upload kept for a retry until \S/ })
    .waitFor({ timeout: 20_000 });
  await failedRow.getByTestId("job-retry").waitFor();
  assert.equal(await failedRow.getByTestId("job-download").isVisible(), false);
  // It looks like a failure: in the upload's row (a cross, "Conversion failed: <why>" in the error colour, no bar) and
  // in the list; and the length of a file that is not media cannot be read for the size estimate, which says so.
  const danger = await dangerColour(page);
  const failedUpload = page.locator('[data-testid="upload-row"]', { hasText: "notes.mp4" });
  assert.equal(await failedUpload.getAttribute("data-result"), "conversion-failed");
  assert.match(await failedUpload.getByTestId("upload-status").innerText(), /^Conversion failed: \S/);
  assert.equal(await failedUpload.getByTestId("upload-status").evaluate((e) => getComputedStyle(e).color), danger);
  assert.equal(await failedUpload.getByTestId("upload-progress").isVisible(), false, "no (full) bar on a failure");
  assert.equal((await failedUpload.getByTestId("upload-icon").innerText()).trim(), "✕");
  assert.equal(await failedUpload.getByTestId("upload-icon").getAttribute("aria-label"), "Error:");
  await failedUpload.getByTestId("upload-estimate").filter({ hasText: /^MP3 size unknown/ }).waitFor({ timeout: 20_000 });
  assert.match(await failedRow.getByTestId("job-error").innerText(), /^Conversion failed: \S/);
  assert.equal(await failedRow.getByTestId("job-status").evaluate((e) => getComputedStyle(e).color), danger);
  assert.equal((await failedRow.getByTestId("job-icon").innerText()).trim(), "✕");
  assert.equal(await failedRow.getByTestId("job-progress").isVisible(), false);
  assert.equal(await failedRow.getByTestId("job-size").getAttribute("data-kind"), "upload", "no MP3: the upload's size");
  await failedRow.evaluate((li) => {
    li.seenStatuses = [];
    new MutationObserver(() => li.seenStatuses.push(li.dataset.status))
      .observe(li, { attributes: true, attributeFilter: ["data-status"] });
  });
  const [retried] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith("/retry") && r.request().method() === "POST"),
    failedRow.getByTestId("job-retry").click()]);
  assert.equal(retried.status(), 202, await retried.text());
  await page.waitForFunction((li) => li.seenStatuses.includes("queued") && li.dataset.status === "failed",
    await failedRow.elementHandle(), { timeout: 60_000 });
  assert.notEqual((await failedRow.getByTestId("job-error").innerText()).trim(), "", "the new failure has a reason");
  await failedRow.getByTestId("job-retry").waitFor();  // still kept: it could be retried again
  log(`retried: ${(await failedRow.evaluate((li) => li.seenStatuses)).join(" → ")}`);

  // A conversion in progress can be cancelled: a 20-minute recording converts for several seconds; Cancel while it is
  // "processing" stops it, and it stays listed as cancelled (the converter stops and stores nothing).
  const long = path.join(work, "lecture.flac");
  execFileSync("ffmpeg", ["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
    "sine=frequency=220:sample_rate=44100:duration=1200", "-ac", "1", long]);
  await page.getByTestId("file-input").setInputFiles([long]);
  const longRow = page.locator('[data-testid="job-row"]', { hasText: "lecture.flac" });
  await page.locator('[data-testid="job-row"][data-status="processing"]', { hasText: "lecture.flac" })
    .waitFor({ timeout: 60_000 });
  assert.equal((await longRow.getByTestId("job-delete").innerText()).trim(), "Cancel");
  const [stopped] = await Promise.all([
    page.waitForResponse((r) => /\/jobs\/[0-9a-f]{24}$/.test(r.url()) && r.request().method() === "DELETE"),
    longRow.getByTestId("job-delete").click()]);
  assert.equal(stopped.status(), 200, await stopped.text());
  await page.locator('[data-testid="job-row"][data-status="cancelled"]', { hasText: "lecture.flac" })
    .waitFor({ timeout: 20_000 });
  const longId = (await stopped.json()).job_id;
  assert.equal((await jobJson(page, longId)).status, "cancelled");
  await longRow.getByTestId("job-delete").click();  // Delete: gone from the list
  await longRow.waitFor({ state: "detached" });
  log("a conversion in progress cancelled");

  // The table's columns line up: each cell of every row (done with three buttons, failed with two) has its header's x
  // and width, within 1 px.
  await page.setViewportSize({ width: 1440, height: 900 });
  const alignment = await page.evaluate(() => {
    const heads = [...document.querySelectorAll('[data-testid="jobs-head"] [data-col]')];
    const rows = [...document.querySelectorAll('[data-testid="job-row"]')];
    const problems = [];
    for (const li of rows) {
      for (const head of heads) {
        const cell = li.querySelector(`.job-cell[data-col="${head.dataset.col}"]`);
        const a = head.getBoundingClientRect();
        const b = cell?.getBoundingClientRect();
        if (!b || a.width < 10 || Math.abs(a.x - b.x) > 1 || Math.abs(a.width - b.width) > 1) {
          problems.push(`${li.dataset.status} ${head.dataset.col}: head ${a.x}+${a.width}, cell ${b?.x}+${b?.width}`);
        }
      }
    }
    return { heads: heads.length, statuses: rows.map((li) => li.dataset.status), problems };
  });
  assert.equal(alignment.heads, 6);
  assert.ok(alignment.statuses.includes("done") && alignment.statuses.includes("failed"), String(alignment.statuses));
  assert.deepEqual(alignment.problems, [], "columns line up");
  await page.setViewportSize({ width: 1100, height: 760 });
  log("the table's columns line up");

  // Settings stick: a preset sets the form; after a reload the form is as it was (localStorage, never the token);
  // the size of the MP3 is estimated before the upload, and the job is made with those settings.
  const formValues = () => page.evaluate(() => ({
    preset: document.querySelector('[data-testid="option-preset"]').value,
    mode: document.querySelector('input[name="mode"]:checked').value,
    bitrate: document.querySelector('[data-testid="option-bitrate-value"]').value,
    mono: document.querySelector('[data-testid="option-mono"]').checked,
  }));
  const podcast = { preset: "podcast", mode: "bitrate", bitrate: "64", mono: true };
  await page.getByTestId("option-preset").selectOption("music");
  assert.deepEqual(await formValues(), { preset: "music", mode: "bitrate", bitrate: "320", mono: false });
  await page.getByTestId("option-preset").selectOption("podcast");
  assert.deepEqual(await formValues(), podcast);
  assert.match(await page.getByTestId("options-estimate").innerText(), /≈ 480 kB per minute/);
  const remembered = await page.evaluate(() => localStorage.getItem("mp3c.options"));
  assert.ok(remembered && !remembered.includes("eyJ"), `remembered: ${remembered}`);
  await page.reload();
  await page.getByTestId("user-email").waitFor();
  assert.deepEqual(await formValues(), podcast, "the settings are remembered");
  await page.getByTestId("file-input").setInputFiles([makeAudio(path.join(work, "speech.wav"), 5)]);
  const speechUpload = page.locator('[data-testid="upload-row"]', { hasText: "speech.wav" });
  await speechUpload.getByTestId("upload-estimate").filter({ hasText: "≈" }).waitFor({ timeout: 20_000 });
  assert.equal((await speechUpload.getByTestId("upload-estimate").innerText()).trim(), "MP3 ≈ 40 kB (0:05 of sound)");
  const speechRow = page.locator('[data-testid="job-row"][data-status="done"]', { hasText: "speech.wav" });
  await speechRow.waitFor({ timeout: 120_000 });
  const speechJob = await jobJson(page, await speechRow.getAttribute("data-job-id"));
  assert.equal(speechJob.options.bitrate, 64, JSON.stringify(speechJob.options));
  assert.equal(speechJob.options.channels, 1, JSON.stringify(speechJob.options));
  assert.equal(speechJob.options.quality, null, JSON.stringify(speechJob.options));
  assert.match(await speechRow.getByTestId("job-settings").innerText(), /^64 kb\/s, mono\b/);
  assert.equal((await speechRow.getByTestId("job-size").innerText()).trim(), formatBytes(speechJob.mp3_size));
  log(`settings remembered over a reload, a preset applied, the MP3's size estimated (${formatBytes(speechJob.mp3_size)})`);

  // Tags from "Advanced" go with the next files (trimmed, empty ones left out) and are never remembered.
  await page.getByTestId("advanced").locator("summary").click();
  await page.getByTestId("tag-title").fill("  Nuit étoilée ");
  await page.getByTestId("tag-year").fill("2024");
  await page.getByTestId("trim-start").fill("0.5");
  await page.getByTestId("trim-end").fill("0:01.5");
  await page.getByTestId("option-chapters").selectOption("none");
  await page.getByTestId("option-loudness").selectOption("-16");
  // A tag is measured in bytes of UTF-8, as the server counts it: 200 "é" fit maxlength (250 characters) but are 400
  // bytes. Said under the fields, and no file goes until it is shortened.
  const uploadsBefore = await page.getByTestId("upload-row").count();
  await page.getByTestId("tag-artist").fill("é".repeat(200));
  await waitForText(page.getByTestId("tag-problem"),
    "Artist is too long: at most 250 bytes (it has 400; an accented letter takes 2, an emoji 4).");
  await page.getByTestId("file-input").setInputFiles([makeAudio(path.join(work, "refused.wav"), 1)]);
  assert.equal(await page.getByTestId("upload-row").count(), uploadsBefore, "nothing uploaded with a tag too long");
  assert.equal(await page.evaluate(() => document.activeElement?.dataset.testid), "tag-artist");
  await page.getByTestId("tag-artist").fill("");
  assert.equal(await page.getByTestId("tag-problem").isVisible(), false);
  await page.getByTestId("file-input").setInputFiles([makeAudio(path.join(work, "tagged.wav"), 2)]);
  // The upload's row says at once what the file is made with, the trim and loudness included.
  assert.match(await page.getByTestId("upload-row").filter({ hasText: "tagged.wav" }).locator(".upload-options").innerText(),
    /from 0:00\.5 to 0:01\.5, no chapters, −16 LUFS; tags: title “Nuit étoilée”/);
  const taggedRow = page.locator('[data-testid="job-row"][data-status="done"]', { hasText: "tagged.wav" });
  await taggedRow.waitFor({ timeout: 120_000 });
  const taggedJob = await jobJson(page, await taggedRow.getAttribute("data-job-id"));
  assert.deepEqual(taggedJob.options.tags, { title: "Nuit étoilée", year: "2024" }, JSON.stringify(taggedJob.options));
  assert.match(await taggedRow.getByTestId("job-settings").innerText(), /tags: title “Nuit étoilée”, year “2024”/);
  assert.equal(taggedJob.options.start, 0.5, JSON.stringify(taggedJob.options));
  assert.equal(taggedJob.options.end, 1.5, JSON.stringify(taggedJob.options));
  assert.equal(taggedJob.options.chapters, "none", JSON.stringify(taggedJob.options));
  assert.equal(taggedJob.options.loudness, -16, JSON.stringify(taggedJob.options));
  assert.ok(Math.abs(taggedJob.loudness.output_lufs + 16) <= 1, `normalised: ${JSON.stringify(taggedJob.loudness)}`);
  assert.match(await taggedRow.getByTestId("job-settings").innerText(), /−16 LUFS/);
  assert.ok(Math.abs(taggedJob.duration_seconds - 1) < 0.03, `trimmed to 1 s: ${taggedJob.duration_seconds}`);
  assert.match(await taggedRow.getByTestId("job-settings").innerText(), /from 0:00\.5 to 0:01\.5/);
  const rememberedNow = await page.evaluate(() => localStorage.getItem("mp3c.options"));
  assert.ok(!rememberedNow.includes("Nuit"), `tags are not remembered: ${rememberedNow}`);
  await page.getByTestId("tag-title").fill("");
  await page.getByTestId("tag-year").fill("");
  await page.getByTestId("trim-start").fill("");
  await page.getByTestId("trim-end").fill("");
  await page.getByTestId("option-chapters").selectOption("");
  await page.getByTestId("option-loudness").selectOption("");
  log(`a trim, loudness -16 (measured ${taggedJob.loudness.output_lufs}) and tags typed in Advanced go with the next upload (${taggedJob.duration_seconds} s kept of 2 s)`);

  // "One MP3 per chapter": a recording with three chapters becomes three parts, listed under the job (the titles
  // are the chapters'), each downloaded on its own, and all three as one ZIP.
  const chaptersText = path.join(work, "chapters.txt");
  writeFileSync(chaptersText, ";FFMETADATA1\n" + ["Intro", "Ça va", "Outro"].map((title, i) =>
    `[CHAPTER]\nTIMEBASE=1/1000\nSTART=${i * 1000}\nEND=${(i + 1) * 1000}\ntitle=${title}\n`).join(""));
  const lecture = path.join(work, "lecture.m4a");
  execFileSync("ffmpeg", ["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
    "sine=frequency=440:duration=3", "-f", "ffmetadata", "-i", chaptersText, "-map", "0:a", "-map_chapters", "1",
    "-c:a", "aac", lecture]);
  await page.getByTestId("option-chapters").selectOption("split");
  await page.getByTestId("file-input").setInputFiles([lecture]);
  const lectureRow = page.locator('[data-testid="job-row"][data-status="done"]', { hasText: "lecture.m4a" });
  await lectureRow.waitFor({ timeout: 120_000 });
  await page.getByTestId("option-chapters").selectOption("");
  assert.match(await lectureRow.getByTestId("job-settings").innerText(), /one MP3 per chapter/);
  const partsList = lectureRow.getByTestId("job-parts");
  assert.equal((await partsList.locator("summary").innerText()).trim(), "3 parts, one per chapter");
  await partsList.locator("summary").click();
  const partButtons = partsList.getByTestId("job-part");
  assert.deepEqual(await partButtons.allInnerTexts(), ["Intro", "Ça va", "Outro"]);
  const [partDownload] = await Promise.all([page.waitForEvent("download"), partButtons.nth(1).click()]);
  assert.equal(partDownload.suggestedFilename(), "lecture - 02 - Ça va.mp3");
  const partPath = path.join(work, "part2.mp3");
  await partDownload.saveAs(partPath);
  assert.ok(Math.abs(Number(probeMp3(partPath).format.duration) - 1) < 0.1, "the second chapter: 1 s");
  const [partsZip] = await Promise.all([page.waitForEvent("download"),
    partsList.getByTestId("job-parts-zip").click()]);
  await partsZip.saveAs(path.join(work, "parts.zip"));
  assert.deepEqual(zipEntries(readFileSync(path.join(work, "parts.zip"))).map((e) => e.name),
    ["lecture - 01 - Intro.mp3", "lecture - 02 - Ça va.mp3", "lecture - 03 - Outro.mp3"]);
  log("a recording with three chapters split into three parts: listed, one downloaded, all three as a ZIP");

  // A mailed link to a job (/#job=<id>), opened in a new tab: sign in first, then the page shows that job, focused
  // and highlighted; another link while signed in moves to its job at once.
  const failedId = await failedRow.getAttribute("data-job-id");
  const concertId = await page.locator('[data-testid="job-row"]', { hasText: "concert.mp4" }).getAttribute("data-job-id");
  assert.match(failedId, /^[0-9a-f]{24}$/);
  const linkPage = await context.newPage();
  linkPage.on("pageerror", (e) => consoleErrors.push(String(e)));
  await linkPage.goto(`${base}/#job=${failedId}`);
  await linkPage.getByTestId("signin-form").waitFor();
  assert.match(await linkPage.getByTestId("auth-notice").innerText(), /sign in to see the file/i);
  await signIn(linkPage, alice, password);
  const isShown = (id) => linkPage.waitForFunction((jobId) => {
    const active = document.activeElement;
    return active?.matches('[data-testid="job-row"].is-linked') && active.dataset.jobId === jobId;
  }, id, { timeout: 30_000 });
  await isShown(failedId);
  assert.equal(await linkPage.locator(".is-linked").count(), 1);
  await linkPage.evaluate((id) => { location.hash = `job=${id}`; }, concertId);
  await isShown(concertId);
  assert.equal(await linkPage.locator(".is-linked").count(), 1, "only the last linked job is highlighted");
  await linkPage.close();
  log("a mailed job link opens the page at its job, through the sign-in");

  // Each job mail has an unsubscribe link: the page's in its text, the one-click address in List-Unsubscribe, with
  // the same token. Read while alice still gets one mail per file (with a summary, none would come for a while).
  const unsubscribeLink = await linkMailedTo(alice, UNSUBSCRIBE_LINK);
  const unsubscribeToken = unsubscribeLink.slice(unsubscribeLink.indexOf("#unsubscribe=") + "#unsubscribe=".length);
  const oneClick = await listUnsubscribeOf(alice);
  assert.ok(oneClick, "a job mail has a List-Unsubscribe header");
  assert.equal(new URL(oneClick).searchParams.get("token"), unsubscribeToken, `${oneClick} / ${unsubscribeLink}`);

  // The setting, in the account's E-mails box (under the bar on wide screens): one per file at first; a summary per
  // batch is saved, said so, and still shown after a reload.
  const mailToggle = page.getByTestId("mail-settings-toggle");
  const jobMails = page.getByTestId("job-mails");
  const jobMailsStatus = page.getByTestId("job-mails-status");
  const showMailSettings = async (open) => {
    if ((await mailToggle.getAttribute("aria-expanded") === "true") !== open) await mailToggle.click();
    assert.equal(await jobMails.isVisible(), open);
  };
  await showMailSettings(true);
  await waitForJobMails(page, "each");
  await jobMails.selectOption("summary");
  await waitForText(jobMailsStatus, "Saved: one summary per batch of uploads.");
  assert.equal(await jobMailsOf(page), "summary");
  await page.reload();
  await page.getByTestId("user-email").waitFor();
  await waitForJobMails(page, "summary");
  log("the job e-mail setting is saved, and shown again after a reload");

  // The mailed one-click address opened in a tab that is not signed in: the gateway turns the GET into the page's
  // question, which changes nothing (link scanners open links too); "Stop these e-mails" turns them off.
  const unsubscribed = "Done: you will get no more e-mails about your files. You can turn them back on under your " +
    "account's E-mails setting.";
  const unsubscribePage = await context.newPage();
  unsubscribePage.on("pageerror", (e) => consoleErrors.push(String(e)));
  await unsubscribePage.goto(oneClick);
  await unsubscribePage.getByTestId("unsubscribe-panel").waitFor();
  await unsubscribePage.getByTestId("signin-form").waitFor();
  assert.equal(await unsubscribePage.evaluate(() => location.hash), "", "the token is not left in the address bar");
  assert.equal((await unsubscribePage.locator("#unsubscribe-title").innerText()).trim(),
    "Stop the e-mails about your files?");
  assert.equal(await jobMailsOf(page), "summary", "opening the link changed nothing");
  await unsubscribePage.getByTestId("unsubscribe-confirm").click();
  await waitForText(unsubscribePage.getByTestId("unsubscribe-result"), unsubscribed);
  assert.equal(await jobMailsOf(page), "off");
  assert.equal(await unsubscribePage.getByTestId("unsubscribe-confirm").isVisible(), false);
  await unsubscribePage.close();
  log("unsubscribed by the mailed link without signing in, on the click only");

  // In the signed-in page (one mail per file again): "Keep them" changes nothing; "Stop these e-mails" does, and the
  // select shows None. A token that is not valid is refused after the question; a malformed link (the gateway sends
  // it to #unsubscribe-failed) says so at once.
  const unsubscribePanel = page.getByTestId("unsubscribe-panel");
  const unsubscribeDismiss = page.getByTestId("unsubscribe-dismiss");
  const openLink = (hash) => page.evaluate((h) => { location.hash = h; }, hash);
  await showMailSettings(true);
  await jobMails.selectOption("each");
  await waitForText(jobMailsStatus, "Saved: one mail per converted file.");
  await showMailSettings(false);
  await openLink(`unsubscribe=${unsubscribeToken}`);
  await unsubscribePanel.waitFor();
  assert.equal((await unsubscribeDismiss.innerText()).trim(), "Keep them");
  await unsubscribeDismiss.click();
  await unsubscribePanel.waitFor({ state: "hidden" });
  assert.equal(await jobMailsOf(page), "each", "Keep them changed nothing");
  await openLink(`unsubscribe=${unsubscribeToken}`);
  await page.getByTestId("unsubscribe-confirm").click();
  await waitForText(page.getByTestId("unsubscribe-result"), unsubscribed);
  await waitForJobMails(page, "off");
  assert.equal(await jobMailsOf(page), "off");
  assert.equal((await unsubscribeDismiss.innerText()).trim(), "Close");
  await unsubscribeDismiss.click();
  const notValid = page.getByTestId("unsubscribe-result").filter({ hasText: /^This unsubscribe link is not valid\./ });
  await openLink("unsubscribe=bogus");
  await page.getByTestId("unsubscribe-confirm").click();
  await notValid.waitFor();
  consoleErrors.length = 0;  // the browser logs the expected 403 itself
  await unsubscribeDismiss.click();
  await openLink("unsubscribe-failed");
  await notValid.waitFor();
  assert.equal(await page.getByTestId("unsubscribe-confirm").isVisible(), false, "nothing to confirm");
  await unsubscribeDismiss.click();
  await unsubscribePanel.waitFor({ state: "hidden" });
  assert.equal(await page.evaluate(() => location.hash), "");
  // Back to one mail per file, as the steps below expect of a new account.
  await showMailSettings(true);
  await jobMails.selectOption("each");
  await waitForText(jobMailsStatus, "Saved: one mail per converted file.");
  await showMailSettings(false);
  log("unsubscribe links in the signed-in page: kept, stopped (the select shows None), not valid");

  // Deleting a failed job speaks of its kept upload, not of an MP3.
  await failedRow.getByTestId("job-delete").click();
  await failedRow.waitFor({ state: "detached", timeout: 30_000 });
  assert.match(dialogs.at(-1).message, /^Delete the job "notes\.mp4" and its upload\?/);
  assert.doesNotMatch(dialogs.at(-1).message, /MP3/);

  // Leaving during an upload: the browser asks first (beforeunload), only while an upload is in flight. A route
  // holds the uploads back, so that they stay in flight for as long as needed.
  let releaseUploads;
  const uploadsHeld = new Promise((resolve) => { releaseUploads = resolve; });
  await page.route("**/upload", async (route) => {
    await uploadsHeld;
    await route.abort().catch(() => {}); // the page may have stopped it meanwhile
  });
  const isUploading = () => page.evaluate(() => document.documentElement.hasAttribute("data-uploading"));
  assert.equal(await isUploading(), false);
  const leaveA = path.join(work, "leave-a.mp4"), leaveB = path.join(work, "leave-b.mkv");
  writeFileSync(leaveA, "a".repeat(50_000));
  writeFileSync(leaveB, "b".repeat(50_000));
  await page.getByTestId("jobs-refresh").click(); // browsers only ask before leaving a page that was used
  await page.getByTestId("file-input").setInputFiles([leaveA]);
  await page.locator('[data-testid="upload-row"][data-state="uploading"]', { hasText: "leave-a.mp4" }).waitFor();
  assert.equal(await isUploading(), true);
  answerDialog = (d) => (d.type() === "beforeunload" ? d.dismiss() : d.accept());
  const askedToLeave = page.waitForEvent("dialog", { predicate: (d) => d.type() === "beforeunload", timeout: 15_000 });
  await page.evaluate(() => { location.reload(); });
  await askedToLeave;
  assert.equal(await page.locator('[data-testid="upload-row"][data-state="uploading"]', { hasText: "leave-a.mp4" })
    .count(), 1, "stayed: the upload goes on");
  log("leaving during an upload asks first");

  // Signing out during uploads asks first, naming them; "no" keeps everything, "yes" says what was lost.
  await page.getByTestId("file-input").setInputFiles([leaveB]);
  await page.locator('[data-testid="upload-row"][data-state="uploading"]', { hasText: "leave-b.mkv" }).waitFor();
  const aliceToken = await page.evaluate(() => JSON.parse(sessionStorage.getItem("mp3c.session")).token);
  assert.equal((await fetch(`${base}/jobs`, { headers: { Authorization: `Bearer ${aliceToken}` } })).status, 200);
  answerDialog = (d) => d.dismiss();
  const [stayDialog] = await Promise.all([page.waitForEvent("dialog"), page.getByTestId("signout").click()]);
  assert.equal(stayDialog.type(), "confirm");
  assert.match(stayDialog.message(), /2 files are still uploading: "leave-a\.mp4", "leave-b\.mkv"/);
  assert.ok(await page.getByTestId("user-email").isVisible(), "still signed in");
  assert.equal(await isUploading(), true);
  answerDialog = (d) => d.accept();
  await page.getByTestId("signout").click();
  await page.getByTestId("signin-form").waitFor();
  assert.equal((await page.getByTestId("auth-notice").innerText()).trim(),
    "You are signed out. 2 uploads were stopped: leave-a.mp4, leave-b.mkv.");
  assert.equal(await isUploading(), false, "no question once nothing is uploading");
  releaseUploads();
  await page.unroute("**/upload");

  // Signing out ends the token at the server, not only in the tab: the gateway refuses it within seconds.
  const signedOutAt = Date.now();
  for (;;) {
    const status = (await fetch(`${base}/jobs`, { headers: { Authorization: `Bearer ${aliceToken}` } })).status;
    if (status === 401) break;
    assert.ok(Date.now() - signedOutAt < 15_000, `the signed-out token still works (${status})`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  log(`signed out: the token is refused after ${Date.now() - signedOutAt} ms`);

  // A second user sees none of the first user's jobs: once bob's own upload is listed, alice's remaining job is not.
  await signIn(page, bob, password);
  await page.getByTestId("user-email").waitFor();
  await page.getByTestId("file-input").setInputFiles([makeVideo(path.join(work, "bob-clip.mp4"), 2)]);
  await page.locator('[data-testid="job-row"]', { hasText: "bob-clip.mp4" }).waitFor({ timeout: 60_000 });
  assert.equal(await page.locator('[data-testid="job-row"]', { hasText: "concert.mp4" }).count(), 0);
  assert.equal(await page.locator('[data-testid="job-row"]').count(), 1, "bob sees only his job");
  log("second user sees nothing of the first");

  // "Keep me signed in": a restarted browser (a new context with this one's cookies) starts signed in; signing out
  // there ends the remembered session at the server, so a copy of the cookie no longer signs anyone in.
  await page.getByTestId("signout").click();
  await page.getByTestId("signin-remember").check();
  await signIn(page, bob, password);
  await page.getByTestId("user-email").waitFor();
  const kept = await context.storageState();
  assert.ok(kept.cookies.some((c) => c.name === "mp3c_session" && c.httpOnly && c.path === "/session"),
    "an HttpOnly cookie for /session only");
  assert.ok(!JSON.stringify(kept.origins).includes("eyJ"), "no token kept in the page's storage");
  const restarted = await browser.newContext({ storageState: kept });
  const resumedPage = await restarted.newPage();
  resumedPage.on("pageerror", (e) => consoleErrors.push(String(e)));
  await resumedPage.goto(base + "/");
  await resumedPage.getByTestId("user-email").waitFor();
  assert.equal((await resumedPage.getByTestId("user-email").innerText()).trim(), bob);
  const copied = await restarted.storageState();
  await resumedPage.getByTestId("signout").click();
  await resumedPage.getByTestId("signin-form").waitFor();
  await restarted.close();
  const thief = await browser.newContext({ storageState: copied });
  const stolen = await thief.newPage();
  await stolen.goto(base + "/");
  await stolen.getByTestId("signin-form").waitFor();
  assert.equal(await stolen.getByTestId("user-email").isVisible(), false, "the ended session signs nobody in");
  await thief.close();
  log("kept signed in across a browser restart; signing out ended it");

  // A forgotten password: ask in the page, follow the mailed link (in a new tab, as from a mail program), choose a
  // new one, and be signed in with it; the old one no longer works.
  await page.getByTestId("signout").click();
  await page.getByTestId("forgot-toggle").click();
  await page.getByTestId("forgot-email").fill(bob);
  await page.getByTestId("forgot-submit").click();
  await page.getByTestId("auth-notice").waitFor({ state: "visible" });
  assert.match(await page.getByTestId("auth-notice").innerText(), /link to set a new password/i);
  const resetPage = await context.newPage();
  resetPage.on("pageerror", (e) => consoleErrors.push(String(e)));
  await resetPage.goto(await linkMailedTo(bob, RESET_LINK));
  await resetPage.getByTestId("reset-password").fill("bobs-new-password");
  assert.equal(await resetPage.evaluate(() => location.hash), "", "the reset token is not left in the address bar");
  await resetPage.getByTestId("reset-submit").click();
  await resetPage.getByTestId("user-email").waitFor();
  assert.equal((await resetPage.getByTestId("user-email").innerText()).trim(), bob);
  assert.equal((await fetch(`${base}/login`, { method: "POST",
    headers: { Authorization: "Basic " + Buffer.from(`${bob}:${password}`).toString("base64") } })).status, 401);
  await resetPage.close();
  await signIn(page, bob, "bobs-new-password");
  await page.getByTestId("user-email").waitFor();
  log("forgotten password reset through the mailed link");

  // Narrow screens (360 px): the bar is one line, a done file is a compact card, nothing is wider than the screen;
  // the account (and Sign out) is behind a menu button, which Escape closes.
  await page.locator('[data-testid="job-row"][data-status="done"]', { hasText: "bob-clip.mp4" })
    .waitFor({ timeout: 120_000 });
  await page.setViewportSize({ width: 360, height: 740 });
  assert.ok(await page.getByTestId("dropzone").isVisible());
  const narrow = () => page.evaluate(() => ({
    bar: document.querySelector(".topbar").getBoundingClientRect().height,
    card: document.querySelector('[data-testid="job-row"][data-status="done"]').getBoundingClientRect().height,
    scrollWidth: document.documentElement.scrollWidth,
  }));
  const layout = await narrow();
  assert.ok(layout.bar <= 64, `the bar is ${layout.bar} px tall`);
  assert.ok(layout.card <= 160, `a done card is ${layout.card} px tall`);
  assert.ok(layout.scrollWidth <= 360, `the page is ${layout.scrollWidth} px wide`);
  assert.equal(await page.getByTestId("signout").isVisible(), false);
  await page.getByTestId("account-toggle").click();
  assert.ok(await page.getByTestId("signout").isVisible());
  assert.ok(await page.getByTestId("job-mails").isVisible(), "the e-mail setting is in the menu");
  assert.equal(await page.getByTestId("mail-settings-toggle").isVisible(), false, "shown in place, no box of its own");
  assert.ok((await narrow()).scrollWidth <= 360, "the open menu fits too");
  const menu = await page.locator("#account-panel").boundingBox();
  assert.ok(menu.x >= 0 && menu.x + menu.width <= 360, `the open menu spans ${menu.x}…${menu.x + menu.width} px`);
  await page.keyboard.press("Escape");
  assert.equal(await page.getByTestId("signout").isVisible(), false);
  assert.equal(await page.evaluate(() => document.activeElement?.dataset.testid), "account-toggle");
  log(`360 px: bar ${layout.bar} px, card ${layout.card} px, page ${layout.scrollWidth} px wide`);
  assert.deepEqual(consoleErrors, [], "no errors in the browser console");
  log("passed");
} catch (e) {
  failed = true;
  console.error(e);
  try { console.error("page:", await browser?.contexts()[0]?.pages()[0]?.locator("main").innerText()); } catch {}
} finally {
  if (browser) await browser.close();
  try { stack("stop"); } catch (e) { console.error(e); }
  rmSync(work, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
