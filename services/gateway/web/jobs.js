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
