/*
 * crmbridge dashboard. Plain JavaScript, no build step: it asks the daemon's /admin/api/ (the admin API's
 * own handlers behind the session cookie) and draws with Debian's Chart.js when the daemon serves it.
 * Everything a customer wrote is put on the page as text (textContent), never as HTML.
 */
'use strict';

const REFRESH_MS = 10000;
const STAGES = {
  new: 'New', contacted: 'Contacted', gathering_info: 'Gathering info', qualified: 'Qualified',
  lead_created: 'Lead created', support: 'Support', human: 'Asked for a person', opted_out: 'Opted out',
};
const REASONS = { human: 'asked for a person', support: 'support', admin: 'by an admin', salesperson: 'a salesperson answers' };

let session = null;      // {csrf, via, created_ms, ttl_s, version, charts}
let selected = null;     // the phone shown in the detail
let charts = {};
let timer = null;
let searchSeq = 0;

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

function fmt(n) { return n === null || n === undefined ? '—' : Number(n).toLocaleString('en'); }
function pct(r) { return r === null || r === undefined ? '—' : (100 * r).toFixed(1) + '%'; }
function secs(s) {
  if (s === null || s === undefined) return '—';
  if (s < 90) return Math.round(s) + ' s';
  if (s < 5400) return Math.round(s / 60) + ' min';
  if (s < 172800) return (s / 3600).toFixed(1) + ' h';
  return (s / 86400).toFixed(1) + ' days';
}
function ago(ms) {
  if (!ms) return '—';
  const s = (Date.now() - ms) / 1000;
  if (s < 60) return 'just now';
  if (s < 3600) return Math.round(s / 60) + ' min ago';
  if (s < 86400) return Math.round(s / 3600) + ' h ago';
  return new Date(ms).toLocaleDateString('en', { day: 'numeric', month: 'short' });
}
function when(ms) { return ms ? new Date(ms).toLocaleString('en', { dateStyle: 'medium', timeStyle: 'short' }) : '—'; }

class Unauthorized extends Error {}

async function api(path, opts) {
  const o = Object.assign({ credentials: 'same-origin', headers: {} }, opts || {});
  if (o.method && o.method !== 'GET') o.headers['X-CSRF-Token'] = session ? session.csrf : '';
  const r = await fetch('/admin/api/' + path, o);
  let body = null;
  try { body = await r.json(); } catch (e) { body = null; }
  if (r.status === 401) throw new Unauthorized((body && body.error && body.error.message) || 'log in again');
  if (!r.ok) throw new Error((body && body.error && body.error.message) || ('HTTP ' + r.status));
  return body;
}

function showLogin(why) {
  session = null;
  delete document.body.dataset.ready;
  if (timer) clearTimeout(timer);
  timer = null;
  $('app').hidden = true;
  $('top-right').hidden = true;
  $('login').hidden = false;
  const refused = new URLSearchParams(location.search).get('login') === 'refused';
  $('login-error').hidden = !(refused || why);
  if (why && !refused) $('login-error').textContent = why;
  $('token').focus();
}

function problem(text) {
  $('problem').hidden = !text;
  $('problem').textContent = text || '';
}

function card(label, value, sub, cls) {
  return el('div', { class: 'card' + (cls ? ' ' + cls : '') },
    el('div', { class: 'label', text: label }),
    el('div', { class: 'value' + (typeof value === 'string' && value.length > 8 ? ' text' : ''), text: value }),
    sub ? el('div', { class: 'sub', text: sub }) : null);
}

/* ---- analytics ---- */

