// Part of the mp3converter web page (index.html loads common.js, session.js, jobs.js and app.js in this order, as
// classic scripts sharing one global scope; only app.js runs anything when loaded).

'use strict';

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
  ui.userEmail.title = session.email; // cut short with an ellipsis when the bar is narrow
  ui.accountInitial.textContent = (session.email.trim()[0] || '?').toUpperCase();
  ui.accountToggleText.textContent = `Account: ${session.email}`;
  setAccountMenu(false);
  resetJobMails();
  loadJobMails();
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
  ui.uploadTitle.focus();
  // A mailed job link (#job=) that waited for the sign-in is shown once the list is there.
  refreshJobs().then(revealLinkedJob);
}

/** "2 uploads were stopped: a.mp4, b.mkv." */
function lostUploadsText(uploads) {
  const names = uploads.map((u) => u.file.name);
  const listed = names.length > 5 ? `${names.slice(0, 4).join(', ')} and ${names.length - 4} more` : names.join(', ');
  return `${names.length === 1 ? '1 upload was' : `${names.length} uploads were`} stopped: ${listed}.`;
}

function signOutQuestion(pending) {
  const names = pending.map((u) => `"${u.file.name}"`).join(', ');
  return pending.length === 1
    ? `${names} is still uploading. Sign out anyway? Its upload stops and is lost.`
    : `${pending.length} files are still uploading: ${names}. Sign out anyway? Their uploads stop and are lost.`;
}

/**
 * Sign-out ends the token at the server too (it stops working everywhere within seconds), not only in this tab. With
 * uploads in flight it asks first, since they would be lost.
 */
function signOut() {
  const pending = uploadsInFlight();
  if (pending.length > 0 && !window.confirm(signOutQuestion(pending))) return;
  const token = state.session?.token;
  state.linkedJobId = null; // a job link waits through an expired session's sign-in, not past a sign-out
  endSession('');
  if (token) {
    // keepalive: the request is sent even if the page is closed right after.
    fetch('/logout', { method: 'POST', headers: { Authorization: `Bearer ${token}` }, keepalive: true })
      .catch(() => {}); // the token then ends when it expires, as before
  }
  // Signing out also forgets "Keep me signed in" on this device.
  fetch('/session', { method: 'DELETE', keepalive: true }).catch(() => {});
}

/**
 * Sign out (message empty) or end an expired session (message shown on the sign-in form). Uploads in flight are
 * stopped, and the sign-in form says which.
 */
function endSession(message) {
  if (!state.session) return;
  const lost = uploadsInFlight();
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
  updateLeaveGuard();
  // A detached <audio> keeps playing, so stop players before dropping the rows.
  for (const audio of ui.jobsList.querySelectorAll('audio')) audio.pause();
  state.jobs.clear();
  state.selected.clear();
  ui.jobsList.replaceChildren();
  updateSelectionControls();
  ui.uploadList.replaceChildren();
  ui.jobsNotice.textContent = '';
  showAppError('');

  ui.userEmail.textContent = '';
  setAccountMenu(false);
  resetJobMails();
  ui.userArea.hidden = true;
  ui.appView.hidden = true;
  ui.authView.hidden = false;
  setAuthMode('signin');
  const lostText = lost.length > 0 ? lostUploadsText(lost) : '';
  if (message) setAuthError(lostText ? `${message} ${lostText}` : message);
  else if (lostText) setAuthNotice(`You are signed out. ${lostText}`);
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
  if (text) ui.authNotice.textContent = '';
}

function setAuthNotice(text) {
  ui.authNotice.textContent = text;
  if (text) ui.authError.textContent = '';
}

const AUTH_TITLES = {
  signin: 'Sign in', register: 'Create an account', forgot: 'Forgotten password', reset: 'Choose a new password',
};

/** Shows one of the forms: signin, register, forgot (ask for a reset link) or reset (the link's new password). */
function setAuthMode(mode) {
  state.authMode = mode;
  ui.signinForm.hidden = mode !== 'signin';
  ui.registerForm.hidden = mode !== 'register';
  ui.forgotForm.hidden = mode !== 'forgot';
  ui.resetForm.hidden = mode !== 'reset';
  ui.authTitle.textContent = AUTH_TITLES[mode];
  ui.registerToggle.textContent = mode === 'signin' ? 'Create an account' : 'Back to sign in';
  ui.registerToggle.setAttribute('aria-expanded', String(mode === 'register'));
  ui.resendArea.hidden = true;
  setAuthError('');
  setAuthNotice('');
}

const LINK_FAILURES = {
  link_used: 'This activation link was used already. If it was you, your account is active: sign in.',
  link_expired: 'This activation link has expired. Sign in to ask for a new one.',
  invalid_link: 'This activation link is not valid. Copy the whole link from the mail, or sign in to ask for a new one.',
};

