// Part of the mp3converter web page (index.html loads common.js, session.js, jobs.js and app.js in this order, as
// classic scripts sharing one global scope; only app.js runs anything when loaded).

'use strict';

// ---------------------------------------------------------------------------------------------------- uploads

function readOptions() {
  const mode = ui.modeQuality.checked ? 'quality' : 'bitrate';
  return {
    mode, bitrate: ui.bitrate.value, quality: ui.quality.value, mono: ui.mono.checked,
    trim: readFields(ui.trimInputs, 'option'), // the trim and chapters: {start: "1:30", chapters: "none"}
    tags: readFields(ui.tagInputs, 'tag'), // {title: "…", …}
  };
}

/** The fields of "Advanced" as form fields named by their data-KEY, empty ones left out (the server checks them). */
function readFields(inputs, key) {
  const fields = {};
  for (const input of inputs) {
    const value = input.value.trim();
    if (value !== '') fields[input.dataset[key]] = value;
  }
  return fields;
}

/** The form's options as the API reports a job's: {bitrate, quality, channels, sample_rate, start, ...}. */
function apiOptions(options) {
  const advanced = options.trim || {};
  const start = parseTrimTime(advanced.start);
  const end = parseTrimTime(advanced.end);
  return {
    bitrate: options.mode === 'bitrate' ? Number(options.bitrate) : null,
    quality: options.mode === 'quality' ? Number(options.quality) : null,
    channels: options.mono ? 1 : null,
    sample_rate: null,
    ...(Number.isFinite(start) ? { start } : {}),
    ...(Number.isFinite(end) ? { end } : {}),
    ...(advanced.chapters ? { chapters: advanced.chapters } : {}),
    ...(advanced.cover ? { cover: advanced.cover } : {}),
    ...(advanced.loudness ? { loudness: Number(advanced.loudness) } : {}),
    ...(Object.keys(options.tags || {}).length > 0 ? { tags: options.tags } : {}),
  };
}

/** "90", "12.5", "1:30" or "1:02:03.5" as seconds (the server's trim syntax); NaN for anything else. */
function parseTrimTime(text) {
  if (typeof text !== 'string' || !/^\d+(:\d{1,2}){0,2}(\.\d{1,3})?$/.test(text)) return NaN;
  return text.split(':').reduce((total, part) => total * 60 + Number(part), 0);
}

/**
 * The tags are measured as the server measures them, in bytes of UTF-8 (maxlength counts characters: 250 of "é" are
 * 500 bytes). Too long a tag is said under the field, and no file is uploaded until it is shortened.
 */
function checkTagLengths() {
  let firstProblem = '';
  for (const input of ui.tagInputs) {
    const bytes = new TextEncoder().encode(input.value.trim()).length;
    const problem = bytes > MAX_TAG_BYTES
      ? `${input.labels[0]?.textContent || 'This tag'} is too long: at most ${MAX_TAG_BYTES} bytes (it has ${bytes}; an accented letter takes 2, an emoji 4).`
      : '';
    input.setCustomValidity(problem);
    input.setAttribute('aria-invalid', String(Boolean(problem)));
    if (problem && !firstProblem) firstProblem = problem;
  }
  ui.tagProblem.textContent = firstProblem;
  ui.tagProblem.hidden = !firstProblem;
  return firstProblem;
}

function describeOptions(options) {
  return describeJobOptions(apiOptions(options));
}

// ---------------------------------------------------------------------------------------------------- settings

/** The preset the options are, or 'custom'. */
function matchingPreset(options) {
  if (options.mode !== 'bitrate') return 'custom';
  const found = Object.entries(PRESETS).find(([, p]) => p.bitrate === options.bitrate && p.mono === options.mono);
  return found ? found[0] : 'custom';
}

function applyPreset(name) {
  const preset = PRESETS[name];
  if (!preset) return; // "Custom" changes nothing
  ui.modeBitrate.checked = true;
  ui.bitrate.value = preset.bitrate;
  ui.mono.checked = preset.mono;
}

function hasOption(select, value) {
  return [...select.options].some((option) => option.value === String(value));
}

/** The settings chosen last time in this browser, if any were remembered. */
function restoreOptions() {
  let saved = null;
  try {
    saved = JSON.parse(localStorage.getItem(OPTIONS_KEY) || 'null');
  } catch {
    return; // storage disabled or unreadable: the form's defaults
  }
  if (!saved || typeof saved !== 'object') return;
  if (hasOption(ui.bitrate, saved.bitrate)) ui.bitrate.value = String(saved.bitrate);
  if (hasOption(ui.quality, saved.quality)) ui.quality.value = String(saved.quality);
  (saved.mode === 'quality' ? ui.modeQuality : ui.modeBitrate).checked = true;
  ui.mono.checked = saved.mono === true;
}