function drawAnalytics(a) {
  const d = a.daily || [];
  const today = d.length ? d[d.length - 1] : {};
  const sum = (k) => d.reduce((s, x) => s + (x[k] || 0), 0);
  const q = (k) => d.reduce((s, x) => s + ((x.quality || {})[k] || 0), 0);
  $('today-date').textContent = today.date || '';
  $('today').replaceChildren(
    card('Conversations started', fmt(today.conversations)),
    card('Messages in', fmt(today.messages_in)),
    card('Leads created', fmt(today.leads_created)),
    card('Leads updated', fmt(today.leads_updated)),
    card('Conversion', pct(today.conversion_rate)),
    card('New leads hot / warm / cold', [today.quality?.hot || 0, today.quality?.warm || 0, today.quality?.cold || 0].join(' / ')),
    card('Support hand-offs', fmt(today.support_transfers)),
    card('Active in 24 h', fmt(a.conversations?.active_24h)));
  const conv = sum('conversations'), created = sum('leads_created');
  const gem = sum('by_gemini'), rules = sum('by_rules');
  $('month').replaceChildren(
    card('Conversations started', fmt(conv)),
    card('Messages in', fmt(sum('messages_in'))),
    card('Leads created', fmt(created)),
    card('Leads updated', fmt(sum('leads_updated'))),
    card('Conversion', conv ? pct(created / conv) : '—'),
    card('Time to lead (median)', secs(a.time_to_lead_s?.median), 'mean ' + secs(a.time_to_lead_s?.mean) + ', all time'),
    card('New leads hot / warm / cold', [q('hot'), q('warm'), q('cold')].join(' / ')),
    card('Support hand-offs', fmt(sum('support_transfers')), fmt(a.support_transfers?.to_a_person) + ' asked for a person, all time'),
    card('Follow-ups', fmt(sum('followups')), pct(a.outbound?.followups?.answer_rate) + ' answered, all time'),
    card('Opt-outs', fmt(sum('opt_outs')), fmt(a.outbound?.opt_outs?.back_in) + ' back in, all time'),
    card('Model vs rules', gem + rules ? pct(gem / (gem + rules)) : '—', fmt(gem) + ' by the model, ' + fmt(rules) + ' by the rules'),
    card('Outreach after calls', fmt(sum('outreach_started'))));
  if (window.Chart && session && session.charts) drawCharts(d, gem, rules);
  else drawTable(d);
}

function chart(id, config) {
  config.options = Object.assign({ animation: false, responsive: true, maintainAspectRatio: false,
    plugins: { legend: { position: 'bottom' } } }, config.options || {});
  if (charts[id]) {
    charts[id].data = config.data;
    charts[id].update('none');
  } else {
    charts[id] = new window.Chart($(id), config);
  }
}

function drawCharts(d, gem, rules) {
  const labels = d.map((x) => x.date.slice(5));
  const qd = (k) => d.map((x) => (x.quality || {})[k] || 0);
  chart('chart-quality', {
    type: 'bar',
    data: { labels, datasets: [
      { label: 'Hot', data: qd('hot'), backgroundColor: '#dc2626' },
      { label: 'Warm', data: qd('warm'), backgroundColor: '#f59e0b' },
      { label: 'Cold', data: qd('cold'), backgroundColor: '#3b82f6' }] },
    options: { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } } },
  });
  chart('chart-daily', {
    type: 'line',
    data: { labels, datasets: [
      { label: 'Conversations', data: d.map((x) => x.conversations), borderColor: '#0f766e', backgroundColor: '#0f766e', tension: 0.25 },
      { label: 'Leads created', data: d.map((x) => x.leads_created), borderColor: '#7c3aed', backgroundColor: '#7c3aed', tension: 0.25 },
      { label: 'Hand-offs', data: d.map((x) => x.support_transfers), borderColor: '#f59e0b', backgroundColor: '#f59e0b', tension: 0.25 }] },
    options: { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
  });
  chart('chart-model', {
    type: 'doughnut',
    data: { labels: ['Model', 'Offline rules'], datasets: [{ data: [gem, rules], backgroundColor: ['#0f766e', '#94a3b8'] }] },
  });
}

