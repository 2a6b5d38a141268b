// mp3converter web page: sign in, upload with progress, a live list of jobs, play, download, delete. This file: the
// constants, the state and the formatting shared by session.js, jobs.js and app.js (loaded in that order).
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
// A done job's MP3, or a failed job's upload, is deleted after its retention time (expires_at): the job is then
// expired, and nothing moves it on from there.
const FINAL_STATUSES = new Set(['done', 'failed', 'cancelled', 'expired']);
const STATUS_RANK = { queued: 0, processing: 1, done: 2, failed: 2, cancelled: 2, expired: 3 };
const STATUS_LABELS = {
  queued: 'Queued', processing: 'Converting', done: 'Done', failed: 'Failed', cancelled: 'Cancelled', expired: 'Expired',
};
// GET /jobs.zip takes at most this many ids.
const MAX_ZIP_JOBS = 100;
// A mailed link to one job: /#job=<id>.
const JOB_LINK_PATTERN = /^#job=([0-9a-f]{24})$/;
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
  resetToken: null, // the secret of a mailed password-reset link (#reset=), until it is used
  linkedJobId: null, // the job of a mailed link (#job=), until it has been shown (after the sign-in if need be)
  selected: new Set(), // ids of the done jobs ticked for "Download selected"
  zipInFlight: false,
  unverifiedEmail: null, // the address of a sign-in refused as not yet activated (for "send the link again")
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

/** A date and time in the browser's locale and time zone ("13 Dec 2026, 10:00"), or '' for a missing one. */
function formatDateTime(iso) {
  if (!iso) return '';
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