function saveOptions(options) {
  const { tags, trim, ...remembered } = options; // tags and trims are for one batch, never kept
  try {
    localStorage.setItem(OPTIONS_KEY, JSON.stringify(remembered));
  } catch {
    // Storage may be disabled: the settings then last as long as the page.
  }
}

/** The preset that matches and the size per minute, after any change. */
function showOptions({ keepPreset = false } = {}) {
  const options = readOptions();
  if (!keepPreset) ui.preset.value = matchingPreset(options);
  const perMinute = mp3BytesPerSecond(options).map((bytes) => bytes * 60);
  ui.optionsEstimate.textContent = `MP3 size: ${formatEstimate(perMinute)} per minute of sound` +
    (options.mode === 'quality' ? ' (variable quality: a rough range).' : '.');
}

function onOptionsChange(event) {
  const presetChosen = event.target === ui.preset;
  if (presetChosen) applyPreset(ui.preset.value);
  showOptions({ keepPreset: presetChosen && ui.preset.value === 'custom' });
  saveOptions(readOptions());
}

// ---------------------------------------------------------------------------------------------------- uploads

/**
 * The length of a chosen file in seconds, read here from its metadata (a media element on an object URL, revoked
 * after), or null when the browser cannot read it (a format it does not play, not a media file, a timeout).
 */
function readMediaDuration(file) {
  return new Promise((resolve) => {
    const media = document.createElement('video'); // plays audio files too
    const url = URL.createObjectURL(file);
    let settled = false;
    const finish = (seconds) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      media.removeAttribute('src');
      media.load(); // lets go of the file
      URL.revokeObjectURL(url);
      resolve(seconds);
    };
    const timer = setTimeout(() => finish(null), DURATION_READ_TIMEOUT_MS);
    media.preload = 'metadata';
    media.muted = true;
    media.addEventListener('loadedmetadata', () => {
      finish(Number.isFinite(media.duration) && media.duration > 0 ? media.duration : null);
    });
    media.addEventListener('error', () => finish(null));
    media.src = url;
  });
}

/** The MP3's estimated size in the upload's row, once the file's length is read (one file at a time). */
function estimateUpload(upload) {
  const { refs } = upload;
  refs.estimate.textContent = 'MP3 size: estimating…';
  state.durationReads = state.durationReads.then(async () => {
    if (!upload.row.isConnected) return; // dismissed, or signed out, meanwhile
    const seconds = await readMediaDuration(upload.file);
    if (seconds === null) {
      refs.estimate.textContent = 'MP3 size unknown: this browser cannot read the length of this file';
      refs.estimate.classList.add('is-unknown');
    } else {
      const bytes = mp3BytesPerSecond(upload.options).map((perSecond) => perSecond * seconds);
      refs.estimate.textContent = `MP3 ${formatEstimate(bytes)} (${formatDuration(seconds)} of sound)`;
    }
  });
}

/** The uploads that leaving the page (or signing out) would lose: sending, or waiting for their turn. */
function uploadsInFlight() {
  return state.uploads.filter((u) => u.state === 'uploading' || u.state === 'waiting');
}

function onBeforeUnload(event) {
  event.preventDefault();
  event.returnValue = true; // older browsers (Chrome before 119) want it set to ask "Leave site?"
}

/**
 * The browser asks before the page is left (closed, reloaded, navigated away) only while an upload is in flight; the
 * page's root carries data-uploading meanwhile.
 */
function updateLeaveGuard() {
  const busy = Boolean(state.session) && uploadsInFlight().length > 0;
  if (busy === document.documentElement.hasAttribute('data-uploading')) return;
  document.documentElement.toggleAttribute('data-uploading', busy);
  if (busy) window.addEventListener('beforeunload', onBeforeUnload);
  else window.removeEventListener('beforeunload', onBeforeUnload);
}