function drawTable(d) {
  document.querySelector('.charts').hidden = true;
  $('no-charts').hidden = false;
  $('daily-table').hidden = false;
  const rows = d.slice().reverse().map((x) => el('tr', {},
    el('td', { text: x.date }), el('td', { text: fmt(x.conversations) }), el('td', { text: fmt(x.leads_created) }),
    el('td', { text: [x.quality?.hot || 0, x.quality?.warm || 0, x.quality?.cold || 0].join(' / ') }),
    el('td', { text: fmt(x.support_transfers) })));
  $('daily-table').replaceChildren(el('table', { class: 'list' },
    el('thead', {}, el('tr', {}, ...['Day', 'Conversations', 'Leads created', 'Hot / warm / cold', 'Hand-offs'].map((t) => el('th', { text: t })))),
    el('tbody', {}, ...rows)));
}

/* ---- conversations ---- */

function statusTags(c) {
  const tags = [];
  if (c.waiting_for_person) tags.push(el('span', { class: 'tag waiting', text: 'waiting for a person' }));
  if (c.paused) tags.push(el('span', { class: 'tag paused', text: 'paused (' + (REASONS[c.paused.reason] || c.paused.reason) + ')' }));
  if (c.opted_out) tags.push(el('span', { class: 'tag optout', text: 'opted out' }));
  if (c.lead_id) tags.push(el('span', { class: 'tag lead', text: 'lead #' + c.lead_id }));
  return tags;
}

function quality(q) { return q ? el('span', { class: 'q ' + q, text: q }) : el('span', { class: 'muted', text: '—' }); }

async function loadConversations() {
  const seq = ++searchSeq;
  const q = $('search').value.trim();
  const list = await api('conversations?limit=50' + (q ? '&q=' + encodeURIComponent(q) : ''));
  if (seq !== searchSeq) return; // a newer search answered first
  const rows = list.conversations.map((c) => {
    const tr = el('tr', { class: 'row' + (c.phone === selected ? ' selected' : ''), tabindex: '0', 'data-phone': c.phone },
      el('td', { text: c.phone_masked }), el('td', { text: c.name || '—' }),
      el('td', { class: 'hide-narrow', text: STAGES[c.stage] || c.stage }), el('td', {}, quality(c.quality)),
      el('td', { class: 'hide-narrow', text: fmt(c.messages) }),
      el('td', { text: ago(c.last_activity_ms), title: when(c.last_activity_ms) }),
      el('td', {}, ...statusTags(c)));
    tr.addEventListener('click', () => openConversation(c.phone));
    tr.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') openConversation(c.phone); });
    return tr;
  });
  document.querySelector('#conversations tbody').replaceChildren(...rows);
  $('conv-empty').hidden = rows.length > 0;
  $('conv-empty').textContent = q ? 'No conversation matches “' + q + '”.' : 'No conversations yet.';
  $('conv-count').textContent = q ? list.matched + ' of the ' + list.searched + ' most recent match'
    : fmt(list.total) + ' conversations' + (list.total > rows.length ? ', the latest ' + rows.length + ' shown' : '');
}

async function openConversation(phone) {
  selected = phone;
  document.querySelectorAll('#detail [data-action]').forEach((b) => { b.disabled = false; });
  document.querySelectorAll('#conversations tr.row').forEach((r) => r.classList.toggle('selected', r.dataset.phone === phone));
  $('detail').hidden = false;
  $('detail-result').textContent = '';
  await drawConversation();
  $('detail').scrollIntoView({ block: 'nearest' });
}

