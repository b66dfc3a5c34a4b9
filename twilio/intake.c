/*
 * Durable intake. The Redis path runs one Lua script that checks the
 * MessageSid (and idempotency token) claims, adds the message to the
 * arrivals (P{turns}:in) and makes its phone's turn due, atomically, so a
 * message is never claimed without being stored and a stored message always
 * has a turn due. When Redis is down, slow or refuses, the message goes to
 * the spool: one file per message, fsynced with its directory before Twilio
 * gets its 200. While the spool holds anything, new messages queue behind
 * it, so per-phone order survives; the spool drains head first through the
 * same script, whose claims make a replay of an already stored message a
 * no-op.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "common/form.h"
#include "common/log.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "twilio/intake.h"
#include "twilio/webhook.h"
#include "redis/scripts.h"

#define SPOOL_MAGIC "CRMBSPOOL1\n"
#define SPOOL_MAX (FORM_BODY_MAX + 4096)
#define FORM_BODY_MAX (1024 * 1024)

struct op {
	struct intake *in; /* NULL once orphaned by intake_free */
	char *sid, *from, *idem, *body;
	size_t len;
	uint64_t received_ms;
	char *entry; /* the inbox entry, made from the webhook's parsed form; NULL: from body (a spool file) */
	intake_cb cb;
	void *arg;
	bool replay; /* moving a spool file; seq says which */
	uint64_t seq;
	bool answered;
	sd_event_source *timer;
	struct op *prev, *next;
};

struct intake {
	sd_event *event;
	struct rconn *rc;
	struct intake_options o;
	char *prefix, *spool_dir;
	unsigned seq; /* the order of messages received in the same millisecond */
	struct rscript script;
	int dirfd;
	uint64_t *seqs; /* spool files, oldest first */
	size_t nseq, headseq, capseq;
	uint64_t next_seq;
	bool replaying;
	sd_event_source *retry;
	struct op *ops; /* every op awaiting Redis */
	struct intake_stats st;
};

const char *
intake_result_name(enum intake_result r)
{
	switch (r) {
	case INTAKE_STORED: return "stored";
	case INTAKE_DUPLICATE: return "duplicate";
	case INTAKE_SPOOLED: return "spooled";
	default: return "failed";
	}
}

static size_t
spool_count(const struct intake *in)
{
	return in->nseq - in->headseq;
}

/* ---- the spool ---- */

static void
spool_path(const struct intake *in, uint64_t seq, char *buf, size_t size)
{
	snprintf(buf, size, "%020" PRIu64 ".msg", seq);
}

static int
write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Creates the temporary file anew (O_EXCL | O_NOFOLLOW), so whatever is at its name (a file left by a crash,
 * a symlink someone planted) is never followed or written through: it is unlinked (the link, not its target)
 * and the create tried once more. -1 with errno on failure.
 */
static int
spool_create(struct intake *in, const char *tmp)
{
	int fd, tries;

	for (tries = 0; tries < 2; tries++) {
		fd = openat(in->dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd >= 0 || errno != EEXIST)
			return fd;
		if (unlinkat(in->dirfd, tmp, 0) < 0 && errno != ENOENT)
			return -1;
		log_warnx("intake: removed %s/%s, which was in the way of a spool file", in->spool_dir, tmp);
	}
	errno = EEXIST;
	return -1;
}

