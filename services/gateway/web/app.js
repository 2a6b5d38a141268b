// mp3converter web page: sign in, upload with progress, a live list of jobs, play, download, delete.
//
// Plain ES2020, no build step. The gateway serves this page with a strict Content-Security-Policy (no inline script
// or style), so all markup comes from <template>s in index.html, state is shown with classes, data attributes, the
// hidden attribute and <progress> elements, and nothing is ever evaluated from strings.
'use strict';

const SESSION_KEY = 'mp3c.session';
const POLL_INTERVAL_MS = 10_000;
const RECONNECT_MS = 2_000;
// A browser opens at most 6 HTTP/1.1 connections to one origin, and each event stream holds one for as long as its
// job runs. Two streams plus two uploads leave room for the poll, links and the audio player; jobs without a stream
// are kept current by the poll.
const MAX_EVENT_STREAMS = 2;
const MAX_PARALLEL_UPLOADS = 2;
const FINAL_STATUSES = new Set(['done', 'failed', 'cancelled']);
const STATUS_RANK = { queued: 0, processing: 1, done: 2, failed: 2, cancelled: 2 };
const STATUS_LABELS = { queued: 'Queued', processing: 'Converting', done: 'Done', failed: 'Failed', cancelled: 'Cancelled' };
const EXPIRED_MESSAGE = 'Your session has expired. Please sign in again.';

const state = {
  session: null,          // {token, email, expires_at}; also in sessionStorage, never in a URL
  epoch: 0,               // bumped at every sign-in and sign-out, so answers for an old session are dropped
  controller: null,       // aborts the session's requests at sign-out
  jobs: new Map(),        // job_id -> {job, row, refs, addedAt}
  streams: new Map(),     // job_id -> AbortController of its event stream
  deleted: new Set(),     // job ids deleted here, so a poll answered just before the delete cannot bring them back
  uploads: [],            // {file, options, row, refs, xhr, state}
  pollTimer: 0,
  expiryTimer: 0,
  pollInFlight: false,
  authMode: 'signin',
};

const ui = {};

/** Thrown once the session is over; callers just stop. */
class SessionExpiredError extends Error {}
/** An error whose message is meant for the user. */
class UserError extends Error {}

// ---------------------------------------------------------------------------------------------------- formatting