async function drawConversation() {
  if (!selected) return;
  const phone = selected;
  let st, h;
  try {
    [st, h] = await Promise.all([
      api('conversation/' + encodeURIComponent(phone) + '/status'),
      api('conversation/' + encodeURIComponent(phone) + '/history')]);
  } catch (e) {
    if (e instanceof Unauthorized) throw e;
    $('detail-title').textContent = phone;
    $('detail-facts').replaceChildren();
    $('history').replaceChildren();
    $('detail-result').textContent = e.message;
    return;
  }
  if (phone !== selected) return;
  const f = st.fields || {};
  $('detail-title').textContent = (f.name ? f.name + ' · ' : '') + st.phone;
  const facts = [
    ['Stage', STAGES[st.stage] || st.stage], ['Quality', st.quality ? st.quality.q : '—'],
    ['Lead', st.lead_id ? '#' + st.lead_id : (st.lead_pending ? 'being written' : 'none yet')],
    ['E-mail', f.email], ['City', f.city], ['Interested in', f.product_interest], ['Budget', f.budget_range],
    ['When', f.urgency], ['Need', f.specific_need],
    ['Bot', st.paused ? 'paused (' + (REASONS[st.paused.reason] || st.paused.reason) + ') until ' + when(st.paused.until_ms) : (st.opted_out ? 'opted out' : 'answering')],
    ['24-hour window', st.window && st.window.open ? 'open' : 'closed (templates only)'],
    ['Started', when(st.created_ms)], ['Messages', fmt(st.messages)]];
  $('detail-facts').replaceChildren(...facts.filter(([, v]) => v !== undefined && v !== null)
    .flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { text: String(v) })]));
  $('history').replaceChildren(...(h.history || []).map((m) => el('li', { class: m.dir === 'out' ? 'out' : 'in' },
    m.text, el('span', { class: 'meta', text: (m.dir === 'out' ? (m.by ? m.by : 'Bot') : 'Customer') + ' · ' + when(m.t_ms) }))));
  const hl = $('history');
  hl.scrollTop = hl.scrollHeight;
}

/* What an erasure did, from DELETE /api/conversation/{phone}'s answer. */
function eraseSummary(r) {
  const parts = ['Erased: everything crmbridge kept about ' + r.phone + ' is gone.'];
  const o = r.odoo;
  if (o && o.anonymised) {
    parts.push('Odoo: lead ' + (o.leads || [o.lead_id]).map((i) => '#' + i).join(', ') + ' anonymised, ' +
      fmt(o.messages_deleted || 0) + ' of crmbridge\'s messages deleted' +
      (o.notifications_rewritten ? ', ' + o.notifications_rewritten + ' assignment notification(s) rewritten' : '') + '.');
  } else if (o && o.why) {
    parts.push('Odoo: nothing done (' + o.why + ').');
  } else if (o && o.error) {
    parts.push('Odoo: not finished (' + o.error + '): erase again, or finish lead #' + o.lead_id + ' by hand.');
  }
  if (o && o.messages_refused) {
    parts.push('Odoo refused to delete crmbridge\'s messages on the lead (' + o.messages_refused + '): an Odoo ' +
      'administrator should delete them.');
  }
  return parts.join(' ');
}

function confirmDialog(title, text, ok) {
  return new Promise((resolve) => {
    const d = $('confirm');
    $('confirm-title').textContent = title;
    $('confirm-text').textContent = text;
    $('confirm-ok').textContent = ok;
    d.returnValue = '';
    d.addEventListener('close', () => resolve(d.returnValue === 'ok'), { once: true });
    d.showModal();
  });
}