/** Reads (and removes from the address bar) what a mailed link brought: { mode, notice, error, resetToken }. */
function takeAccountLink() {
  const hash = location.hash;
  let link = null;
  if (hash.startsWith('#reset=')) {
    state.resetToken = hash.slice('#reset='.length);
    link = { mode: 'reset' };
  } else if (hash === '#verified') {
    link = { mode: 'signin', notice: 'Your e-mail address is confirmed and your account is active. Sign in.' };
  } else if (hash.startsWith('#verify-failed=')) {
    const why = hash.slice('#verify-failed='.length);
    link = { mode: 'signin', error: LINK_FAILURES[why] || 'The account could not be activated right now; try the link again later.' };
  }
  // The token must not stay in the address bar, the history or a bookmark.
  if (link) history.replaceState(null, '', location.pathname + location.search);
  return link;
}

function loginErrorText(response, body) {
  switch (response.status) {
    case 401: return 'Wrong e-mail address or password.';
    case 403:
      if (body?.error === 'email_not_verified') {
        return 'Your account is not active yet: follow the link in the mail we sent you when you signed up.';
      }
      return sentence(body?.message) || 'Signing in is not allowed.';
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
  if (!response.ok || typeof body?.token !== 'string') {
    const error = new UserError(loginErrorText(response, body));
    if (body?.error === 'email_not_verified') {
      state.unverifiedEmail = email;
      error.afterShown = () => { ui.resendArea.hidden = false; };
    }
    throw error;
  }
  if (ui.signinRemember?.checked) {
    // "Keep me signed in": the server sets an HttpOnly cookie for /session only; the token stays in this tab.
    await fetch('/session/remember', { method: 'POST', headers: { Authorization: `Bearer ${body.token}` } })
      .catch(() => {}); // not remembered: the sign-in itself worked
  }
  startSession(sessionFromTokenAnswer(body, email));
}

function sessionFromTokenAnswer(body, email) {
  const expiresAt = body.expires_at || new Date(Date.now() + (body.expires_in || 0) * 1000).toISOString();
  return { token: body.token, email: emailFromToken(body.token) || email, expires_at: expiresAt };
}

/**
 * A new tab or a restarted browser: the remembered session's cookie (if "Keep me signed in" was ticked) is traded
 * for a fresh token. Null when there is none, it was ended, or the server cannot be asked.
 */
async function resumeRememberedSession() {
  try {
    const response = await fetch('/session', { method: 'POST', headers: { Accept: 'application/json' }, cache: 'no-store' });
    const body = await readJson(response);
    if (!response.ok || typeof body?.token !== 'string') return null;
    return sessionFromTokenAnswer(body, '');
  } catch {
    return null;
  }
}

function registerErrorText(response, body) {
  switch (response.status) {
    case 404: return 'Creating accounts is turned off on this server. Ask its administrator for an account.';
    case 503: return unavailableText(response, 'Creating accounts');
    default: return sentence(body?.message) || `Creating the account failed (HTTP ${response.status}).`;
  }
}

/** POST of a small JSON body to an account endpoint (no session). */
function postAccount(path, body) {
  return fetch(path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify(body),
    cache: 'no-store',
  });
}

/** Asks for the account; the server mails the link that activates it (the same answer for a taken address). */
async function register(email, password) {
  const response = await postAccount('/register', { email, password });
  if (response.status !== 202) throw new UserError(registerErrorText(response, await readJson(response)));
  setAuthMode('signin');
  ui.signinEmail.value = email;
  setAuthNotice(`Check your e-mail: we sent a link to ${email} that activates the account. ` +
    'Follow it, then sign in here.');
}

async function resendVerification() {
  const email = state.unverifiedEmail || ui.signinEmail.value.trim();
  const response = await postAccount('/verify/resend', { email }).catch(() => null);
  ui.resendArea.hidden = true;
  if (response?.status === 202) setAuthNotice(`A new activation link is on its way to ${email}.`);
  else setAuthError('The link could not be sent right now; try again later.');
}

async function requestPasswordReset(email) {
  const response = await postAccount('/password-reset', { email });
  if (response.status !== 202) {
    const body = await readJson(response);
    throw new UserError(response.status === 503 ? unavailableText(response, 'Password reset')
      : sentence(body?.message) || `The link could not be sent (HTTP ${response.status}).`);
  }
  setAuthMode('signin');
  ui.signinEmail.value = email;
  setAuthNotice(`If ${email} has an account, a mail with a link to set a new password is on its way to it. ` +
    'The link works once, for a short while.');
}

const RESET_FAILURES = {
  link_used: 'This link was used already. Ask for a new one with "Forgot your password?".',
  link_expired: 'This link has expired. Ask for a new one with "Forgot your password?".',
  invalid_link: 'This link is not valid. Copy the whole link from the mail, or ask for a new one.',
};