/* Writes one message durably: temporary file, fsync, rename, fsync of the directory. */
static int
spool_write(struct intake *in, const struct op *m)
{
	char name[64], tmp[80], head[1024];
	uint64_t seq = in->next_seq;
	int fd, n, saved;

	spool_path(in, seq, name, sizeof(name));
	snprintf(tmp, sizeof(tmp), ".tmp-%s", name);
	n = snprintf(head, sizeof(head), SPOOL_MAGIC "sid=%s\nfrom=%s\nidem=%s\nreceived_ms=%" PRIu64 "\nlen=%zu\n\n",
	    m->sid, m->from, m->idem != NULL ? m->idem : "", m->received_ms, m->len);
	if (n < 0 || (size_t)n >= sizeof(head))
		return -EINVAL;
	if ((fd = spool_create(in, tmp)) < 0)
		return -errno;
	if (write_all(fd, head, (size_t)n) < 0 || write_all(fd, m->body, m->len) < 0 || fsync(fd) < 0)
		goto fail;
	if (close(fd) < 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (renameat(in->dirfd, tmp, in->dirfd, name) < 0 || fsync(in->dirfd) < 0)
		goto fail;
	if (in->nseq == in->capseq) {
		in->capseq = in->capseq == 0 ? 64 : in->capseq * 2;
		in->seqs = xreallocarray(in->seqs, in->capseq, sizeof(*in->seqs));
	}
	in->seqs[in->nseq++] = seq;
	in->next_seq++;
	in->st.spool_depth = spool_count(in);
	return 0;
fail:
	saved = errno;
	if (fd >= 0)
		close(fd);
	unlinkat(in->dirfd, tmp, 0);
	return -saved;
}

/* Reads spool file seq into a new op; NULL if it is unreadable or malformed. */
static struct op *
spool_read(struct intake *in, uint64_t seq)
{
	char name[64], *buf = NULL, *p, *line, *save = NULL;
	struct op *m = NULL;
	struct stat st;
	size_t got = 0;
	long long len = -1, ms = -1;
	int fd;

	spool_path(in, seq, name, sizeof(name));
	if ((fd = openat(in->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return NULL;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 || st.st_size > SPOOL_MAX)
		goto out;
	buf = xmalloc((size_t)st.st_size + 1);
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n <= 0)
			goto out;
		got += (size_t)n;
	}
	buf[got] = '\0';
	if (strncmp(buf, SPOOL_MAGIC, strlen(SPOOL_MAGIC)) != 0 || (p = strstr(buf, "\n\n")) == NULL)
		goto out;
	*p = '\0';
	m = xcalloc(1, sizeof(*m));
	for (line = strtok_r(buf + strlen(SPOOL_MAGIC), "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "sid=", 4) == 0)
			m->sid = xstrdup(line + 4);
		else if (strncmp(line, "from=", 5) == 0)
			m->from = xstrdup(line + 5);
		else if (strncmp(line, "idem=", 5) == 0 && line[5] != '\0')
			m->idem = xstrdup(line + 5);
		else if (strncmp(line, "received_ms=", 12) == 0)
			parse_ll(line + 12, 0, INT64_MAX, &ms);
		else if (strncmp(line, "len=", 4) == 0)
			parse_ll(line + 4, 0, FORM_BODY_MAX, &len);
	}
	if (m->sid == NULL || m->from == NULL || ms < 0 || len < 0 || (size_t)(p + 2 - buf) + (size_t)len != got) {
		free(m->sid);
		free(m->from);
		free(m->idem);
		free(m);
		m = NULL;
		goto out;
	}
	m->received_ms = (uint64_t)ms;
	m->len = (size_t)len;
	m->body = xmalloc(m->len + 1);
	memcpy(m->body, p + 2, m->len);
	m->body[m->len] = '\0';
	m->seq = seq;
	m->replay = true;
out:
	free(buf);
	close(fd);
	return m;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Finds the spool files left by an earlier run; drops unfinished temporary files. */
static int
spool_scan(struct intake *in)
{
	int fd = dup(in->dirfd);
	DIR *d;
	struct dirent *de;

	if (fd < 0 || (d = fdopendir(fd)) == NULL) {
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	while ((de = readdir(d)) != NULL) {
		long long seq;
		char num[32];
		size_t n = strlen(de->d_name);

		if (strncmp(de->d_name, ".tmp-", 5) == 0) {
			/* Never acknowledged: the 200 goes out only after the rename. */
			unlinkat(in->dirfd, de->d_name, 0);
			continue;
		}
		if (n != 24 || strcmp(de->d_name + 20, ".msg") != 0)
			continue;
		memcpy(num, de->d_name, 20);
		num[20] = '\0';
		if (parse_ll(num, 0, INT64_MAX, &seq) < 0)
			continue;
		if (in->nseq == in->capseq) {
			in->capseq = in->capseq == 0 ? 64 : in->capseq * 2;
			in->seqs = xreallocarray(in->seqs, in->capseq, sizeof(*in->seqs));
		}
		in->seqs[in->nseq++] = (uint64_t)seq;
	}
	closedir(d);
	if (in->nseq > 0) {
		qsort(in->seqs, in->nseq, sizeof(*in->seqs), cmp_u64);
		in->next_seq = in->seqs[in->nseq - 1] + 1;
	}
	in->st.spool_depth = spool_count(in);
	return 0;
}

/* Moves a spool file that cannot be read aside, so it is kept for a person to look at. */
static void
spool_quarantine(struct intake *in, uint64_t seq)
{
	char name[64], bad[96];

	spool_path(in, seq, name, sizeof(name));
	snprintf(bad, sizeof(bad), "bad-%s", name);
	if (renameat(in->dirfd, name, in->dirfd, bad) == 0)
		log_error("intake: spool file %s is unreadable; kept as %s/%s", name, in->spool_dir, bad);
}

static void
spool_pop(struct intake *in)
{
	char name[64];

	spool_path(in, in->seqs[in->headseq], name, sizeof(name));
	unlinkat(in->dirfd, name, 0);
	in->headseq++;
	if (in->headseq == in->nseq)
		in->headseq = in->nseq = 0;
	in->st.spool_depth = spool_count(in);
}

/* ---- ops ---- */

static void
op_free(struct op *op)
{
	if (op->in != NULL) {
		if (op->prev != NULL)
			op->prev->next = op->next;
		else
			op->in->ops = op->next;
		if (op->next != NULL)
			op->next->prev = op->prev;
	}
	sd_event_source_disable_unref(op->timer);
	free(op->sid);
	free(op->from);
	free(op->idem);
	free(op->body);
	free(op->entry);
	free(op);
}

static void
answer(struct op *op, enum intake_result r)
{
	if (op->answered || op->cb == NULL)
		return;
	op->answered = true;
	op->cb(r, op->arg);
}

static void replay_next(struct intake *in);

static void
schedule_retry(struct intake *in)
{
	sd_event_source_set_time(in->retry, now_usec() + 1000000);
	sd_event_source_set_enabled(in->retry, SD_EVENT_ONESHOT);
}

/*
 * Spools a direct submission that Redis did not take, and answers it. A replay is tried within a second even
 * when the connection never dropped (a stall shorter than the PING timeout, an OOM or READONLY refusal), so
 * the message does not wait for the next webhook or a reconnection.
 */
static void
fallback_to_spool(struct intake *in, struct op *op)
{
	int r, enabled;
	char ph[32];

	if (op->answered)
		return;
	if ((r = spool_write(in, op)) < 0) {
		in->st.failed++;
		log_error("intake: MessageSid=%s from=%s: neither Redis nor the spool can take it: %s", op->sid,
		    log_phone(op->from, ph, sizeof(ph)), strerror(-r));
		answer(op, INTAKE_FAILED);
		return;
	}
	in->st.spooled++;
	log_info("intake: MessageSid=%s from=%s spooled (%zu waiting for Redis)", op->sid,
	    log_phone(op->from, ph, sizeof(ph)), spool_count(in));
	answer(op, INTAKE_SPOOLED);
	if (sd_event_source_get_enabled(in->retry, &enabled) >= 0 && enabled == SD_EVENT_OFF)
		schedule_retry(in);
}

static void
on_reply(redisAsyncContext *ac, void *r, void *privdata)
{
	struct op *op = privdata;
	struct intake *in = op->in;
	redisReply *reply = r;
	bool ok = false, dup = false;

	if (in == NULL) { /* orphaned at shutdown */
		op_free(op);
		return;
	}
	if (reply != NULL && reply->type == REDIS_REPLY_INTEGER) {
		ok = true;
		dup = reply->integer == 0;
		/* Stored: its phone's turn is due at that time (ms). */
		if (!dup && in->o.stored != NULL)
			in->o.stored((uint64_t)reply->integer, in->o.stored_arg);
	} else if (reply != NULL) {
		in->st.redis_errors++;
		log_warnx("intake: Redis refused the message: %s",
		    reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
	}
	if (op->replay) {
		in->replaying = false;
		if (ok) {
			spool_pop(in);
			if (dup)
				in->st.duplicates++;
			else
				in->st.replayed++;
			log_debug(
			    "intake: MessageSid=%s moved from the spool (%s)", op->sid, dup ? "duplicate" : "stored");
			op_free(op);
			replay_next(in);
			return;
		}
		schedule_retry(in);
		op_free(op);
		return;
	}
	if (ok && !op->answered) {
		char ph[32];
		if (dup)
			in->st.duplicates++;
		else
			in->st.stored++;
		log_info("intake: MessageSid=%s from=%s %s", op->sid, log_phone(op->from, ph, sizeof(ph)),
		    dup ? "duplicate, ignored" : "stored");
		answer(op, dup ? INTAKE_DUPLICATE : INTAKE_STORED);
	} else if (!ok) {
		fallback_to_spool(in, op);
	}
	op_free(op);
	/* Redis answers again (a late answer after a stall): move what was spooled meanwhile now. */
	if (ok && spool_count(in) > 0)
		replay_next(in);
}

static int
on_timeout(sd_event_source *s, uint64_t usec, void *arg)
{
	struct op *op = arg;

	/* Redis is too slow: spool now; a late answer is then a harmless duplicate claim. */
	if (op->in != NULL)
		fallback_to_spool(op->in, op);
	return 0;
}

/* The text a message stands for in the history: its body, or what it carries. */
static char *
message_text(const struct form *f)
{
	const char *body = form_get(f, "Body"), *v;
	char *t;

	if (body != NULL && *body != '\0')
		return xstrdup(body);
	if ((v = form_get(f, "ButtonText")) != NULL && *v != '\0')
		return xstrdup(v);
	if ((v = form_get(f, "Latitude")) != NULL) {
		xasprintf(&t, "[location %s,%s%s%s]", v, form_get(f, "Longitude") ?: "?",
		    form_get(f, "Address") ? " " : "", form_get(f, "Address") ?: "");
		return t;
	}
	if ((v = form_get(f, "MediaContentType0")) != NULL) {
		xasprintf(&t, "[%s]", v);
		return t;
	}
	xasprintf(&t, "[%s]", form_get(f, "MessageType") ?: "message");
	return t;
}

char *
intake_entry_of_form(const char *sid, const struct form *f, uint64_t received_ms)
{
	const char *body;
	char *text, *json, ms[24];
	long long nm = 0;
	json_t *m;

	text = message_text(f);
	snprintf(ms, sizeof(ms), "%" PRIu64, received_ms);
	m = json_pack(
	    "{s:s, s:s, s:s, s:s?}", "sid", sid, "text", text, "t_ms", ms, "profile", form_get(f, "ProfileName"));
	/* Voice notes and images: their addresses, for the turn to fetch (the bytes are never stored). */
	if (parse_ll(form_get(f, "NumMedia") ?: "0", 0, 10, &nm) == 0 && nm > 0) {
		json_t *media = json_array();
		char k[32];
		for (long long i = 0; i < nm && i < 3; i++) {
			const char *u, *ty;
			snprintf(k, sizeof(k), "MediaUrl%lld", i);
			u = form_get(f, k);
			snprintf(k, sizeof(k), "MediaContentType%lld", i);
			ty = form_get(f, k);
			if (u != NULL && ty != NULL && (strncmp(ty, "audio/", 6) == 0 || strncmp(ty, "image/", 6) == 0))
				json_array_append_new(media, json_pack("{s:s, s:s}", "url", u, "type", ty));
		}
		if (json_array_size(media) > 0) {
			json_object_set_new(m, "media", media);
			body = form_get(f, "Body");
			json_object_set_new(m, "media_only", json_boolean(body == NULL || *body == '\0'));
		} else {
			json_decref(media);
		}
	}
	json = json_dumps(m, JSON_COMPACT);
	json_decref(m);
	free(text);
	return json;
}

char *
intake_entry_json(const char *sid, const char *form, size_t len, uint64_t received_ms)
{
	struct form f;
	const char *why;
	char *json;

	if (form_parse(form, len, &f, &why) < 0)
		return NULL;
	json = intake_entry_of_form(sid, &f, received_ms);
	form_clear(&f);
	return json;
}

int
intake_store(
    struct rconn *rc, const struct rscript *sc, const struct intake_store_args *a, redisCallbackFn *fn, void *pd)
{
	char *k[4], ttl[24], now[24], win[24], cap[24];
	const char *argv[10];
	int r, i;

	xasprintf(&k[0], "%s{turns}:sid:%s", a->prefix, a->sid);
	if (a->idem != NULL)
		xasprintf(&k[1], "%s{turns}:idem:%s", a->prefix, a->idem);
	else
		k[1] = xstrdup(k[0]);
	xasprintf(&k[2], "%s{turns}:in", a->prefix);
	xasprintf(&k[3], "%s{turns}:due", a->prefix);
	snprintf(ttl, sizeof(ttl), "%" PRIu64, a->claim_ttl_s);
	snprintf(now, sizeof(now), "%" PRIu64, realtime_usec() / 1000);
	snprintf(win, sizeof(win), "%" PRIu64, a->window_ms);
	snprintf(cap, sizeof(cap), "%" PRIu64, a->cap_ms);
	for (i = 0; i < 4; i++)
		argv[i] = k[i];
	argv[4] = ttl;
	argv[5] = a->phone;
	argv[6] = a->member;
	argv[7] = now;
	argv[8] = win;
	argv[9] = cap;
	r = rconn_eval(rc, sc, fn, pd, 4, 10, argv, NULL);
	for (i = 0; i < 4; i++)
		free(k[i]);
	return r;
}

/* Runs intake-store for op: -EINVAL for a message that cannot be stored (a malformed form or From: the
 * webhook checked both, so only a damaged spool file), -ENOTCONN without Redis. */
static int
send_op(struct intake *in, struct op *op)
{
	struct intake_store_args a = {.prefix = in->prefix,
	    .sid = op->sid,
	    .idem = op->idem,
	    .claim_ttl_s = in->o.dedupe_ttl_s,
	    .window_ms = in->o.coalesce_window_ms,
	    .cap_ms = in->o.coalesce_max_ms};
	char *entry, *member;
	int r;

	if (!webhook_valid_from(op->from))
		return -EINVAL;
	a.phone = op->from + strlen("whatsapp:");
	/* A direct submission's entry was made from the form the webhook parsed; a spool file's is parsed here. */
	if (op->entry == NULL && (op->entry = intake_entry_json(op->sid, op->body, op->len, op->received_ms)) == NULL)
		return -EINVAL;
	entry = op->entry;
	if (in->rc == NULL)
		return -ENOTCONN;
	a.member = member = intake_member(a.phone, op->received_ms, in->seq++ % 1000000, entry);
	r = intake_store(in->rc, &in->script, &a, on_reply, op);
	free(member);
	return r;
}

char *
intake_member(const char *phone, uint64_t received_ms, unsigned seq, const char *entry)
{
	char *m;

	xasprintf(&m, "%s|%013" PRIu64 ".%06u|%s", phone, received_ms, seq, entry);
	return m;
}

static void
op_link(struct intake *in, struct op *op)
{
	op->in = in;
	op->next = in->ops;
	if (in->ops != NULL)
		in->ops->prev = op;
	in->ops = op;
}

static void
replay_next(struct intake *in)
{
	while (!in->replaying && spool_count(in) > 0 && in->rc != NULL && rconn_state(in->rc) == RCONN_UP) {
		uint64_t seq = in->seqs[in->headseq];
		struct op *op = spool_read(in, seq);
		int r = 0;

		if (op != NULL) {
			op_link(in, op);
			r = send_op(in, op);
		}
		if (op == NULL || r == -EINVAL) {
			/* Unreadable, or not a message Redis can take: set aside, the queue goes on. */
			if (op != NULL)
				op_free(op);
			spool_quarantine(in, seq);
			in->headseq++;
			if (in->headseq == in->nseq)
				in->headseq = in->nseq = 0;
			in->st.spool_depth = spool_count(in);
			continue;
		}
		if (r < 0) {
			op_free(op);
			schedule_retry(in);
			return;
		}
		in->replaying = true;
	}
}

int
intake_spool_erase(struct intake *in, const char *from)
{
	size_t i, keep, first = in->headseq + (in->replaying ? 1 : 0);
	int removed = 0;

	if (in->replaying && spool_count(in) > 0) {
		/* The head is on its way into Redis: if it is this phone's, the caller tries again once it has landed. */
		struct op *m = spool_read(in, in->seqs[in->headseq]);
		bool busy = m != NULL && strcmp(m->from, from) == 0;
		if (m != NULL)
			op_free(m);
		if (busy)
			return -EBUSY;
	}
	for (i = keep = first; i < in->nseq; i++) {
		struct op *m = spool_read(in, in->seqs[i]);
		if (m != NULL && strcmp(m->from, from) == 0) {
			char name[64];
			spool_path(in, in->seqs[i], name, sizeof(name));
			unlinkat(in->dirfd, name, 0);
			removed++;
		} else {
			in->seqs[keep++] = in->seqs[i];
		}
		if (m != NULL)
			op_free(m);
	}
	in->nseq = keep;
	if (in->headseq == in->nseq)
		in->headseq = in->nseq = 0;
	if (removed > 0)
		fsync(in->dirfd);
	in->st.spool_depth = spool_count(in);
	return removed;
}

static int
on_retry(sd_event_source *s, uint64_t usec, void *arg)
{
	replay_next(arg);
	return 0;
}

void
intake_redis_up(struct intake *in)
{
	if (spool_count(in) > 0)
		log_notice("intake: Redis is up; moving %zu spooled message(s)", spool_count(in));
	replay_next(in);
}

void
intake_submit(struct intake *in, const struct intake_msg *m, intake_cb cb, void *arg)
{
	struct op *op = xcalloc(1, sizeof(*op));
	int r;

	op->sid = xstrdup(m->sid);
	op->from = xstrdup(m->from);
	op->idem = m->idem != NULL ? xstrdup(m->idem) : NULL;
	op->entry = m->form != NULL ? intake_entry_of_form(m->sid, m->form, m->received_ms) : NULL;
	op->body = xmalloc(m->len + 1);
	memcpy(op->body, m->body, m->len);
	op->body[m->len] = '\0';
	op->len = m->len;
	op->received_ms = m->received_ms;
	op->cb = cb;
	op->arg = arg;

	/* Behind a non-empty spool, or without Redis, the message joins the spool. */
	if (spool_count(in) > 0 || in->rc == NULL || rconn_state(in->rc) != RCONN_UP) {
		fallback_to_spool(in, op);
		op_free(op);
		replay_next(in);
		return;
	}
	op_link(in, op);
	if ((r = send_op(in, op)) < 0) {
		fallback_to_spool(in, op);
		op_free(op);
		return;
	}
	if ((r = sd_event_add_time(in->event, &op->timer, CLOCK_MONOTONIC, now_usec() + in->o.redis_timeout_ms * 1000,
	         1000, on_timeout, op)) < 0)
		fatalx("intake: sd_event_add_time: %s", strerror(-r));
}

struct intake *
intake_new(sd_event *e, struct rconn *rc, const struct intake_options *o)
{
	struct intake *in = xcalloc(1, sizeof(*in));
	int r, saved;

	in->event = sd_event_ref(e);
	in->rc = rc;
	in->o = *o;
	in->dirfd = -1;
	in->prefix = xstrdup(o->key_prefix);
	xasprintf(&in->spool_dir, "%s/spool", o->state_dir);
	rscript_init(&in->script, redis_script_intake_store);
	if (mkdir(in->spool_dir, 0700) < 0 && errno != EEXIST)
		goto fail;
	if ((in->dirfd = open(in->spool_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		goto fail;
	if ((r = spool_scan(in)) < 0) {
		errno = -r;
		goto fail;
	}
	if ((r = sd_event_add_time(e, &in->retry, CLOCK_MONOTONIC, 0, 10000, on_retry, in)) < 0) {
		errno = -r;
		goto fail;
	}
	sd_event_source_set_enabled(in->retry, SD_EVENT_OFF);
	if (spool_count(in) > 0)
		log_notice("intake: %zu message(s) in the spool from an earlier run", spool_count(in));
	return in;
fail:
	saved = errno;
	intake_free(in);
	errno = saved;
	return NULL;
}

void
intake_set_redis(struct intake *in, struct rconn *rc)
{
	in->rc = rc;
	in->replaying = false;
}

void
intake_free(struct intake *in)
{
	struct op *op, *next;

	if (in == NULL)
		return;
	/* Ops still waiting for Redis: answer them from the spool, then orphan them for hiredis. */
	for (op = in->ops; op != NULL; op = next) {
		next = op->next;
		if (!op->replay)
			fallback_to_spool(in, op);
		op->in = NULL;
		op->prev = op->next = NULL;
		op->timer = sd_event_source_disable_unref(op->timer);
	}
	in->ops = NULL;
	sd_event_source_disable_unref(in->retry);
	if (in->dirfd >= 0)
		close(in->dirfd);
	sd_event_unref(in->event);
	free(in->seqs);
	free(in->prefix);
	free(in->spool_dir);
	free(in);
}

void
intake_get_stats(const struct intake *in, struct intake_stats *st)
{
	*st = in->st;
	st->redis_up = in->rc != NULL && rconn_state(in->rc) == RCONN_UP;
}