async function act(action) {
  const phone = selected;
  if (!phone) return;
  const path = 'conversation/' + encodeURIComponent(phone);
  const name = $('detail-title').textContent;
  try {
    if (action === 'erase') {
      if (!await confirmDialog('Erase ' + phone + '?',
        'Everything crmbridge keeps about ' + name + ' is deleted: the conversation, its messages and queues, and, ' +
        'when privacy.erase_odoo is on, the customer\'s data on the Odoo lead and crmbridge\'s messages there. ' +
        'This cannot be undone.', 'Erase ' + phone)) return;
      const r = await api(path, { method: 'DELETE' });
      selected = null; // the panel stays, with what was done, until closed
      $('detail-title').textContent = phone + ' (erased)';
      $('detail-facts').replaceChildren();
      $('history').replaceChildren();
      document.querySelectorAll('#detail [data-action]').forEach((b) => { b.disabled = true; });
      $('detail-result').textContent = eraseSummary(r);
    } else if (action === 'reset') {
      if (!await confirmDialog('Reset ' + phone + '?', 'The conversation with ' + name +
        ' starts again from nothing; its lead in Odoo stays.', 'Reset')) return;
      await api(path + '/reset', { method: 'POST' });
      $('detail-result').textContent = 'Reset.';
    } else {
      const r = await api(path + '/' + action, { method: 'POST' });
      $('detail-result').textContent = action === 'pause'
        ? 'Paused until ' + when(r.paused_until_ms || r.until_ms) + '.' : 'Resumed: the bot answers again.';
    }
  } catch (e) {
    if (e instanceof Unauthorized) return showLogin(e.message);
    $('detail-result').textContent = 'Failed: ' + e.message;
    return;
  }
  await refresh();
}

/* ---- the system ---- */

function drawSystem(s) {
  const health = $('health');
  health.textContent = s.status;
  health.className = 'pill ' + s.status;
  const sys = [];
  const r = s.redis || {};
  sys.push(card('Redis', r.state === 'up' ? 'up' : r.state, r.endpoint + (r.ping_ms !== undefined ? ' · ' + r.ping_ms.toFixed(1) + ' ms' : ''), r.state === 'up' ? 'good' : 'bad'));
  if (s.odoo) {
    sys.push(card('Odoo', s.odoo.ready ? 'ready' : (s.odoo.reachable ? 'not ready' : 'unreachable'),
      s.odoo.version + ' · ' + s.odoo.protocol + (s.odoo.last_error ? ' · ' + s.odoo.last_error.message : ''), s.odoo.ready ? 'good' : 'bad'));
  } else {
    sys.push(card('Odoo', 'not configured', 'leads go to the journal (' + fmt(s.lead_store && s.lead_store.leads) + ')'));
  }
  const c = s.classifier || {};
  const g = c.gemini;
  sys.push(card('Classifier', c.mode, g ? g.model + ' · breaker ' + g.breaker + ' · ' + fmt(g.ok) + ' ok, ' + fmt(g.failures) + ' failed'
    : 'no model configured: the offline rules classify', g && g.breaker !== 'closed' ? 'bad' : ''));
  const tw = s.sender;
  sys.push(card('Twilio', s.services && s.services.twilio.configured ? 'configured' : 'not configured',
    tw ? fmt(tw.sent) + ' sent · ' + (tw.status_callbacks > 0
      ? fmt(tw.delivery.delivered) + ' delivered · ' + fmt(tw.delivery.failed + tw.delivery.undelivered) + ' failed'
      : 'no delivery reports yet') + (tw.last_error ? ' · ' + tw.last_error : '') : ''));
  sys.push(card('Version', s.version, 'up ' + secs(s.uptime_s)));
  $('system').replaceChildren(...sys);
  const qu = s.queues || {};
  $('queues').replaceChildren(
    card('Turns due', fmt(qu.turns_due)), card('Turns running', fmt(qu.turns_in_flight)),
    card('Lead writes pending', fmt(qu.lead_writes_pending)), card('Replies in flight', fmt(qu.replies_in_flight)),
    card('Spool', fmt(qu.spool)),
    card('Dead turns', fmt(qu.dead_turns), null, qu.dead_turns > 0 ? 'bad' : ''),
    card('Dead replies', fmt(tw ? tw.dead_letters : null), null, tw && tw.dead_letters > 0 ? 'bad' : ''));
  const t = s.templates || {};
  const rows = Object.keys(t).map((sid) => el('tr', {}, el('td', { text: sid }),
    el('td', { text: t[sid].known ? 'yes' : 'no' }), el('td', { text: t[sid].error || '—' })));
  document.querySelector('#templates tbody').replaceChildren(...(rows.length ? rows
    : [el('tr', {}, el('td', { colspan: '3', class: 'muted', text: 'No templates configured.' }))]));
  $('footer').textContent = 'crmbridge ' + s.version + ' · ' + s.listen;
}

