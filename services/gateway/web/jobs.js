// Part of the mp3converter web page (index.html loads common.js, session.js, jobs.js and app.js in this order, as
// classic scripts sharing one global scope; only app.js runs anything when loaded).

'use strict';

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
    // Rows added while this request ran (a finished upload) may simply be too new to be listed, and a job opened
    // from a mailed link (pinned) may be older than the first page.
    for (const [id, entry] of state.jobs) {
      if (!listed.has(id) && entry.addedAt < startedAt && !entry.pinned) removeJob(id);
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

/** Whether `a` was written after `b` (ISO times in one format compare as strings); false when either is unknown. */
function isLaterRecord(a, b) {
  return typeof a.updated_at === 'string' && typeof b.updated_at === 'string' && a.updated_at > b.updated_at;
}

/**
 * A failure that a retry ended, answered late by a poll or a stream, is not the outcome of the retry: it is the
 * failure seen before the retry (`from`), or older than the record of the retry (`at`).
 */
function isStaleFailure(entry, incoming) {
  const { retry } = entry;
  const at = incoming.updated_at;
  if (!retry || incoming.status !== 'failed' || typeof at !== 'string') return false;
  return (typeof retry.from === 'string' && at <= retry.from) || (typeof retry.at === 'string' && at < retry.at);
}

/**
 * Add a job or merge newer data into it. Stale data (from a poll or stream that lags behind) never moves a job back;
 * the one way back is a retry: a failed job queued again, which a newer record (later updated_at) shows.
 */
function upsertJob(incoming) {
  if (!incoming || typeof incoming.job_id !== 'string' || !(incoming.status in STATUS_RANK)) return;
  if (state.deleted.has(incoming.job_id)) return;
  const entry = state.jobs.get(incoming.job_id);
  if (!entry) {
    addJobRow(incoming);
    return;
  }
  const current = entry.job;
  if (isStaleFailure(entry, incoming)) return;
  const restarted = current.status === 'failed' && (incoming.status === 'queued' || incoming.status === 'processing')
    && isLaterRecord(incoming, current);
  if (restarted) {
    entry.retry = { from: current.updated_at, at: incoming.updated_at }; // retried elsewhere (a tab, the mp3conv client)
  } else {
    if (STATUS_RANK[incoming.status] < STATUS_RANK[current.status]) return;
    // A final job stays as it is, until the sweeper deletes what it kept.
    if (FINAL_STATUSES.has(current.status) && incoming.status !== current.status && incoming.status !== 'expired') return;
  }
  const merged = { ...current, ...incoming };
  if (!restarted && merged.status === current.status && !(merged.progress >= current.progress)) {
    merged.progress = current.progress;
  }
  entry.job = merged;
  renderJob(entry);
  if (merged.status !== current.status) {
    announce(merged.status === 'failed' ? `${merged.filename}: ${failureText(merged)}`
      : `${merged.filename}: ${STATUS_LABELS[merged.status].toLowerCase()}`);
  }
}

/** A new row, newest first; atTop: first whatever its age (a job opened from a mailed link). */
function addJobRow(job, { atTop = false } = {}) {
  const { root, refs } = instantiate(ui.jobTemplate);
  const entry = { job, row: root, refs, addedAt: performance.now(), pinned: atTop };
  state.jobs.set(job.job_id, entry);
  renderJob(entry);
  // Newest first: before the first row created earlier. ISO times in one format compare as strings.
  const later = atTop ? ui.jobsList.firstElementChild : [...ui.jobsList.children].find((row) => {
    const other = state.jobs.get(row.dataset.jobId);
    return other && other.job.created_at < job.created_at;
  });
  ui.jobsList.insertBefore(root, later || null);
  updateEmptyState();
  updateSelectionControls();
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
  state.selected.delete(id);
  if (hadFocus) ui.jobsTitle.focus();
  updateEmptyState();
  updateSelectionControls();
}

function updateEmptyState() {
  const empty = state.jobs.size === 0;
  ui.jobsEmpty.hidden = !empty;
  ui.jobsHead.hidden = empty;
}

const REUSED_TEXT = 'Done at once: same file and settings as an earlier upload';

/** "Conversion failed: <the converter's reason>." */
function failureText(job) {
  const reason = String(job.error || '').trim();
  if (!reason) return 'Conversion failed.';
  return `Conversion failed: ${/[.!?]$/.test(reason) ? reason : `${reason}.`}`;
}

/** When the job's stored files go (expires_at), or that they are gone: '' when there is nothing to say. */
function expiryText(job) {
  if (job.status === 'expired') {
    return job.error ? 'The upload is no longer kept.' : 'The MP3 is no longer kept: it was deleted after its retention time.';
  }
  const until = formatDateTime(job.expires_at);
  if (!until) return '';
  return job.status === 'failed' ? `Upload kept for a retry until ${until}` : `Kept until ${until}`;
}

/**
 * The size column: the MP3's for a job that made one ("MP3 size"), the upload's otherwise, muted and labelled as such
 * ("Upload size"), with a title that says why.
 */
function renderSize(job, refs) {
  const madeMp3 = (job.status === 'done' || job.status === 'expired') && typeof job.mp3_size === 'number';
  const isUpload = !madeMp3 && job.status !== 'done';
  refs.sizeLabel.textContent = isUpload ? 'Upload size' : 'MP3 size';
  refs.sizeKind.textContent = isUpload ? 'Upload' : 'MP3';
  refs.size.textContent = formatBytes(madeMp3 ? job.mp3_size : isUpload ? job.size : NaN);
  refs.size.classList.toggle('is-muted', isUpload || job.status === 'expired');
  refs.size.dataset.kind = madeMp3 ? 'mp3' : isUpload ? 'upload' : 'unknown';
  let title = '';
  if (isUpload) title = 'The size of the upload: there is no MP3 (yet)';
  else if (job.status === 'expired') title = 'The size the MP3 had: it is no longer kept';
  refs.size.title = title;
  refs.sizeKind.title = title;
}

/** The upload row of a job, while it is still shown, follows its conversion to the end. */
function renderUploadRow(job) {
  const row = document.querySelector(`[data-testid="upload-row"][data-job-id="${CSS.escape(job.job_id)}"]`);
  if (!row || row.dataset.state !== 'done') return;
  let result;
  let text;
  switch (job.status) {
    case 'queued':
    case 'processing':
      [result, text] = ['converting', 'Uploaded; converting.'];
      break;
    case 'done':
      [result, text] = ['converted', job.reused_from ? `${REUSED_TEXT}.` : 'Uploaded and converted.'];
      break;
    case 'failed':
      [result, text] = ['conversion-failed', failureText(job)];
      break;
    case 'cancelled':
      [result, text] = ['cancelled', 'Conversion cancelled.'];
      break;
    default:
      return; // expired: the last word stays
  }
  row.dataset.result = result;
  row.querySelector('[data-ref="status"]').textContent = text;
  setStatusIcon(row.querySelector('[data-ref="icon"]'),
    result === 'conversion-failed' ? 'error' : result === 'converted' ? 'ok' : 'none');
}

/** The Play button says Pause while the job's MP3 plays. */
function renderPlayButton(entry) {
  const { refs } = entry;
  const verb = entry.playing ? 'Pause' : 'Play';
  refs.playText.textContent = verb;
  refs.play.dataset.playing = String(Boolean(entry.playing));
  refs.play.setAttribute('aria-label', `${verb} ${mp3FileName(entry.job.filename)}`);
}

/** Show a job's current state in its row. Only texts and attributes change, so focus and the player survive. */
function renderJob(entry) {
  const { job, row, refs } = entry;
  const { status } = job;
  const progress = status === 'done' ? 100 : Math.min(100, Math.max(0, Number(job.progress) || 0));
  row.dataset.jobId = job.job_id;
  row.dataset.status = status;

  refs.name.textContent = job.filename;
  refs.name.title = job.filename; // cut short on narrow screens
  renderSize(job, refs);
  refs.settings.textContent = describeJobOptions(job.options);
  refs.created.dateTime = job.created_at || '';
  refs.created.textContent = formatDateTime(job.created_at);
  refs.status.textContent = STATUS_LABELS[status];
  setStatusIcon(refs.icon, status === 'failed' ? 'error' : status === 'done' ? 'ok' : 'none');
  refs.progress.value = progress;
  refs.progress.setAttribute('aria-label', `Conversion of ${job.filename}`);
  refs.percent.textContent = `${progress} %`;
  refs.meter.hidden = status !== 'queued' && status !== 'processing';
  const hasDuration = (status === 'done' || status === 'expired') && Number.isFinite(job.duration_seconds);
  refs.duration.textContent = hasDuration ? formatDuration(job.duration_seconds) : '—';
  refs.durationCell.classList.toggle('is-empty', !hasDuration);

  // An expired job keeps the reason it failed for, if it did.
  const failure = status === 'failed' || (status === 'expired' && Boolean(job.error));
  refs.error.textContent = failure ? failureText(job) : status === 'cancelled' ? sentence(job.error) : '';
  refs.error.hidden = !refs.error.textContent;
  refs.reused.hidden = !(status === 'done' && job.reused_from);
  refs.reused.textContent = refs.reused.hidden ? '' : `${REUSED_TEXT}.`;
  refs.expires.textContent = expiryText(job);
  refs.expires.hidden = !refs.expires.textContent;
  renderParts(entry);
  refs.details.classList.toggle('is-empty', refs.meter.hidden && refs.error.hidden && refs.reused.hidden
    && refs.expires.hidden && refs.parts.hidden);

  refs.play.hidden = status !== 'done';
  refs.download.hidden = status !== 'done';
  if (status !== 'done') entry.playing = false;
  renderPlayButton(entry);
  refs.download.setAttribute('aria-label', `Download ${mp3FileName(job.filename)}`);
  refs.retry.hidden = !(status === 'failed' && job.retryable === true);
  refs.retry.setAttribute('aria-label', `Retry ${job.filename} with the same settings`);

  // Only done jobs can go into a ZIP; the box keeps its place on the others so the names line up.
  const selectable = status === 'done';
  if (!selectable) state.selected.delete(job.job_id);
  refs.selectLabel.classList.toggle('is-unavailable', !selectable);
  refs.select.disabled = !selectable;
  refs.select.checked = selectable && state.selected.has(job.job_id);
  refs.selectText.textContent = `Select ${mp3FileName(job.filename)} for the ZIP download`;
  // DELETE cancels a queued or converting job (it stays listed as cancelled; the converter stops within seconds) and
  // deletes a finished one.
  const cancels = status === 'queued' || status === 'processing';
  refs.delText.textContent = cancels ? 'Cancel' : 'Delete';
  refs.del.setAttribute('aria-label', `${refs.delText.textContent} ${job.filename}`);
  refs.del.disabled = false;
  refs.del.title = '';

  renderUploadRow(job);
  updateSelectionControls();
}

/**
 * A split job's parts (chapters=split) under its status: "12 parts, one per chapter", each a button that downloads
 * it. Rebuilt only when the parts change, so an open list stays open while the row is redrawn.
 */
function renderParts(entry) {
  const { job, refs } = entry;
  const parts = job.status === 'done' && Array.isArray(job.parts) ? job.parts : [];
  const key = parts.map((p) => `${p.index}:${p.size}`).join(',');
  refs.parts.hidden = parts.length === 0;
  if (entry.partsKey === key) return;
  entry.partsKey = key;
  refs.partsSummary.textContent = `${parts.length} ${parts.length === 1 ? 'part' : 'parts'}, one per chapter`;
  refs.partsList.replaceChildren(...parts.map((part) => {
    const item = document.createElement('li');
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'btn-link';
    button.dataset.action = 'part';
    button.dataset.part = String(part.index);
    button.dataset.testid = 'job-part';
    button.textContent = String(part.title); // the chapter's title: the source's words, text only
    button.setAttribute('aria-label', `Download part ${part.index}: ${part.title}`);
    const facts = document.createElement('span');
    facts.className = 'job-note';
    facts.textContent = ` ${formatDuration(Number(part.duration_seconds))}, ${formatBytes(Number(part.size))}`;
    item.append(button, facts);
    return item;
  }));
}

/** One part of a split job: fetched with the token (parts have no signed links) and saved under its name. */
async function downloadPart(entry, button) {
  const index = Number(button.dataset.part);
  const part = (entry.job.parts || []).find((p) => p.index === index);
  const response = await api(`/jobs/${entry.job.job_id}/parts/${index}`);
  if (!response.ok) {
    const body = await readJson(response);
    if (response.status === 404 || response.status === 410) refreshJobs();
    throw new UserError(actionErrorText(response, body, 'Could not download the part'));
  }
  const fallback = part?.filename || `part ${index}.mp3`;
  saveBlob(await response.blob(), attachmentFileName(response.headers.get('Content-Disposition'), fallback));
}

/** All parts of a split job as one ZIP (GET /jobs.zip holds a split job's parts). */
async function downloadParts(entry) {
  const response = await api(`/jobs.zip?ids=${entry.job.job_id}`, { headers: { Accept: 'application/zip, application/json' } });
  if (!response.ok) {
    const body = await readJson(response);
    throw new UserError(actionErrorText(response, body, 'Could not download the parts'));
  }
  const name = attachmentFileName(response.headers.get('Content-Disposition'), 'parts.zip');
  saveBlob(await response.blob(), name);
  announce(`${entry.job.parts.length} parts saved as ${name}`);
}

/** One look at one job (GET /jobs/{id}), merged into the list: for a job no event stream follows. */
async function loadJob(id) {
  const epoch = state.epoch;
  try {
    const response = await api(`/jobs/${id}`);
    const body = await readJson(response);
    if (epoch === state.epoch && response.ok && body?.job_id === id) upsertJob(body);
  } catch {
    // The poll brings it later.
  }
}

// ---------------------------------------------------------------------------------------------------- live events

/**
 * A Server-Sent Events parser (EventSource cannot send an Authorization header, so the stream is read with fetch).
 * Lines end with \r\n, \n or \r; a blank line dispatches the event; data lines are joined with \n; comments
 * (": keep-alive") are ignored.
 */
function createSseParser(onEvent, onRetry, onId = () => {}) {
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
    else if (field === 'id' && !value.includes('\0')) onId(value);
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

async function readEventStream(body, onEvent, onRetry, onId) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const push = createSseParser(onEvent, onRetry, onId);
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

/**
 * Follow one job until it is final; reconnect when the stream ends early (its lifetime on the gateway, a restart, the
 * network), from the last event seen (Last-Event-ID), as EventSource would.
 */
async function runEventStream(id, signal) {
  let delay = RECONNECT_MS;
  let lastEventId = '';
  while (!signal.aborted && isOpenJob(id)) {
    try {
      const headers = { Accept: 'text/event-stream' };
      if (lastEventId) headers['Last-Event-ID'] = lastEventId;
      const response = await api(`/jobs/${id}/events`, { signal, headers });
      if (response.status === 404) {
        removeJob(id); // deleted elsewhere
        return;
      }
      if (response.ok && response.body) {
        delay = RECONNECT_MS;
        await readEventStream(response.body, (event) => handleStatusEvent(id, event), (ms) => { delay = ms; },
          (eventId) => { lastEventId = eventId; });
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
  if (response.status === 410) {
    refreshJobs(); // shows it expired
    throw new UserError('This MP3 is no longer kept: it was deleted after its retention time.');
  }
  throw new UserError(actionErrorText(response, body, 'Could not get a link to the MP3'));
}

function setPlaying(entry, playing) {
  if (entry.playing === playing) return;
  entry.playing = playing;
  renderPlayButton(entry);
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
    setPlaying(entry, false);
  }
}

/**
 * Play toggles: the first press fetches a signed link and plays, the next pauses (the button says Pause meanwhile),
 * the next goes on from there; at the end it says Play again. A player that failed (an expired link) is replaced.
 */
async function playJob(entry) {
  const container = entry.refs.player;
  const current = container.querySelector('audio');
  // Not awaited: play() settles only once the sound starts, and the button must answer a Pause before that.
  if (current && !current.error) {
    if (!current.paused && !current.ended) {
      current.pause();
    } else {
      closePlayers(entry.job.job_id);
      current.play().catch(() => {}); // a failure shows on the player (error), and the next press gets a new link
    }
    return;
  }
  const url = await signedLink(entry.job.job_id);
  closePlayers(entry.job.job_id);
  container.replaceChildren();
  const audio = document.createElement('audio');
  audio.controls = true;
  audio.preload = 'auto';
  audio.dataset.testid = 'player';
  audio.setAttribute('aria-label', `Player: ${mp3FileName(entry.job.filename)}`);
  // The button follows the player, also when its own controls are used; a replaced player no longer counts.
  const follow = () => {
    if (container.contains(audio)) setPlaying(entry, !audio.paused && !audio.ended);
  };
  for (const type of ['play', 'pause', 'ended', 'emptied']) audio.addEventListener(type, follow);
  // Seeking later makes new range requests with the same link, which fails once it has expired.
  audio.addEventListener('error', () => {
    follow();
    if (container.querySelector('.player-note')) return;
    const note = document.createElement('p');
    note.className = 'player-note';
    note.textContent = 'Playback stopped (the link may have expired). Press Play again.';
    container.append(note);
  });
  audio.src = url;
  container.append(audio);
  container.hidden = false;
  audio.play().catch(() => {}); // autoplay may be refused: the controls are there
  showWaveform(entry, audio).catch(() => {}); // without it the player is enough
}

/**
 * The job's waveform under its player (the peaks the converter measured while encoding), the part played in the
 * accent colour. A click seeks there; focused, it is a slider: arrows move 5 s, Page Up/Down 30 s, Home/End.
 */
async function showWaveform(entry, audio) {
  const response = await api(`/jobs/${entry.job.job_id}/waveform`);
  if (!response.ok) return; // none for this job (made before waveforms were)
  const body = await readJson(response);
  const peaks = Array.isArray(body?.peaks) ? body.peaks.filter((p) => Number.isFinite(p)) : [];
  const loudest = Math.max(0.001, ...peaks);
  if (!peaks.length || !entry.refs.player.contains(audio)) return; // the player was closed meanwhile
  const canvas = document.createElement('canvas');
  canvas.className = 'waveform';
  canvas.dataset.testid = 'waveform';
  canvas.tabIndex = 0;
  canvas.setAttribute('role', 'slider');
  canvas.setAttribute('aria-label', `Position in ${mp3FileName(entry.job.filename)}`);
  canvas.setAttribute('aria-valuemin', '0');
  const length = () => {
    if (Number.isFinite(audio.duration) && audio.duration > 0) return audio.duration;
    return Number(body.duration_seconds) || peaks.length * Number(body.seconds_per_point) || 1;
  };
  const draw = () => {
    const width = canvas.clientWidth;
    const height = canvas.clientHeight;
    if (!width || !height) return;
    const scale = window.devicePixelRatio || 1;
    canvas.width = Math.round(width * scale);
    canvas.height = Math.round(height * scale);
    const g = canvas.getContext('2d');
    g.setTransform(scale, 0, 0, scale, 0, 0);
    const style = getComputedStyle(canvas);
    const played = audio.currentTime / length();
    // One bar per 3 CSS pixels, each the loudest of the peaks under it, scaled so the loudest reaches the top (a quiet
    // recording is still readable; the API keeps the true levels).
    for (let x = 0; x < width; x += 3) {
      const from = Math.floor((x / width) * peaks.length);
      const to = Math.max(from + 1, Math.floor(((x + 3) / width) * peaks.length));
      let peak = 0;
      for (let i = from; i < to && i < peaks.length; ++i) peak = Math.max(peak, peaks[i]);
      const h = Math.max(1, Math.min(1, peak / loudest) * height);
      g.fillStyle = style.getPropertyValue(x / width < played ? '--accent' : '--wave').trim();
      g.fillRect(x, (height - h) / 2, 2, h);
    }
    canvas.setAttribute('aria-valuemax', String(Math.round(length())));
    canvas.setAttribute('aria-valuenow', String(Math.round(audio.currentTime)));
    canvas.setAttribute('aria-valuetext', `${formatDuration(audio.currentTime)} of ${formatDuration(length())}`);
  };
  const seekTo = (seconds) => {
    audio.currentTime = Math.min(Math.max(seconds, 0), length());
    draw();
  };
  canvas.addEventListener('click', (event) => {
    const box = canvas.getBoundingClientRect();
    seekTo(((event.clientX - box.left) / box.width) * length());
  });
  canvas.addEventListener('keydown', (event) => {
    const steps = { ArrowLeft: -5, ArrowDown: -5, ArrowRight: 5, ArrowUp: 5, PageDown: -30, PageUp: 30 };
    if (event.key === 'Home') seekTo(0);
    else if (event.key === 'End') seekTo(length());
    else if (event.key in steps) seekTo(audio.currentTime + steps[event.key]);
    else return;
    event.preventDefault();
  });
  for (const type of ['timeupdate', 'seeked', 'loadedmetadata']) audio.addEventListener(type, draw);
  new ResizeObserver(draw).observe(canvas);
  audio.after(canvas);
  draw();
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

/** The confirmation of Delete (or Cancel), naming what goes: a done job's MP3, a failed job's kept upload. */
function deleteQuestion(job) {
  const name = `"${job.filename}"`;
  switch (job.status) {
    case 'queued': return `Cancel the conversion of ${name}? It is not converted, and stays listed as cancelled.`;
    case 'processing':
      return `Stop converting ${name}? The conversion stops, its upload is deleted, and it stays listed as cancelled.`;
    case 'done': return `Delete the job ${name} and its MP3? This cannot be undone.`;
    case 'failed':
      return job.video_fid || job.retryable
        ? `Delete the job ${name} and its upload? It can then no longer be retried. This cannot be undone.`
        : `Delete the job ${name}? This cannot be undone.`;
    default: // cancelled, expired: whatever is still kept of them
      return job.video_fid ? `Delete the job ${name} and its upload? This cannot be undone.`
        : `Delete the job ${name}? This cannot be undone.`;
  }
}

async function deleteJob(entry) {
  const { job } = entry;
  if (!window.confirm(deleteQuestion(job))) return;
  const response = await api(`/jobs/${job.job_id}`, { method: 'DELETE' });
  if (response.status === 204 || response.status === 404) {
    state.deleted.add(job.job_id);
    removeJob(job.job_id);
    announce(`${job.filename} deleted`);
    return;
  }
  const body = await readJson(response);
  if (response.status === 200) {
    upsertJob(body); // a queued or converting job is now cancelled and stays listed until deleted
    announce(`${job.filename}: conversion cancelled`);
    return;
  }
  if (response.status === 409) throw new UserError(`"${job.filename}" changed state meanwhile: try again.`);
  throw new UserError(actionErrorText(response, body, 'Could not delete the file'));
}

/**
 * Convert a failed job's kept upload again, with the same settings (an empty body), and follow it like a new upload.
 */
async function retryJob(entry) {
  const { job } = entry;
  const response = await api(`/jobs/${job.job_id}/retry`, { method: 'POST' });
  const body = await readJson(response);
  if (response.status === 202 && body?.job_id === job.job_id) {
    // The answer is the job queued again: it replaces the failure, which a late poll or stream may still bring.
    const hadFocus = document.activeElement === entry.refs.retry;
    entry.retry = { from: job.updated_at, at: body.updated_at };
    entry.job = { ...job, error: null, reason: null, progress: 0, ...body, status: 'queued' };
    renderJob(entry);
    if (hadFocus) { // the button is gone now: keep keyboard users on the row
      entry.row.tabIndex = -1;
      entry.row.focus();
    }
    announce(`${job.filename}: queued again`);
    followOpenJobs();
    return;
  }
  switch (response.status) {
    case 404:
      removeJob(job.job_id);
      throw new UserError(`"${job.filename}" no longer exists.`);
    case 409: // no longer failed: retried elsewhere, or expired
      await refreshJobs();
      throw new UserError(`"${job.filename}" has changed meanwhile; the list is up to date now.`);
    case 410:
      entry.job = { ...job, retryable: false };
      renderJob(entry);
      refreshJobs();
      throw new UserError(`The upload of "${job.filename}" is no longer kept, so it cannot be converted again. ` +
        'Upload the file again.');
    default:
      throw new UserError(actionErrorText(response, body, 'Could not retry the conversion'));
  }
}

const JOB_ACTIONS = {
  play: playJob, download: downloadJob, delete: deleteJob, retry: retryJob, part: downloadPart, partsZip: downloadParts,
};

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
    await action(entry, button);
  } catch (err) {
    if (err instanceof SessionExpiredError || err.name === 'AbortError') return;
    showAppError(err instanceof UserError ? err.message : 'Cannot reach the server. Check your connection and try again.');
  } finally {
    button.removeAttribute('aria-busy');
  }
}

// ---------------------------------------------------------------------------------------------------- selection and ZIP

/** The ticked jobs that are done (the only ones a ZIP takes), in list order. */
function selectedDoneIds() {
  return [...state.jobs.values()]
    .filter((entry) => entry.job.status === 'done' && state.selected.has(entry.job.job_id))
    .map((entry) => entry.job.job_id);
}

/** "Download selected (N)" and the "select all" box follow the ticks. */
function updateSelectionControls() {
  if (!ui.downloadSelected) return;
  const done = [...state.jobs.values()].filter((entry) => entry.job.status === 'done').length;
  const count = selectedDoneIds().length;
  if (!state.zipInFlight) {
    ui.downloadSelected.textContent = `Download selected (${count})`;
    ui.downloadSelected.disabled = count === 0;
  }
  ui.selectAll.disabled = done === 0;
  ui.selectAll.checked = done > 0 && count === done;
  ui.selectAll.indeterminate = count > 0 && count < done;
}

function onJobSelect(event) {
  const box = event.target.closest('input[data-ref="select"]');
  const row = box?.closest('[data-job-id]');
  const entry = row && state.jobs.get(row.dataset.jobId);
  if (!entry) return;
  if (box.checked && entry.job.status === 'done') state.selected.add(entry.job.job_id);
  else state.selected.delete(entry.job.job_id);
  updateSelectionControls();
}

function onSelectAll() {
  const on = ui.selectAll.checked;
  for (const entry of state.jobs.values()) {
    if (on && entry.job.status === 'done') state.selected.add(entry.job.job_id);
    else state.selected.delete(entry.job.job_id);
    entry.refs.select.checked = on && entry.job.status === 'done';
  }
  updateSelectionControls();
}

/** The file name of a Content-Disposition header (filename*=UTF-8''… first, then filename=), made safe, or fallback. */
function attachmentFileName(header, fallback) {
  const text = header || '';
  let name = '';
  const extended = /filename\*\s*=\s*utf-8''([^;\s]+)/i.exec(text);
  if (extended) {
    try {
      name = decodeURIComponent(extended[1]);
    } catch {
      name = '';
    }
  }
  if (!name) {
    const plain = /filename\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]+))/i.exec(text);
    if (plain) name = plain[1] !== undefined ? plain[1].replace(/\\(.)/g, '$1') : plain[2];
  }
  name = name.replace(/[\/\\\u0000-\u001f]/g, '_').trim();
  return name || fallback;
}