function enqueueFiles(files) {
  if (!state.session) return;
  if (checkTagLengths()) {
    ui.advanced.open = true;
    ui.tagInputs.find((input) => !input.checkValidity())?.focus();
    return;
  }
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
    else estimateUpload(upload);
  }
  updateLeaveGuard();
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
  delete upload.row.dataset.result; // the conversion's outcome, once uploaded (renderJob)
  upload.refs.status.textContent = statusText;
  setStatusIcon(upload.refs.icon, newState === 'failed' ? 'error' : 'none');
  const finished = newState !== 'waiting' && newState !== 'uploading';
  upload.refs.cancel.hidden = finished;
  upload.refs.dismiss.hidden = !finished;
  if (finished) {
    upload.refs.speed.textContent = '';
    upload.refs.eta.textContent = '';
  }
  updateLeaveGuard();
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
  for (const [name, value] of Object.entries({ ...options.trim, ...options.tags })) form.append(name, value);
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
    // The same file with the same settings as an earlier upload is done at once, with a copy of that MP3.
    const reused = body.status === 'done';
    finishUpload(upload, 'done', reused ? `${REUSED_TEXT}.` : 'Uploaded; converting.', false);
    // Show the job at once; its event stream fills in the rest (a job done at once has none: one look at it does).
    upsertJob({
      job_id: body.job_id, status: 'queued', progress: 0, filename: upload.file.name, size: upload.file.size,
      created_at: new Date().toISOString(), duration_seconds: null, error: null, mp3_size: null,
      options: apiOptions(upload.options),
      ...(reused ? { status: 'done', progress: 100, reused_from: body.reused_from ?? null } : {}),
    });
    if (reused) loadJob(body.job_id);
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
    authNotice: byId('auth-notice'), resendArea: byId('resend-area'), resendVerification: byId('resend-verification'),
    forgotToggle: byId('forgot-toggle'), forgotForm: byId('forgot-form'), forgotEmail: byId('forgot-email'),
    resetForm: byId('reset-form'), resetPassword: byId('reset-password'),
    signinForm: byId('signin-form'), signinEmail: byId('signin-email'), signinRemember: byId('signin-remember'),
    registerForm: byId('register-form'), registerEmail: byId('register-email'), registerToggle: byId('register-toggle'),
    userArea: byId('user-area'), userEmail: byId('user-email'), signout: byId('signout'),
    accountToggle: byId('account-toggle'), accountToggleText: byId('account-toggle-text'),
    accountInitial: byId('account-initial'),
    mailToggle: byId('mail-settings-toggle'), jobMails: byId('job-mails'), jobMailsStatus: byId('job-mails-status'),
    unsubscribePanel: byId('unsubscribe-panel'), unsubscribeTitle: byId('unsubscribe-title'),
    unsubscribeQuestion: byId('unsubscribe-question'), unsubscribeResult: byId('unsubscribe-result'),
    unsubscribeConfirm: byId('unsubscribe-confirm'), unsubscribeDismiss: byId('unsubscribe-dismiss'),
    appView: byId('app-view'), appError: byId('app-error'), uploadTitle: byId('upload-title'),
    options: byId('options'), preset: byId('preset'), optionsEstimate: byId('options-estimate'),
    modeBitrate: byId('mode-bitrate'), modeQuality: byId('mode-quality'),
    bitrate: byId('bitrate'), quality: byId('quality'), mono: byId('mono'),
    tagInputs: [...document.querySelectorAll('[data-tag]')],
    tagProblem: byId('tag-problem'), advanced: document.querySelector('[data-testid="advanced"]'),
    trimInputs: [...document.querySelectorAll('[data-option]')],
    dropzone: byId('dropzone'), fileInput: byId('file-input'), uploadList: byId('upload-list'),
    jobsTitle: byId('jobs-title'), jobsNotice: byId('jobs-notice'), jobsEmpty: byId('jobs-empty'),
    jobsHead: document.querySelector('.jobs-head'), jobsList: byId('jobs-list'), refresh: byId('refresh'),
    downloadSelected: byId('download-selected'), selectAll: byId('select-all'),
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
  ui.forgotToggle.addEventListener('click', () => {
    setAuthMode('forgot');
    ui.forgotEmail.value = ui.signinEmail.value;
    ui.forgotEmail.focus();
  });
  ui.forgotForm.addEventListener('submit', (event) => {
    event.preventDefault();
    submitAuthForm(ui.forgotForm, requestPasswordReset);
  });
  ui.resetForm.addEventListener('submit', (event) => {
    event.preventDefault();
    submitAuthForm(ui.resetForm, (_email, password) => confirmPasswordReset(password));
  });
  ui.resendVerification.addEventListener('click', resendVerification);
  ui.signout.addEventListener('click', signOut);
  ui.accountToggle.addEventListener('click', () => setAccountMenu(!isAccountMenuOpen()));
  ui.mailToggle.addEventListener('click', () => setMailSettings(!isMailSettingsOpen()));
  ui.jobMails.addEventListener('change', saveJobMails);
  // The narrow screens' account menu, and the wide screens' e-mail settings, close on Escape (focus back on their
  // button) and on a click elsewhere.
  ui.userArea.addEventListener('keydown', (event) => {
    if (event.key !== 'Escape') return;
    if (isMailSettingsOpen() && ui.mailToggle.getClientRects().length > 0) {
      setMailSettings(false);
      ui.mailToggle.focus();
    } else if (isAccountMenuOpen()) {
      setAccountMenu(false);
      ui.accountToggle.focus();
    }
  });
  document.addEventListener('click', (event) => {
    if (ui.userArea.contains(event.target)) return;
    if (isAccountMenuOpen()) setAccountMenu(false);
    if (isMailSettingsOpen()) setMailSettings(false);
  });
  ui.userArea.addEventListener('focusout', (event) => {
    if (event.relatedTarget && !ui.userArea.contains(event.relatedTarget)) { // tabbed away
      setAccountMenu(false);
      setMailSettings(false);
    }
  });
  ui.unsubscribeConfirm.addEventListener('click', confirmUnsubscribe);
  ui.unsubscribeDismiss.addEventListener('click', dismissUnsubscribe);

  // Choosing a value implies its mode, so picking "320" does not silently upload at the VBR setting.
  ui.bitrate.addEventListener('change', () => { ui.modeBitrate.checked = true; });
  ui.quality.addEventListener('change', () => { ui.modeQuality.checked = true; });
  ui.options.addEventListener('change', onOptionsChange); // after the two above: the event bubbles up to here

  for (const input of ui.tagInputs) input.addEventListener('input', checkTagLengths);
  ui.dropzone.addEventListener('click', () => ui.fileInput.click());
  ui.fileInput.addEventListener('change', () => {
    enqueueFiles(Array.from(ui.fileInput.files));
    ui.fileInput.value = ''; // so that picking the same file again fires change
  });
  ui.uploadList.addEventListener('click', onUploadAction);
  ui.jobsList.addEventListener('click', onJobAction);
  ui.jobsList.addEventListener('change', onJobSelect);
  ui.selectAll.addEventListener('change', onSelectAll);
  ui.downloadSelected.addEventListener('click', onDownloadSelected);
  ui.refresh.addEventListener('click', refreshJobs);
  // A mailed job link (or unsubscribe link) opened in a tab that already shows the page.
  window.addEventListener('hashchange', () => {
    if (takeUnsubscribeLink()) {
      showUnsubscribe();
      return;
    }
    if (!takeJobLink()) return;
    if (state.session) revealLinkedJob();
    else setAuthNotice('Sign in to see the file from your e-mail.');
  });

  // Background tabs may have their timers slowed; catch up when the page is seen again.
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') refreshJobs();
  });
  setUpDragAndDrop();
}

