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
const MAX_TAG_BYTES = 250; // as the server counts a tag: bytes of UTF-8 (OutputTags::kMaxTagBytes)
// A mailed link to one job: /#job=<id>.
const JOB_LINK_PATTERN = /^#job=([0-9a-f]{24})$/;
const EXPIRED_MESSAGE = 'Your session has expired. Please sign in again.';
// The last MP3 settings chosen, remembered in this browser (localStorage: nothing sensitive, never the token).
const OPTIONS_KEY = 'mp3c.options';
// Named settings of the upload form: constant bitrate, mono or as the source (up to stereo).
const PRESETS = {
  podcast: { bitrate: '64', mono: true },
  speech: { bitrate: '96', mono: true },
  music: { bitrate: '320', mono: false },
  standard: { bitrate: '192', mono: false },
};
// Typical average bitrates (kb/s) of LAME's variable quality levels -V0 … -V9 on music in stereo: the estimate of a
// VBR MP3's size is a range around them.
const VBR_TYPICAL_KBPS = [245, 225, 190, 175, 165, 130, 115, 100, 85, 65];
// How long the browser may take to read a chosen file's length (for the MP3 size estimate).
const DURATION_READ_TIMEOUT_MS = 15_000;
// The choices of e-mails about finished files (GET/PATCH /account/preferences), with the words shown once saved.
const JOB_MAILS_SAVED = {
  each: 'Saved: one mail per converted file.',
  summary: 'Saved: one summary per batch of uploads.',
  off: 'Saved: no e-mails about your files.',
};
// A mailed unsubscribe link's token (/#unsubscribe=<token>): the characters the gateway lets into the page's address.
const UNSUBSCRIBE_TOKEN_PATTERN = /^[A-Za-z0-9._-]{1,100}$/;
const UNSUBSCRIBED_TEXT = 'Done: you will get no more e-mails about your files. You can turn them back on under your ' +
  "account's E-mails setting.";
const INVALID_UNSUBSCRIBE_TEXT = 'This unsubscribe link is not valid. Copy the whole link from the mail, or sign in ' +
  'and choose under E-mails.';

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
  durationReads: Promise.resolve(), // chosen files' lengths are read one after the other
  jobMails: null, // the account's choice of e-mails about its files (each, summary, off), once loaded
  jobMailsLoading: false,
  jobMailsSaving: false,
  unsubscribeToken: null, // the secret of a mailed unsubscribe link (#unsubscribe=), until it is used or dismissed
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