/** Save a Blob under a name, through a temporary object URL and <a download>. */
function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
  // Revoked at once, some browsers drop the download; a minute later the browser has its own copy.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/**
 * "Download selected": one ZIP of the ticked MP3s from GET /jobs.zip?ids=…. The request needs the Authorization
 * header, so it cannot be a plain link: the page fetches the whole ZIP into memory (a Blob) and then saves it. A ZIP
 * of many large MP3s takes that much memory for a moment, which is acceptable here; the mp3conv client streams it to
 * disk instead.
 */
async function downloadSelected() {
  const ids = selectedDoneIds();
  if (ids.length === 0) return;
  if (ids.length > MAX_ZIP_JOBS) throw new UserError(`Select at most ${MAX_ZIP_JOBS} files for one ZIP.`);
  const epoch = state.epoch;
  const response = await api(`/jobs.zip?ids=${ids.join(',')}`, { headers: { Accept: 'application/zip, application/json' } });
  if (response.status === 200) {
    const blob = await response.blob();
    if (epoch !== state.epoch) return;
    const name = attachmentFileName(response.headers.get('Content-Disposition'), 'mp3converter.zip');
    saveBlob(blob, name);
    announce(`${ids.length === 1 ? 'One file' : `${ids.length} files`} saved as ${name}`);
    return;
  }
  const body = await readJson(response);
  switch (response.status) {
    case 404:
      refreshJobs();
      throw new UserError('One of the selected files no longer exists; the list is being brought up to date.');
    case 409:
    case 410:
      refreshJobs();
      throw new UserError('One of the selected files can no longer be downloaded; the list is being brought up to date.');
    case 413:
      throw new UserError('Together the selected files are too large for one ZIP: select fewer and download them in parts.');
    default:
      throw new UserError(actionErrorText(response, body, 'Could not download the ZIP'));
  }
}