function isAccountMenuOpen() {
  return ui.accountToggle.getAttribute('aria-expanded') === 'true';
}

function setAccountMenu(open) {
  ui.accountToggle.setAttribute('aria-expanded', String(open));
  ui.userArea.classList.toggle('is-open', open);
  if (open && state.jobMails === null) loadJobMails(); // its e-mail setting could not be loaded before
}

function isMailSettingsOpen() {
  return ui.mailToggle.getAttribute('aria-expanded') === 'true';
}

/** The wide screens' box of e-mail settings, under the bar (narrow screens show them in the account menu). */
function setMailSettings(open) {
  ui.mailToggle.setAttribute('aria-expanded', String(open));
  ui.userArea.classList.toggle('is-mail-open', open);
  if (open && state.jobMails === null) loadJobMails();
}

async function init() {
  collectElements();
  wireEvents();
  restoreOptions();
  showOptions();
  // The mailed links land here: /#reset=<token> (set a new password), /#verified and /#verify-failed=<why>,
  // /#job=<id> (a job's page: shown once signed in, see revealLinkedJob), and /#unsubscribe=<token> or
  // /#unsubscribe-failed (a question, signed in or not).
  const jobLink = takeJobLink();
  const unsubscribeLink = takeUnsubscribeLink();
  const link = takeAccountLink();
  const saved = loadSession() || (link ? null : await resumeRememberedSession());
  if (saved && !link) {
    startSession(saved);
  } else {
    setAuthMode(link?.mode || 'signin');
    ui.authView.hidden = false;
    if (link?.notice) setAuthNotice(link.notice);
    else if (jobLink) setAuthNotice('Sign in to see the file from your e-mail.');
    if (link?.error) setAuthError(link.error);
    (link?.mode === 'reset' ? ui.resetPassword : ui.signinEmail).focus();
  }
  if (unsubscribeLink) showUnsubscribe();
}

init();