/** A trim's time as the form takes it: m:ss or h:mm:ss, with the milliseconds when there are any ("1:02.5"). */
function formatTrimTime(seconds) {
  const whole = Math.floor(seconds);
  const ms = Math.round((seconds - whole) * 1000);
  const fraction = ms > 0 ? `.${String(ms).padStart(3, '0').replace(/0+$/, '')}` : '';
  const clock = formatDuration(whole);
  return `${clock}${fraction}`;
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

/**
 * A date and time in the browser's locale and time zone ("13 Dec, 10:00"; with the year when it is not this one:
 * "13 Dec 2025, 10:00"), or '' for a missing one.
 */
function formatDateTime(iso) {
  if (!iso) return '';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return '';
  const year = date.getFullYear() === new Date().getFullYear() ? undefined : 'numeric';
  return date.toLocaleString(undefined, { year, month: 'short', day: 'numeric', hour: 'numeric', minute: '2-digit' });
}

/**
 * A job's settings ({bitrate, quality, channels, sample_rate}; null when the converter's default applies) in words:
 * "64 kb/s, mono", "VBR quality 2, stereo, 44.1 kHz", or "Default settings" when none is given; then the tags set,
 * if any: "192 kb/s; tags: title “Nuit”, year “2024”".
 */
function describeJobOptions(options) {
  const o = options && typeof options === 'object' ? options : {};
  const parts = [];
  if (Number.isFinite(o.bitrate)) parts.push(`${o.bitrate} kb/s`);
  if (Number.isFinite(o.quality)) parts.push(`VBR quality ${o.quality}`);
  if (o.channels === 1) parts.push('mono');
  else if (o.channels === 2) parts.push('stereo');
  else if (Number.isFinite(o.channels)) parts.push(`${o.channels} channels`);
  if (Number.isFinite(o.sample_rate)) parts.push(`${o.sample_rate / 1000} kHz`);
  if (Number.isFinite(o.start) || Number.isFinite(o.end)) {
    parts.push(`from ${formatTrimTime(o.start || 0)}${Number.isFinite(o.end) ? ` to ${formatTrimTime(o.end)}` : ''}`);
  }
  if (o.chapters === 'none') parts.push('no chapters');
  if (o.chapters === 'split') parts.push('one MP3 per chapter');
  if (o.cover === 'none') parts.push('no cover');
  if (Number.isFinite(o.loudness)) parts.push(`${String(o.loudness).replace('-', '−')} LUFS`);
  const settings = parts.length > 0 ? parts.join(', ') : 'Default settings';
  const tags = o.tags && typeof o.tags === 'object' ? o.tags : {};
  const named = ['title', 'artist', 'album', 'year', 'track', 'genre'].filter((k) => typeof tags[k] === 'string');
  // Text only (the caller sets textContent): a tag is the user's own words.
  return named.length > 0 ? `${settings}; tags: ${named.map((k) => `${k} “${tags[k]}”`).join(', ')}` : settings;
}

/**
 * The MP3's bytes per second of sound for the form's options, as [low, high]: exact for a constant bitrate, a rough
 * range around the level's typical bitrate for variable quality (lower for mono, which needs fewer bits).
 */
function mp3BytesPerSecond(options) {
  if (options.mode === 'quality') {
    const kbps = VBR_TYPICAL_KBPS[Number(options.quality)] ?? VBR_TYPICAL_KBPS[4];
    const [low, high] = options.mono ? [0.5, 0.8] : [0.8, 1.2];
    return [kbps * low * 125, kbps * high * 125]; // 1 kb/s = 125 bytes/s
  }
  const rate = Number(options.bitrate) * 125;
  return [rate, rate];
}

/** "≈ 4.6 MB", or a range "≈ 3.9–5.3 MB", from [low, high] bytes. */
function formatEstimate([low, high]) {
  const a = formatBytes(Math.round(low));
  const b = formatBytes(Math.round(high));
  if (a === b) return `≈ ${a}`;
  const [numberA, unitA] = a.split(' ');
  return unitA === b.split(' ')[1] ? `≈ ${numberA}–${b}` : `≈ ${a}–${b}`;
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

/**
 * A status icon (text, so no image is fetched): "✕" on an error, with an accessible name since colour alone must not
 * carry it, "✓" when done (decorative: the words say it), none otherwise.
 */
function setStatusIcon(icon, kind) {
  icon.hidden = kind !== 'error' && kind !== 'ok';
  icon.classList.toggle('is-error', kind === 'error');
  icon.classList.toggle('is-ok', kind === 'ok');
  if (kind === 'error') {
    icon.textContent = '✕';
    icon.setAttribute('role', 'img');
    icon.setAttribute('aria-label', 'Error:');
    icon.removeAttribute('aria-hidden');
  } else {
    icon.textContent = kind === 'ok' ? '✓' : '';
    icon.removeAttribute('role');
    icon.removeAttribute('aria-label');
    icon.setAttribute('aria-hidden', 'true');
  }
}

/** Announce a status change to screen readers (cleared first so a repeated text is read again). */
function announce(text) {
  ui.announcer.textContent = '';
  setTimeout(() => { ui.announcer.textContent = text; }, 50);
}

function showAppError(text) {
  ui.appError.textContent = text;
}