/** The button is busy (and says so) while the ZIP is fetched; errors go to the page's alert. */
async function onDownloadSelected() {
  if (state.zipInFlight) return;
  showAppError('');
  state.zipInFlight = true;
  ui.downloadSelected.disabled = true;
  ui.downloadSelected.setAttribute('aria-busy', 'true');
  ui.downloadSelected.textContent = 'Preparing the ZIP…';
  try {
    await downloadSelected();
  } catch (err) {
    if (!(err instanceof SessionExpiredError) && err.name !== 'AbortError') {
      showAppError(err instanceof UserError ? err.message : 'Cannot reach the server. Check your connection and try again.');
    }
  } finally {
    state.zipInFlight = false;
    ui.downloadSelected.removeAttribute('aria-busy');
    updateSelectionControls();
  }
}

// ---------------------------------------------------------------------------------------------------- mailed links

/**
 * Takes a mailed link to one job (#job=<id>) from the address bar into state.linkedJobId, where it waits for the
 * sign-in if need be (as #reset= does). Returns whether the hash was such a link.
 */
function takeJobLink() {
  const hash = location.hash;
  if (!hash.startsWith('#job=')) return false;
  const match = JOB_LINK_PATTERN.exec(hash);
  state.linkedJobId = match ? match[1] : null;
  history.replaceState(null, '', location.pathname + location.search);
  return Boolean(match);
}