function formatBytes(n) {
  if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) return '—';
  if (n < 1000) return `${n} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let value = n;
  let unit = -1;
  do {
    value /= 1000;
    unit += 1;
  } while (value >= 1000 && unit < units.length - 1);
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** m:ss, or h:mm:ss from one hour on. */
function formatDuration(seconds) {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds)) return '—';
  const total = Math.round(seconds);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

/** "N s" below two minutes, else whole minutes: for Retry-After and time left. */
function formatWait(seconds) {
  const s = Math.max(0, Math.ceil(seconds));
  if (s < 120) return `${s} s`;
  const m = Math.round(s / 60);
  return m < 120 ? `${m} min` : `${Math.round(m / 60)} h`;
}

function formatSpeed(bytesPerSecond) {
  if (!Number.isFinite(bytesPerSecond) || bytesPerSecond <= 0) return '';
  const mbps = bytesPerSecond / 1e6;
  return `${mbps.toFixed(mbps < 10 ? 2 : 1)} MB/s`;
}

function formatCreated(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return '';
  return date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

/** The MP3's name as the server names it: the original's stem + ".mp3". */
function mp3FileName(filename) {
  const dot = filename.lastIndexOf('.');
  const stem = dot > 0 ? filename.slice(0, dot) : filename;
  return `${stem || 'audio'}.mp3`;
}

/** Server messages are lower-case fragments ("no such job"); show them as sentences. */
function sentence(text) {
  const t = String(text || '').trim();
  if (!t) return '';
  const s = t[0].toUpperCase() + t.slice(1);
  return /[.!?]$/.test(s) ? s : `${s}.`;
}

/** Retry-After in seconds, or null (it may also be an HTTP date, which we do not need to support). */
function retryAfterSeconds(value) {
  const n = Number.parseInt(value ?? '', 10);
  return Number.isFinite(n) && n >= 0 ? n : null;
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

/** Clone a <template> and collect its [data-ref] elements by name. */
function instantiate(template) {
  const root = template.content.firstElementChild.cloneNode(true);
  const refs = {};
  for (const el of root.querySelectorAll('[data-ref]')) refs[el.dataset.ref] = el;
  return { root, refs };
}

/** Announce a status change to screen readers (cleared first so a repeated text is read again). */
function announce(text) {
  ui.announcer.textContent = '';
  setTimeout(() => { ui.announcer.textContent = text; }, 50);
}

function showAppError(text) {
  ui.appError.textContent = text;
}

// ---------------------------------------------------------------------------------------------------- session

/** Base64 of the UTF-8 bytes: btoa alone fails on (or garbles) characters outside Latin-1. */
function base64Utf8(text) {
  let binary = '';
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/** The e-mail address as the server stored it (the token's username claim), or null. */
function emailFromToken(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const binary = atob(part.padEnd(Math.ceil(part.length / 4) * 4, '='));
    const claims = JSON.parse(new TextDecoder().decode(Uint8Array.from(binary, (c) => c.charCodeAt(0))));
    return typeof claims.username === 'string' ? claims.username : null;
  } catch {
    return null;
  }
}

function saveSession(session) {
  try {
    sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
  } catch {
    // Storage may be disabled; the session then lasts as long as the page.
  }
}

function clearStoredSession() {
  try {
    sessionStorage.removeItem(SESSION_KEY);
  } catch {
    // Nothing stored.
  }
}

/** The stored session, if it is well-formed and has not expired (with a little margin). */
function loadSession() {
  try {
    const s = JSON.parse(sessionStorage.getItem(SESSION_KEY) || 'null');
    if (s && typeof s.token === 'string' && typeof s.email === 'string' && Date.parse(s.expires_at) > Date.now() + 5000) {
      return s;
    }
  } catch {
    // Unreadable: treat as signed out.
  }
  clearStoredSession();
  return null;
}

function startSession(session) {
  state.session = session;
  state.epoch += 1;
  state.controller = new AbortController();
  state.pollInFlight = false;
  state.deleted = new Set();
  saveSession(session);

  ui.userEmail.textContent = session.email;
  ui.userArea.hidden = false;
  ui.authView.hidden = true;
  ui.appView.hidden = false;
  ui.signinForm.reset();
  ui.registerForm.reset();
  setAuthError('');
  updateEmptyState();

  // End the session when the token expires instead of waiting for a refused request. setTimeout takes at most 2^31-1.
  const ms = Date.parse(session.expires_at) - Date.now();
  state.expiryTimer = setTimeout(() => endSession(EXPIRED_MESSAGE), Math.min(Math.max(ms, 0), 2 ** 31 - 1));
  state.pollTimer = setInterval(refreshJobs, POLL_INTERVAL_MS);
  refreshJobs();
  ui.uploadTitle.focus();
}

/** Sign out (message empty) or end an expired session (message shown on the sign-in form). */
function endSession(message) {
  if (!state.session) return;
  state.session = null;
  state.epoch += 1;
  clearStoredSession();
  clearTimeout(state.expiryTimer);
  clearInterval(state.pollTimer);
  state.controller.abort();
  for (const controller of state.streams.values()) controller.abort();
  state.streams.clear();
  for (const upload of state.uploads) upload.xhr?.abort();
  state.uploads = [];
  // A detached <audio> keeps playing, so stop players before dropping the rows.
  for (const audio of ui.jobsList.querySelectorAll('audio')) audio.pause();
  state.jobs.clear();
  ui.jobsList.replaceChildren();
  ui.uploadList.replaceChildren();
  ui.jobsNotice.textContent = '';
  showAppError('');

  ui.userEmail.textContent = '';
  ui.userArea.hidden = true;
  ui.appView.hidden = true;
  ui.authView.hidden = false;
  setAuthMode('signin');
  setAuthError(message || '');
  ui.signinEmail.focus();
}

// ---------------------------------------------------------------------------------------------------- API

async function readJson(response) {
  try {
    return await response.json();
  } catch {
    return null;
  }
}

/** A 401, or a 403 not_authorized, means the token is expired or no longer valid. */
async function isSessionOver(response) {
  if (response.status === 401) return true;
  if (response.status !== 403) return false;
  const body = await readJson(response.clone());
  return body?.error === 'not_authorized';
}

/** fetch() with the session's Bearer token; ends the session on a refused token. */
async function api(path, { method = 'GET', headers = {}, body, signal } = {}) {
  if (!state.session) throw new SessionExpiredError();
  const epoch = state.epoch;
  const response = await fetch(path, {
    method,
    body,
    headers: { Accept: 'application/json', ...headers, Authorization: `Bearer ${state.session.token}` },
    signal: signal || state.controller.signal,
    cache: 'no-store',
    credentials: 'same-origin',
  });
  if (epoch !== state.epoch) throw new SessionExpiredError();
  if (await isSessionOver(response)) {
    endSession(EXPIRED_MESSAGE);
    throw new SessionExpiredError();
  }
  return response;
}

function unavailableText(response, what) {
  const wait = retryAfterSeconds(response.headers.get('Retry-After'));
  return `${what} is unavailable right now; try again ${wait ? `in ${formatWait(wait)}` : 'later'}.`;
}

/** Words for an error answer to a job action. */
function actionErrorText(response, body, fallback) {
  if (response.status === 503) return unavailableText(response, 'The service');
  return sentence(body?.message) || `${fallback} (HTTP ${response.status})`;
}

// ---------------------------------------------------------------------------------------------------- sign in

function setAuthError(text) {
  ui.authError.textContent = text;
}

function setAuthMode(mode) {
  state.authMode = mode;
  const register = mode === 'register';
  ui.signinForm.hidden = register;
  ui.registerForm.hidden = !register;
  ui.authTitle.textContent = register ? 'Create an account' : 'Sign in';
  ui.registerToggle.textContent = register ? 'I already have an account' : 'Create an account';
  ui.registerToggle.setAttribute('aria-expanded', String(register));
  setAuthError('');
}

function loginErrorText(response, body) {
  switch (response.status) {
    case 401: return 'Wrong e-mail address or password.';
    case 429: {
      const wait = retryAfterSeconds(response.headers.get('Retry-After'));
      return `Too many failed sign-ins. Try again ${wait ? `in ${formatWait(wait)}` : 'later'}.`;
    }
    case 503: return unavailableText(response, 'Signing in');
    default: return sentence(body?.message) || `Signing in failed (HTTP ${response.status}).`;
  }
}

async function signIn(email, password) {
  const response = await fetch('/login', {
    method: 'POST',
    headers: { Authorization: `Basic ${base64Utf8(`${email}:${password}`)}`, Accept: 'application/json' },
    cache: 'no-store',
  });
  const body = await readJson(response);
  if (!response.ok || typeof body?.token !== 'string') throw new UserError(loginErrorText(response, body));
  const expiresAt = body.expires_at || new Date(Date.now() + (body.expires_in || 0) * 1000).toISOString();
  startSession({ token: body.token, email: emailFromToken(body.token) || email, expires_at: expiresAt });
}

function registerErrorText(response, body) {
  switch (response.status) {
    case 404: return 'Creating accounts is turned off on this server. Ask its administrator for an account.';
    case 409: return 'An account with this e-mail address already exists. Sign in instead.';
    case 503: return unavailableText(response, 'Creating accounts');
    default: return sentence(body?.message) || `Creating the account failed (HTTP ${response.status}).`;
  }
}

/** Create the account, then sign in with the same credentials. */
async function register(email, password) {
  const response = await fetch('/register', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify({ email, password }),
    cache: 'no-store',
  });
  if (response.status !== 201) throw new UserError(registerErrorText(response, await readJson(response)));
  await signIn(email, password);
}

/** Shared submit handling for both forms: busy button, errors in the alert. */
async function submitAuthForm(form, action) {
  const submit = form.querySelector('button[type="submit"]');
  const email = form.elements.email.value.trim();
  const password = form.elements.password.value;
  submit.disabled = true;
  submit.setAttribute('aria-busy', 'true');
  setAuthError('');
  try {
    await action(email, password);
  } catch (err) {
    setAuthError(err instanceof UserError ? err.message : 'Cannot reach the server. Check your connection and try again.');
  } finally {
    submit.disabled = false;
    submit.removeAttribute('aria-busy');
  }
}

// ---------------------------------------------------------------------------------------------------- jobs list

/** Fetch the newest 100 jobs and bring the list in line with them. */
async function refreshJobs() {
  if (!state.session || state.pollInFlight) return;
  const epoch = state.epoch;
  const startedAt = performance.now();
  state.pollInFlight = true;
  try {
    const response = await api('/jobs?limit=100');
    const body = await readJson(response);
    if (epoch !== state.epoch) return;
    if (!response.ok || !Array.isArray(body?.jobs)) {
      ui.jobsNotice.textContent = response.status === 503
        ? 'The list cannot be refreshed right now; retrying shortly.'
        : `The list cannot be refreshed (${sentence(body?.message) || `HTTP ${response.status}`}).`;
      return;
    }
    ui.jobsNotice.textContent = '';
    const listed = new Set();
    for (const job of body.jobs) {
      listed.add(job.job_id);
      upsertJob(job);
    }
    // Rows added while this request ran (a finished upload) may simply be too new to be listed.
    for (const [id, entry] of state.jobs) {
      if (!listed.has(id) && entry.addedAt < startedAt) removeJob(id);
    }
    followOpenJobs();
  } catch (err) {
    if (!(err instanceof SessionExpiredError) && err.name !== 'AbortError' && epoch === state.epoch) {
      ui.jobsNotice.textContent = 'Cannot reach the server; retrying shortly.';
    }
  } finally {
    if (epoch === state.epoch) state.pollInFlight = false;
  }
}

/** Add a job or merge newer data into it. Stale data (from a poll or stream that lags behind) never moves a job back. */
function upsertJob(incoming) {
  if (!incoming || typeof incoming.job_id !== 'string' || !(incoming.status in STATUS_RANK)) return;
  if (state.deleted.has(incoming.job_id)) return;
  const entry = state.jobs.get(incoming.job_id);
  if (!entry) {
    addJobRow(incoming);
    return;
  }
  const current = entry.job;
  if (STATUS_RANK[incoming.status] < STATUS_RANK[current.status]) return;
  if (FINAL_STATUSES.has(current.status) && incoming.status !== current.status) return;
  const merged = { ...current, ...incoming };
  if (merged.status === current.status && !(merged.progress >= current.progress)) merged.progress = current.progress;
  entry.job = merged;
  renderJob(entry);
  if (merged.status !== current.status) {
    const reason = merged.status === 'failed' && merged.error ? `: ${merged.error}` : '';
    announce(`${merged.filename}: ${STATUS_LABELS[merged.status].toLowerCase()}${reason}`);
  }
}

function addJobRow(job) {
  const { root, refs } = instantiate(ui.jobTemplate);
  const entry = { job, row: root, refs, addedAt: performance.now() };
  state.jobs.set(job.job_id, entry);
  renderJob(entry);
  // Newest first: before the first row created earlier. ISO times in one format compare as strings.
  const later = [...ui.jobsList.children].find((row) => {
    const other = state.jobs.get(row.dataset.jobId);
    return other && other.job.created_at < job.created_at;
  });
  ui.jobsList.insertBefore(root, later || null);
  updateEmptyState();
}

function removeJob(id) {
  const entry = state.jobs.get(id);
  if (!entry) return;
  state.streams.get(id)?.abort();
  entry.row.querySelector('audio')?.pause();
  // Keep keyboard users in place: focus would otherwise fall back to the page's start.
  const hadFocus = entry.row.contains(document.activeElement);
  entry.row.remove();
  state.jobs.delete(id);
  if (hadFocus) ui.jobsTitle.focus();
  updateEmptyState();
}

function updateEmptyState() {
  const empty = state.jobs.size === 0;
  ui.jobsEmpty.hidden = !empty;
  ui.jobsHead.hidden = empty;
}

const UPLOAD_ROW_ENDINGS = {
  done: 'Uploaded and converted.',
  failed: 'Uploaded; the conversion failed (see your files below).',
  cancelled: 'Cancelled.',
};

/** Show a job's current state in its row. Only texts and attributes change, so focus and the player survive. */
function renderJob({ job, row, refs }) {
  const { status } = job;
  const progress = status === 'done' ? 100 : Math.min(100, Math.max(0, Number(job.progress) || 0));
  row.dataset.jobId = job.job_id;
  row.dataset.status = status;

  refs.name.textContent = job.filename;
  refs.size.textContent = formatBytes(job.size);
  refs.created.dateTime = job.created_at || '';
  refs.created.textContent = formatCreated(job.created_at);
  refs.status.textContent = STATUS_LABELS[status];
  refs.progress.value = progress;
  refs.progress.setAttribute('aria-label', `Conversion of ${job.filename}`);
  refs.percent.textContent = `${progress} %`;
  refs.meter.hidden = status === 'failed' || status === 'cancelled';
  refs.duration.textContent = status === 'done' ? formatDuration(job.duration_seconds) : '—';

  const showError = status === 'failed' || status === 'cancelled';
  refs.error.hidden = !showError;
  refs.error.textContent = showError ? sentence(job.error) || (status === 'failed' ? 'The conversion failed.' : '') : '';

  refs.play.hidden = status !== 'done';
  refs.download.hidden = status !== 'done';
  refs.play.setAttribute('aria-label', `Play ${mp3FileName(job.filename)}`);
  refs.download.setAttribute('aria-label', `Download ${mp3FileName(job.filename)}`);
  // DELETE cancels a queued job (it stays listed as cancelled), deletes a finished one, and is refused (409) while
  // the converter works on it.
  refs.del.textContent = status === 'queued' ? 'Cancel' : 'Delete';
  refs.del.setAttribute('aria-label', `${refs.del.textContent} ${job.filename}`);
  refs.del.disabled = status === 'processing';
  refs.del.title = status === 'processing' ? 'A file can be deleted once its conversion has finished.' : '';

  // The file's upload row, while it is still shown, follows its conversion to the end.
  const uploadStatus = document.querySelector(
    `[data-testid="upload-row"][data-job-id="${CSS.escape(job.job_id)}"] [data-testid="upload-status"]`);
  if (uploadStatus && UPLOAD_ROW_ENDINGS[status]) uploadStatus.textContent = UPLOAD_ROW_ENDINGS[status];
}

// ---------------------------------------------------------------------------------------------------- live events

/**
 * A Server-Sent Events parser (EventSource cannot send an Authorization header, so the stream is read with fetch).
 * Lines end with \r\n, \n or \r; a blank line dispatches the event; data lines are joined with \n; comments
 * (": keep-alive") are ignored.
 */
function createSseParser(onEvent, onRetry) {
  let buffer = '';
  let type = '';
  let data = [];

  function processLine(line) {
    if (line === '') {
      if (data.length > 0) onEvent({ type: type || 'message', data: data.join('\n') });
      type = '';
      data = [];
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') type = value;
    else if (field === 'data') data.push(value);
    else if (field === 'retry' && /^\d+$/.test(value)) onRetry(Number(value));
  }

  return function push(text) {
    buffer += text;
    let start = 0;
    for (let i = 0; i < buffer.length; i += 1) {
      const c = buffer[i];
      if (c !== '\n' && c !== '\r') continue;
      if (c === '\r' && i + 1 === buffer.length) break; // may be the first half of a \r\n split across chunks
      processLine(buffer.slice(start, i));
      if (c === '\r' && buffer[i + 1] === '\n') i += 1;
      start = i + 1;
    }
    buffer = buffer.slice(start);
  };
}

async function readEventStream(body, onEvent, onRetry) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const push = createSseParser(onEvent, onRetry);
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    push(decoder.decode(value, { stream: true }));
  }
  push(decoder.decode()); // an unfinished last event is dropped, as EventSource does
}

function isOpenJob(id) {
  const entry = state.jobs.get(id);
  return Boolean(entry) && !FINAL_STATUSES.has(entry.job.status);
}

/** Give open jobs an event stream, as far as the connection budget allows: processing ones first, then the newest. */
function followOpenJobs() {
  if (!state.session) return;
  const waiting = [...state.jobs.values()]
    .map((entry) => entry.job)
    .filter((job) => !FINAL_STATUSES.has(job.status) && !state.streams.has(job.job_id))
    .sort((a, b) => (STATUS_RANK[b.status] - STATUS_RANK[a.status]) || (b.created_at > a.created_at ? 1 : -1));
  for (const job of waiting) {
    if (state.streams.size >= MAX_EVENT_STREAMS) break;
    followJob(job.job_id);
  }
}

function followJob(id) {
  const controller = new AbortController();
  state.streams.set(id, controller);
  runEventStream(id, controller.signal).finally(() => {
    if (state.streams.get(id) === controller) state.streams.delete(id);
    followOpenJobs(); // hand the freed connection to the next open job
  });
}

/** Follow one job until it is final; reconnect when the stream ends early (gateway restart, network). */
async function runEventStream(id, signal) {
  let delay = RECONNECT_MS;
  while (!signal.aborted && isOpenJob(id)) {
    try {
      const response = await api(`/jobs/${id}/events`, { signal, headers: { Accept: 'text/event-stream' } });
      if (response.status === 404) {
        removeJob(id); // deleted elsewhere
        return;
      }
      if (response.ok && response.body) {
        delay = RECONNECT_MS;
        await readEventStream(response.body, (event) => handleStatusEvent(id, event), (ms) => { delay = ms; });
      } else {
        delay = (retryAfterSeconds(response.headers.get('Retry-After')) ?? 5) * 1000;
      }
    } catch (err) {
      if (err instanceof SessionExpiredError || signal.aborted) return;
      // The connection dropped: try again after the delay.
    }
    if (!isOpenJob(id)) return;
    await sleep(delay, signal);
  }
}

function handleStatusEvent(id, event) {
  if (event.type !== 'status') return;
  let job;
  try {
    job = JSON.parse(event.data);
  } catch {
    return;
  }
  if (job?.job_id === id) upsertJob(job);
}

// ---------------------------------------------------------------------------------------------------- job actions

/** A fresh signed link to the job's MP3 (valid a few minutes; it carries no token). */
async function signedLink(id) {
  const response = await api(`/jobs/${id}/link`, { method: 'POST' });
  const body = await readJson(response);
  if (response.ok && typeof body?.url === 'string') {
    // Only ever point the player or a download at this origin.
    const url = new URL(body.url, location.href);
    if (url.origin === location.origin) return url.pathname + url.search;
    throw new UserError('The server gave an unexpected link.');
  }
  if (response.status === 404) {
    removeJob(id);
    throw new UserError('This file no longer exists.');
  }
  throw new UserError(actionErrorText(response, body, 'Could not get a link to the MP3'));
}

/** One player at a time: stop and remove the others. */
function closePlayers(exceptId) {
  for (const [id, entry] of state.jobs) {
    if (id === exceptId) continue;
    const audio = entry.refs.player.querySelector('audio');
    if (!audio) continue;
    audio.pause();
    entry.refs.player.replaceChildren();
    entry.refs.player.hidden = true;
  }
}

async function playJob(entry) {
  const url = await signedLink(entry.job.job_id);
  closePlayers(entry.job.job_id);
  const container = entry.refs.player;
  container.replaceChildren();
  const audio = document.createElement('audio');
  audio.controls = true;
  audio.preload = 'auto';
  audio.dataset.testid = 'player';
  audio.setAttribute('aria-label', `Player: ${mp3FileName(entry.job.filename)}`);
  // Seeking later makes new range requests with the same link, which fails once it has expired.
  audio.addEventListener('error', () => {
    if (container.querySelector('.player-note')) return;
    const note = document.createElement('p');
    note.className = 'player-note';
    note.textContent = 'Playback stopped (the link may have expired). Press Play again.';
    container.append(note);
  });
  audio.src = url;
  container.append(audio);
  container.hidden = false;
  try {
    await audio.play();
  } catch {
    // Autoplay may be refused; the controls are there.
  }
}

/** Download through a temporary link, so the file keeps its name and the page stays. */
async function downloadJob(entry) {
  const url = await signedLink(entry.job.job_id);
  const a = document.createElement('a');
  a.href = url;
  a.download = mp3FileName(entry.job.filename);
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
}

async function deleteJob(entry) {
  const { job } = entry;
  const question = job.status === 'queued'
    ? `Cancel the conversion of "${job.filename}"?`
    : `Delete "${job.filename}" and its MP3? This cannot be undone.`;
  if (!window.confirm(question)) return;
  const response = await api(`/jobs/${job.job_id}`, { method: 'DELETE' });
  if (response.status === 204 || response.status === 404) {
    state.deleted.add(job.job_id);
    removeJob(job.job_id);
    announce(`${job.filename} deleted`);
    return;
  }
  const body = await readJson(response);
  if (response.status === 200) {
    upsertJob(body); // a queued job is now cancelled and stays listed until deleted
    return;
  }
  if (response.status === 409) throw new UserError(`"${job.filename}" is being converted; delete it once it has finished.`);
  throw new UserError(actionErrorText(response, body, 'Could not delete the file'));
}

const JOB_ACTIONS = { play: playJob, download: downloadJob, delete: deleteJob };

/** Run a row's action with its button busy; errors go to the page's alert. */
async function onJobAction(event) {
  const button = event.target.closest('button[data-action]');
  const row = button?.closest('[data-job-id]');
  const entry = row && state.jobs.get(row.dataset.jobId);
  const action = button && JOB_ACTIONS[button.dataset.action];
  if (!entry || !action || button.getAttribute('aria-busy') === 'true') return;
  showAppError('');
  button.setAttribute('aria-busy', 'true');
  try {
    await action(entry);
  } catch (err) {
    if (err instanceof SessionExpiredError || err.name === 'AbortError') return;
    showAppError(err instanceof UserError ? err.message : 'Cannot reach the server. Check your connection and try again.');
  } finally {
    button.removeAttribute('aria-busy');
  }
}

// ---------------------------------------------------------------------------------------------------- uploads

function readOptions() {
  const mode = ui.modeQuality.checked ? 'quality' : 'bitrate';
  return { mode, bitrate: ui.bitrate.value, quality: ui.quality.value, mono: ui.mono.checked };
}

function describeOptions(options) {
  const main = options.mode === 'quality' ? `VBR quality ${options.quality}` : `${options.bitrate} kb/s`;
  return options.mono ? `${main}, mono` : main;
}

function enqueueFiles(files) {
  if (!state.session) return;
  const options = readOptions();
  for (const file of files) {
    const { root, refs } = instantiate(ui.uploadTemplate);
    const upload = { file, options, row: root, refs, xhr: null, state: 'waiting', epoch: state.epoch };
    refs.name.textContent = file.name;
    refs.size.textContent = formatBytes(file.size);
    refs.options.textContent = describeOptions(options);
    refs.progress.setAttribute('aria-label', `Upload of ${file.name}`);
    ui.uploadList.append(root);
    state.uploads.push(upload);
    // An empty file would be refused (400 empty_file); say so without a round trip.
    if (file.size === 0) finishUpload(upload, 'failed', 'The file is empty.', false);
  }
  pumpUploads();
}

function pumpUploads() {
  let active = state.uploads.filter((u) => u.state === 'uploading').length;
  for (const upload of state.uploads) {
    if (active >= MAX_PARALLEL_UPLOADS) break;
    if (upload.state !== 'waiting') continue;
    startUpload(upload);
    active += 1;
  }
}

function setUploadState(upload, newState, statusText) {
  upload.state = newState;
  upload.row.dataset.state = newState;
  upload.refs.status.textContent = statusText;
  const finished = newState !== 'waiting' && newState !== 'uploading';
  upload.refs.cancel.hidden = finished;
  upload.refs.dismiss.hidden = !finished;
  if (finished) {
    upload.refs.speed.textContent = '';
    upload.refs.eta.textContent = '';
  }
}

/** Bytes per second over the last few seconds, so the speed follows changes without jumping at every event. */
function createSpeedMeter() {
  const samples = [];
  return (loaded) => {
    const now = performance.now();
    samples.push({ t: now, loaded });
    while (samples.length > 2 && now - samples[0].t > 3000) samples.shift();
    const seconds = (now - samples[0].t) / 1000;
    return seconds > 0.25 ? (loaded - samples[0].loaded) / seconds : NaN;
  };
}

function startUpload(upload) {
  const { file, options, refs } = upload;
  const form = new FormData();
  // bitrate and quality are exclusive; the file goes last, after the fields.
  if (options.mode === 'quality') form.append('quality', options.quality);
  else form.append('bitrate', options.bitrate);
  if (options.mono) form.append('channels', '1');
  form.append('file', file, file.name);

  const xhr = new XMLHttpRequest();
  const speedOf = createSpeedMeter();
  upload.xhr = xhr;
  refs.retry.hidden = true;
  refs.progress.value = 0;
  setUploadState(upload, 'uploading', 'Uploading');

  xhr.upload.addEventListener('progress', (event) => {
    if (!event.lengthComputable || upload.epoch !== state.epoch) return;
    const speed = speedOf(event.loaded);
    refs.progress.value = (event.loaded / event.total) * 100;
    refs.speed.textContent = formatSpeed(speed);
    refs.eta.textContent = speed > 0 ? `${formatWait((event.total - event.loaded) / speed)} left` : '';
  });
  // Every byte is sent; the server still stores and queues the file before it answers.
  xhr.upload.addEventListener('load', () => {
    if (upload.epoch !== state.epoch || upload.state !== 'uploading') return;
    refs.progress.value = 100;
    refs.eta.textContent = '';
    refs.status.textContent = 'Finishing upload';
  });
  xhr.addEventListener('load', () => handleUploadAnswer(upload, xhr));
  xhr.addEventListener('error', () => {
    // Also what a refusal looks like when the server answers (413) before the body is sent and closes.
    finishUpload(upload, 'failed', 'The upload was interrupted: the connection failed or the server refused the file.', true);
  });
  xhr.addEventListener('abort', () => {
    if (upload.state === 'uploading') finishUpload(upload, 'cancelled', 'Upload cancelled.', true);
  });

  xhr.open('POST', '/upload');
  xhr.setRequestHeader('Authorization', `Bearer ${state.session.token}`);
  xhr.setRequestHeader('Accept', 'application/json');
  xhr.send(form);
}

function finishUpload(upload, outcome, text, retryable) {
  if (upload.epoch !== state.epoch) return;
  upload.xhr = null;
  setUploadState(upload, outcome, text);
  upload.refs.retry.hidden = !retryable;
  if (outcome === 'done') upload.refs.progress.value = 100;
  announce(`${upload.file.name}: ${text}`);
  pumpUploads();
}

function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** Words for a refused upload: [text, worth retrying]. */
function uploadErrorText(status, body, retryAfter) {
  switch (status) {
    case 413:
      if (body?.error === 'quota_exceeded') return [`${sentence(body.message)} Delete some files to make room.`, false];
      {
        const limit = /(\d+) bytes/.exec(body?.message || '');
        return [limit ? `The file is too large: the limit is ${formatBytes(Number(limit[1]))}.`
          : sentence(body?.message) || 'The file is too large.', false];
      }
    case 429: return [`The server is busy; try again in ${formatWait(retryAfter ?? 30)}.`, true];
    case 503: return [`The service is unavailable right now; try again ${retryAfter ? `in ${formatWait(retryAfter)}` : 'later'}.`, true];
    default: return [sentence(body?.message) || `The upload failed (HTTP ${status}).`, status >= 500];
  }
}

function handleUploadAnswer(upload, xhr) {
  if (upload.epoch !== state.epoch) return;
  const body = parseJson(xhr.responseText);
  if (xhr.status === 401 || (xhr.status === 403 && body?.error === 'not_authorized')) {
    endSession(EXPIRED_MESSAGE);
    return;
  }
  if (xhr.status === 202 && typeof body?.job_id === 'string') {
    upload.row.dataset.jobId = body.job_id;
    finishUpload(upload, 'done', 'Uploaded; converting.', false);
    // Show the job at once; its event stream fills in the rest.
    upsertJob({
      job_id: body.job_id, status: 'queued', progress: 0, filename: upload.file.name, size: upload.file.size,
      created_at: new Date().toISOString(), duration_seconds: null, error: null,
    });
    followOpenJobs();
    return;
  }
  const [text, retryable] = uploadErrorText(xhr.status, body, retryAfterSeconds(xhr.getResponseHeader('Retry-After')));
  finishUpload(upload, 'failed', text, retryable);
}

function onUploadAction(event) {
  const button = event.target.closest('button[data-action]');
  const upload = button && state.uploads.find((u) => u.row.contains(button));
  if (!upload) return;
  switch (button.dataset.action) {
    case 'cancel':
      if (upload.state === 'uploading') upload.xhr?.abort();
      else if (upload.state === 'waiting') finishUpload(upload, 'cancelled', 'Upload cancelled.', true);
      break;
    case 'retry':
      setUploadState(upload, 'waiting', 'Waiting');
      upload.refs.retry.hidden = true;
      pumpUploads();
      break;
    case 'dismiss':
      upload.row.remove();
      state.uploads = state.uploads.filter((u) => u !== upload);
      ui.dropzone.focus();
      break;
    default:
  }
}

// ---------------------------------------------------------------------------------------------------- drag and drop

function hasFiles(event) {
  return Boolean(event.dataTransfer) && Array.from(event.dataTransfer.types).includes('Files');
}

/** Files may be dropped anywhere on the page; the drop zone lights up while they are dragged. */
function setUpDragAndDrop() {
  let depth = 0; // dragenter/dragleave fire for every child element crossed
  const highlight = (on) => ui.dropzone.classList.toggle('is-dragover', on);
  document.addEventListener('dragenter', (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    depth += 1;
    highlight(Boolean(state.session));
  });
  document.addEventListener('dragover', (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault(); // without it the browser would open the file in place of the page
    event.dataTransfer.dropEffect = state.session ? 'copy' : 'none';
  });
  document.addEventListener('dragleave', (event) => {
    if (!hasFiles(event)) return;
    depth = Math.max(0, depth - 1);
    if (depth === 0) highlight(false);
  });
  document.addEventListener('drop', (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    depth = 0;
    highlight(false);
    enqueueFiles(Array.from(event.dataTransfer.files));
  });
}

// ---------------------------------------------------------------------------------------------------- start

function collectElements() {
  const byId = (id) => document.getElementById(id);
  Object.assign(ui, {
    authView: byId('auth-view'), authTitle: byId('auth-title'), authError: byId('auth-error'),
    signinForm: byId('signin-form'), signinEmail: byId('signin-email'),
    registerForm: byId('register-form'), registerEmail: byId('register-email'), registerToggle: byId('register-toggle'),
    userArea: byId('user-area'), userEmail: byId('user-email'), signout: byId('signout'),
    appView: byId('app-view'), appError: byId('app-error'), uploadTitle: byId('upload-title'),
    modeBitrate: byId('mode-bitrate'), modeQuality: byId('mode-quality'),
    bitrate: byId('bitrate'), quality: byId('quality'), mono: byId('mono'),
    dropzone: byId('dropzone'), fileInput: byId('file-input'), uploadList: byId('upload-list'),
    jobsTitle: byId('jobs-title'), jobsNotice: byId('jobs-notice'), jobsEmpty: byId('jobs-empty'),
    jobsHead: document.querySelector('.jobs-head'), jobsList: byId('jobs-list'), refresh: byId('refresh'),
    announcer: byId('announcer'),
    uploadTemplate: byId('upload-row-template'), jobTemplate: byId('job-row-template'),
  });
}

function wireEvents() {
  ui.signinForm.addEventListener('submit', (event) => {
    event.preventDefault();
    submitAuthForm(ui.signinForm, signIn);
  });
  ui.registerForm.addEventListener('submit', (event) => {
    event.preventDefault();
    submitAuthForm(ui.registerForm, register);
  });
  ui.registerToggle.addEventListener('click', () => {
    setAuthMode(state.authMode === 'signin' ? 'register' : 'signin');
    (state.authMode === 'register' ? ui.registerEmail : ui.signinEmail).focus();
  });
  ui.signout.addEventListener('click', () => endSession(''));

  // Choosing a value implies its mode, so picking "320" does not silently upload at the VBR setting.
  ui.bitrate.addEventListener('change', () => { ui.modeBitrate.checked = true; });
  ui.quality.addEventListener('change', () => { ui.modeQuality.checked = true; });

  ui.dropzone.addEventListener('click', () => ui.fileInput.click());
  ui.fileInput.addEventListener('change', () => {
    enqueueFiles(Array.from(ui.fileInput.files));
    ui.fileInput.value = ''; // so that picking the same file again fires change
  });
  ui.uploadList.addEventListener('click', onUploadAction);
  ui.jobsList.addEventListener('click', onJobAction);
  ui.refresh.addEventListener('click', refreshJobs);

  // Background tabs may have their timers slowed; catch up when the page is seen again.
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') refreshJobs();
  });
  setUpDragAndDrop();
}

function init() {
  collectElements();
  wireEvents();
  const saved = loadSession();
  if (saved) {
    startSession(saved);
  } else {
    setAuthMode('signin');
    ui.authView.hidden = false;
  }
}

init();