function drawDead(dl) {
  const rows = [...(dl.turns || []).map((t) => ({ at: t.at_ms, what: 'turn (' + ((t.messages || []).length) + ' messages)', phone: t.phone_masked, why: t.reason })),
    ...(dl.replies || []).map((r) => ({ at: r.at_ms, what: 'reply (' + r.attempts + ' attempts)', phone: r.phone_masked, why: r.reason }))]
    .sort((a, b) => (b.at || 0) - (a.at || 0)).slice(0, 20);
  document.querySelector('#dead tbody').replaceChildren(...(rows.length ? rows.map((r) => el('tr', {},
    el('td', { text: when(r.at) }), el('td', { text: r.what }), el('td', { text: r.phone || '—' }), el('td', { text: r.why || '—' })))
    : [el('tr', {}, el('td', { colspan: '4', class: 'muted', text: 'No dead letters.' }))]));
  $('retry-dead').disabled = rows.length === 0;
}

async function retryDead() {
  if (!await confirmDialog('Retry the dead letters?', 'Every turn and reply given up is queued again.', 'Retry')) return;
  try {
    const r = await api('dead-letters/retry', { method: 'POST' });
    $('dead-result').textContent = r.turns_requeued + ' turns and ' + r.replies_requeued + ' replies queued again, ' + r.left + ' left.';
  } catch (e) {
    if (e instanceof Unauthorized) return showLogin(e.message);
    $('dead-result').textContent = 'Failed: ' + e.message;
  }
  await refresh();
}

/* ---- refreshing ---- */

async function refresh() {
  try {
    const [a, s, dl] = await Promise.all([api('analytics?days=30'), api('status'), api('dead-letters')]);
    drawAnalytics(a);
    drawSystem(s);
    drawDead(dl);
    await loadConversations();
    await drawConversation();
    problem('');
    $('refreshed').textContent = 'updated ' + new Date().toLocaleTimeString('en');
    document.body.dataset.ready = '1';
  } catch (e) {
    if (e instanceof Unauthorized) return showLogin(e.message);
    problem('Could not refresh: ' + e.message);
  }
}

async function start() {
  $('logout').addEventListener('click', async () => {
    try { await api('logout', { method: 'POST' }); } catch (e) { /* the session is gone either way */ }
    showLogin();
  });
  $('detail-close').addEventListener('click', () => { selected = null; $('detail').hidden = true; });
  document.querySelectorAll('#detail [data-action]').forEach((b) => b.addEventListener('click', () => act(b.dataset.action)));
  $('retry-dead').addEventListener('click', retryDead);
  let pending = null;
  $('search').addEventListener('input', () => {
    clearTimeout(pending);
    pending = setTimeout(() => loadConversations().catch((e) => e instanceof Unauthorized ? showLogin(e.message) : problem(e.message)), 250);
  });
  document.addEventListener('visibilitychange', () => { if (!document.hidden && session) refresh(); });
  try {
    session = await api('session');
  } catch (e) {
    if (e instanceof Unauthorized) return showLogin();
    $('login').hidden = false;
    return problem('The dashboard cannot reach crmbridge: ' + e.message);
  }
  if (location.search) history.replaceState(null, '', '/admin');
  $('login').hidden = true;
  $('app').hidden = false;
  $('top-right').hidden = false;
  await refresh();
  schedule();
}

/* The next refresh REFRESH_MS after the last one ended (never two at once); none while the tab is hidden. */
function schedule() {
  timer = setTimeout(async () => {
    if (!document.hidden && session) await refresh();
    if (session) schedule();
  }, REFRESH_MS);
}

start();