/**
 * Once signed in: scroll to the linked job's row, focus and highlight it. A job that is not on the list's first page
 * is fetched and shown at the top.
 */
async function revealLinkedJob() {
  const id = state.linkedJobId;
  if (!id || !state.session) return;
  const epoch = state.epoch;
  let entry = state.jobs.get(id);
  if (!entry) {
    let response;
    let body;
    try {
      response = await api(`/jobs/${id}`);
      body = await readJson(response);
    } catch (err) {
      if (!(err instanceof SessionExpiredError) && err.name !== 'AbortError' && epoch === state.epoch) {
        showAppError('The file from the link cannot be shown: cannot reach the server.');
        state.linkedJobId = null;
      }
      return;
    }
    if (epoch !== state.epoch) return;
    state.linkedJobId = null;
    if (response.status === 404) {
      showAppError('The file from the link is not in your list: it was deleted, or it belongs to another account.');
      return;
    }
    if (!response.ok || body?.job_id !== id) {
      showAppError(`The file from the link cannot be shown (${actionErrorText(response, body, 'an error')}).`);
      return;
    }
    if (state.deleted.has(id)) return;
    if (state.jobs.has(id)) upsertJob(body);
    else addJobRow(body, { atTop: true });
    followOpenJobs();
    entry = state.jobs.get(id);
    if (!entry) return;
  }
  state.linkedJobId = null;
  highlightJob(entry);
}

function highlightJob(entry) {
  for (const row of ui.jobsList.querySelectorAll('.is-linked')) {
    row.classList.remove('is-linked');
    row.removeAttribute('aria-current');
  }
  const { row } = entry;
  row.classList.add('is-linked');
  row.setAttribute('aria-current', 'true');
  row.tabIndex = -1; // focusable by script only; Tab still goes through its buttons
  const smooth = window.matchMedia('(prefers-reduced-motion: no-preference)').matches;
  row.scrollIntoView({ block: 'center', behavior: smooth ? 'smooth' : 'auto' });
  row.focus({ preventScroll: true });
}