/** Sets the new password with the mailed link's token, then signs in with it. */
async function confirmPasswordReset(password) {
  const response = await postAccount('/password-reset/confirm', { token: state.resetToken || '', new_password: password });
  const body = await readJson(response);
  if (response.status !== 200) {
    throw new UserError(RESET_FAILURES[body?.error] || sentence(body?.message) ||
      `The password could not be changed (HTTP ${response.status}).`);
  }
  state.resetToken = null;
  await signIn(body.email, password);
}

/** Shared submit handling for both forms: busy button, errors in the alert. */
async function submitAuthForm(form, action) {
  const submit = form.querySelector('button[type="submit"]');
  const email = form.elements.email?.value.trim() ?? '';
  const password = form.elements.password?.value ?? '';
  submit.disabled = true;
  submit.setAttribute('aria-busy', 'true');
  setAuthError('');
  try {
    await action(email, password);
  } catch (err) {
    setAuthError(err instanceof UserError ? err.message : 'Cannot reach the server. Check your connection and try again.');
    err.afterShown?.();
  } finally {
    submit.disabled = false;
    submit.removeAttribute('aria-busy');
  }
}

// ---------------------------------------------------------------------------------------------------- job e-mails

function isJobMails(value) {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(JOB_MAILS_SAVED, value);
}

/** kind: 'ok' (saved), 'error' (in the error colour) or 'info'. */
function setJobMailsStatus(text, kind = 'info') {
  ui.jobMailsStatus.textContent = text;
  ui.jobMailsStatus.dataset.kind = kind;
}

/** Back to "not known" (at sign-in and sign-out): the select stays disabled until the account's choice is loaded. */
function resetJobMails() {
  state.jobMails = null;
  state.jobMailsLoading = false;
  state.jobMailsSaving = false;
  ui.jobMails.value = 'each';
  ui.jobMails.disabled = true;
  ui.jobMails.removeAttribute('aria-busy');
  setJobMailsStatus('');
  setMailSettings(false);
}

function showJobMails(value) {
  state.jobMails = value;
  ui.jobMails.value = value;
  ui.jobMails.disabled = false;
  setJobMailsStatus(''); // a "Saved" from before may no longer be true (an unsubscribe link, another tab)
}

/**
 * The account's choice (GET /account/preferences), into the select. A failure leaves it disabled; opening the
 * settings again retries.
 */
async function loadJobMails() {
  if (!state.session || state.jobMailsLoading) return;
  const epoch = state.epoch;
  state.jobMailsLoading = true;
  try {
    const response = await api('/account/preferences');
    const body = await readJson(response);
    if (epoch !== state.epoch || state.jobMailsSaving) return; // the answer to the save wins
    if (response.ok && isJobMails(body?.job_mails)) {
      showJobMails(body.job_mails);
    } else {
      setJobMailsStatus(`Your e-mail setting cannot be shown (${actionErrorText(response, body, 'an error')}).`,
        'error');
    }
  } catch (err) {
    if (!(err instanceof SessionExpiredError) && err.name !== 'AbortError' && epoch === state.epoch) {
      setJobMailsStatus('Your e-mail setting cannot be shown: cannot reach the server.', 'error');
    }
  } finally {
    if (epoch === state.epoch) state.jobMailsLoading = false;
  }
}

/** Saves the select's new choice (PATCH /account/preferences); a refused one puts the previous choice back. */
async function saveJobMails() {
  const value = ui.jobMails.value;
  const previous = state.jobMails;
  if (!state.session || previous === null || value === previous) return;
  const epoch = state.epoch;
  // Disabling the focused select drops the focus; keyboard users get it back afterwards.
  const hadFocus = document.activeElement === ui.jobMails;
  state.jobMailsSaving = true;
  ui.jobMails.disabled = true;
  ui.jobMails.setAttribute('aria-busy', 'true');
  setJobMailsStatus('Saving…');
  try {
    const response = await api('/account/preferences', {
      method: 'PATCH', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ job_mails: value }),
    });
    const body = await readJson(response);
    if (epoch !== state.epoch) return;
    if (response.ok && isJobMails(body?.job_mails)) {
      state.jobMails = body.job_mails;
      ui.jobMails.value = body.job_mails;
      setJobMailsStatus(JOB_MAILS_SAVED[body.job_mails], 'ok');
    } else {
      ui.jobMails.value = previous;
      setJobMailsStatus(actionErrorText(response, body, 'The setting was not saved'), 'error');
    }
  } catch (err) {
    if (err instanceof SessionExpiredError || epoch !== state.epoch) return;
    ui.jobMails.value = previous;
    setJobMailsStatus('Cannot reach the server; the setting was not changed.', 'error');
  } finally {
    if (epoch === state.epoch) {
      state.jobMailsSaving = false;
      ui.jobMails.disabled = false;
      ui.jobMails.removeAttribute('aria-busy');
      if (hadFocus && (document.activeElement === document.body || !document.activeElement)) ui.jobMails.focus();
    }
  }
}

// ---------------------------------------------------------------------------------------------------- unsubscribe

/** The token of an unsubscribe link's address, or '' when it cannot be one. */
function unsubscribeTokenOf(text) {
  let token = '';
  try {
    token = decodeURIComponent(text);
  } catch {
    return '';
  }
  return UNSUBSCRIBE_TOKEN_PATTERN.test(token) ? token : '';
}

/**
 * Reads (and removes from the address bar) a mailed unsubscribe link: /#unsubscribe=<token>, or /#unsubscribe-failed
 * when the gateway found the link malformed. Nothing changes until the question is answered: link scanners open
 * mailed links too. True when there was one.
 */
function takeUnsubscribeLink() {
  const hash = location.hash;
  if (hash.startsWith('#unsubscribe=')) state.unsubscribeToken = unsubscribeTokenOf(hash.slice('#unsubscribe='.length));
  else if (hash === '#unsubscribe-failed') state.unsubscribeToken = '';
  else return false;
  // Like the other links' tokens, it must not stay in the address bar, the history or a bookmark (nor come back with
  // a reload).
  history.replaceState(null, '', location.pathname + location.search);
  return true;
}

/**
 * The panel's stages: ask (the question), busy (asked the server), retry (the question again, after an error that
 * may pass), done and failed (an outcome, and Close).
 */
function setUnsubscribeStage(stage, text = '') {
  const asking = stage === 'ask' || stage === 'busy' || stage === 'retry';
  ui.unsubscribePanel.dataset.stage = stage;
  ui.unsubscribeTitle.textContent = asking ? 'Stop the e-mails about your files?' : 'E-mails about your files';
  ui.unsubscribeQuestion.hidden = !asking;
  ui.unsubscribeConfirm.hidden = !asking;
  ui.unsubscribeConfirm.disabled = stage === 'busy';
  ui.unsubscribeDismiss.disabled = stage === 'busy';
  if (stage === 'busy') ui.unsubscribeConfirm.setAttribute('aria-busy', 'true');
  else ui.unsubscribeConfirm.removeAttribute('aria-busy');
  ui.unsubscribeDismiss.textContent = asking ? 'Keep them' : 'Close';
  ui.unsubscribeResult.textContent = text;
  ui.unsubscribeResult.dataset.kind = stage === 'done' ? 'ok' : 'error';
}

/** Shows the question of the link taken by takeUnsubscribeLink (or that it is not valid), signed in or not. */
function showUnsubscribe() {
  ui.unsubscribePanel.hidden = false;
  if (state.unsubscribeToken) setUnsubscribeStage('ask');
  else setUnsubscribeStage('failed', INVALID_UNSUBSCRIBE_TEXT);
  ui.unsubscribeTitle.focus();
}

function dismissUnsubscribe() {
  state.unsubscribeToken = null;
  ui.unsubscribePanel.hidden = true;
  (state.session ? ui.uploadTitle : ui.authTitle).focus();
}

function unsubscribeErrorText(response, body) {
  if (response.status === 403) return INVALID_UNSUBSCRIBE_TEXT;
  return sentence(body?.message) || `The e-mails could not be stopped (HTTP ${response.status}).`;
}

/** "Stop these e-mails": POST /unsubscribe with the link's token (no sign-in needed: the token says whose). */
async function confirmUnsubscribe() {
  const token = state.unsubscribeToken;
  if (!token) return;
  const hadFocus = document.activeElement === ui.unsubscribeConfirm;
  setUnsubscribeStage('busy');
  let response;
  let body;
  try {
    response = await fetch(`/unsubscribe?token=${encodeURIComponent(token)}`, {
      method: 'POST', headers: { Accept: 'application/json' }, cache: 'no-store',
    });
    body = await readJson(response);
  } catch {
    response = null;
  }
  if (state.unsubscribeToken !== token) return; // dismissed, or another link came meanwhile
  if (!response) {
    setUnsubscribeStage('retry', 'Cannot reach the server. Check your connection and try again.');
  } else if (response.ok) {
    state.unsubscribeToken = null;
    setUnsubscribeStage('done', UNSUBSCRIBED_TEXT);
    // Signed in: the select shows what the account now has (None, unless the link was another account's).
    if (state.session) loadJobMails();
  } else if (response.status === 503) {
    setUnsubscribeStage('retry', unavailableText(response, 'Stopping the e-mails'));
  } else {
    state.unsubscribeToken = null;
    setUnsubscribeStage('failed', unsubscribeErrorText(response, body));
  }
  if (hadFocus) (ui.unsubscribeConfirm.hidden ? ui.unsubscribeTitle : ui.unsubscribeConfirm).focus();
}
