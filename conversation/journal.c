/*
 * The embedded lead journal. See journal.h.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/phone.h"
#include "common/template.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "conversation/journal.h"

struct journal {
	struct journal_options o;
	char *path, *name_template, *source, *prio[3];
	int fd;
	json_t *leads; /* phone -> folded lead */
	json_int_t next_id;
};

/* Applies one record to the folded leads. */
static void
fold(json_t *leads, json_t *rec, json_int_t *next_id)
{
	const char *phone = json_string_value(json_object_get(rec, "phone"));
	json_t *id = json_object_get(rec, "id"), *lead;
	const char *k;
	json_t *v;

	if (phone == NULL || !json_is_integer(id))
		return;
	if (json_integer_value(id) >= *next_id)
		*next_id = json_integer_value(id) + 1;
	if ((lead = json_object_get(leads, phone)) == NULL) {
		lead = json_object();
		json_object_set_new(leads, phone, lead);
		json_object_set(lead, "created_at", json_object_get(rec, "at"));
	}
	json_object_foreach(rec, k, v)
	{
		if (strcmp(k, "op") != 0)
			json_object_set(lead, k, v);
	}
	json_object_set(lead, "updated_at", json_object_get(rec, "at"));
}

static json_t *
read_records(FILE *f, json_int_t *next_id)
{
	json_t *leads = json_object();
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	unsigned bad = 0;

	while ((n = getline(&line, &cap, f)) > 0) {
		json_t *rec = json_loadb(line, (size_t)n, 0, NULL);
		if (rec == NULL) {
			bad++; /* a torn last line after a crash: that change was never confirmed */
			continue;
		}
		fold(leads, rec, next_id);
		json_decref(rec);
	}
	free(line);
	if (bad > 0)
		log_warnx("journal: %u unreadable line%s skipped", bad, bad == 1 ? "" : "s");
	return leads;
}

json_t *
journal_read_file(const char *path)
{
	FILE *f = fopen(path, "re");
	json_int_t next = 1;
	json_t *leads;

	if (f == NULL)
		return NULL;
	leads = read_records(f, &next);
	fclose(f);
	return leads;
}

struct journal *
journal_open(const struct journal_options *o)
{
	struct journal *j;
	FILE *f;
	int fd = open(o->path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);

	if (fd < 0)
		return NULL;
	j = xcalloc(1, sizeof(*j));
	j->fd = fd;
	j->path = xstrdup(o->path);
	j->name_template = xstrdup(o->name_template ? o->name_template : "{contact} - {interest}");
	j->source = xstrdup(o->source_name ? o->source_name : "WhatsApp");
	j->prio[0] = xstrdup(o->priority[0] ? o->priority[0] : "0");
	j->prio[1] = xstrdup(o->priority[1] ? o->priority[1] : "1");
	j->prio[2] = xstrdup(o->priority[2] ? o->priority[2] : "2");
	j->next_id = 1;
	if ((f = fopen(o->path, "re")) != NULL) {
		j->leads = read_records(f, &j->next_id);
		fclose(f);
	} else {
		j->leads = json_object();
	}
	return j;
}

void
journal_free(struct journal *j)
{
	int i;

	if (j == NULL)
		return;
	close(j->fd);
	json_decref(j->leads);
	free(j->path);
	free(j->name_template);
	free(j->source);
	for (i = 0; i < 3; i++)
		free(j->prio[i]);
	free(j);
}

/* Makes a rename in path's directory durable. */
static void
fsync_dir_of(const char *path)
{
	char *dir = xstrdup(path), *slash = strrchr(dir, '/');
	int fd;

	if (slash != NULL)
		*(slash == dir ? slash + 1 : slash) = '\0';
	if ((fd = open(slash != NULL ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		fsync(fd);
		close(fd);
	}
	free(dir);
}

static void
iso_now(char out[32])
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void
set_str(json_t *o, const char *k, const char *v)
{
	if (v != NULL && *v != '\0')
		json_object_set_new(o, k, json_string(v));
}

void
journal_upsert(struct journal *j, const struct lead_input *in, bool support, lead_done_fn done, void *arg)
{
	struct lead_result r = {0};
	char e164[20], at[32], *name, *line;
	json_t *rec, *old;
	const char *k;
	json_t *v;
	bool changed = false;
	size_t len, i;
	int qi;

	if (phone_e164(in->phone, NULL, e164) < 0)
		snprintf(e164, sizeof(e164), "%s", in->phone);
	old = json_object_get(j->leads, e164);
	{
		static const char *const keys[] = {"contact", "interest", "phone"};
		const char *vals[] = {in->contact_name ? in->contact_name : e164,
		    in->product    ? in->product
		        : in->need ? in->need
		                   : j->source,
		    e164};
		name = template_expand(j->name_template, keys, vals, 3);
	}
	qi = in->quality && strcmp(in->quality, "hot") == 0   ? 2
	    : in->quality && strcmp(in->quality, "cold") == 0 ? 0
	                                                      : 1;
	rec = json_object();
	set_str(rec, "name", name);
	set_str(rec, "contact_name", in->contact_name);
	set_str(rec, "email_from", in->email);
	set_str(rec, "city", in->city);
	set_str(rec, "x_product_interest", in->product);
	set_str(rec, "x_budget_range", in->budget);
	set_str(rec, "urgency", in->urgency);
	set_str(rec, "need", in->need);
	set_str(rec, "x_quality_score", in->quality);
	set_str(rec, "priority", j->prio[qi]);
	set_str(rec, "intent", in->intent);
	if (support)
		json_object_set_new(rec, "support", json_true());
	free(name);
	/* Only what changed is a change; a lead keeps what it knew (a later turn never blanks a field). */
	if (old == NULL) {
		changed = true;
	} else {
		json_object_foreach(rec, k, v)
		{
			if (!json_equal(json_object_get(old, k), v)) {
				changed = true;
				break;
			}
		}
	}
	if (!changed) {
		r.lead_id = (int)json_integer_value(json_object_get(old, "id"));
		json_decref(rec);
		done(&r, arg);
		return;
	}
	iso_now(at);
	json_object_set_new(rec, "op", json_string(old == NULL ? "create" : "update"));
	json_object_set_new(
	    rec, "id", old == NULL ? json_integer(j->next_id) : json_incref(json_object_get(old, "id")));
	json_object_set_new(rec, "phone", json_string(e164));
	json_object_set_new(rec, "at", json_string(at));
	json_object_set_new(rec, "x_source", json_string(j->source));
	json_object_set_new(rec, "x_ai_confidence", json_real(in->confidence));
	set_str(rec, "reasoning", in->reasoning);
	if (in->nlast > 0) {
		json_t *m = json_array();
		for (i = 0; i < in->nlast; i++)
			if (in->last_messages[i] != NULL)
				json_array_append_new(m, json_string(in->last_messages[i]));
		json_object_set_new(rec, "last_messages", m);
	}
	{
		char *one = json_dumps(rec, JSON_COMPACT | JSON_REAL_PRECISION(12));
		xasprintf(&line, "%s\n", one);
		free(one);
	}
	len = strlen(line);
	if (write(j->fd, line, len) != (ssize_t)len || fdatasync(j->fd) < 0) {
		r.err.kind = ODOO_TRANSIENT;
		snprintf(r.err.message, sizeof(r.err.message), "lead journal %s: %s", j->path, strerror(errno));
		log_error("journal: cannot write %s: %s", j->path, strerror(errno));
		/* A partial line is skipped when read back; the engine retries the write later. */
	} else {
		r.lead_id = (int)json_integer_value(json_object_get(rec, "id"));
		r.created = old == NULL;
		r.updated = old != NULL;
		if (old == NULL)
			j->next_id++;
		fold(j->leads, rec, &j->next_id);
	}
	free(line);
	json_decref(rec);
	done(&r, arg);
}

int
journal_erase(struct journal *j, const char *phone)
{
	FILE *in = fopen(j->path, "re");
	char *tmp = NULL, *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int out, removed = 0, fd;

	if (in == NULL)
		return -errno;
	xasprintf(&tmp, "%s.erase", j->path);
	if ((out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0) {
		int e = errno;
		fclose(in);
		free(tmp);
		return -e;
	}
	/* Every record of the phone goes; the others are copied byte for byte. */
	while ((n = getline(&line, &cap, in)) > 0) {
		json_t *rec = json_loadb(line, (size_t)n, 0, NULL);
		const char *p = json_string_value(json_object_get(rec, "phone"));
		bool drop = p != NULL && strcmp(p, phone) == 0;
		json_decref(rec);
		if (drop) {
			removed++;
			continue;
		}
		if (write(out, line, (size_t)n) != n) {
			removed = -EIO;
			break;
		}
	}
	free(line);
	fclose(in);
	if (removed < 0 || fsync(out) < 0 || close(out) < 0 || rename(tmp, j->path) < 0) {
		int e = removed < 0 ? -removed : errno;
		unlink(tmp);
		free(tmp);
		return -e;
	}
	free(tmp);
	fsync_dir_of(j->path);
	/* Appends go to the new file from now on. */
	if ((fd = open(j->path, O_RDWR | O_APPEND | O_CLOEXEC | O_NOFOLLOW)) >= 0) {
		close(j->fd);
		j->fd = fd;
	}
	json_object_del(j->leads, phone);
	return removed;
}

static int
cmp_updated(const void *a, const void *b)
{
	const char *x = json_string_value(json_object_get(*(json_t *const *)a, "updated_at")) ?: "";
	const char *y = json_string_value(json_object_get(*(json_t *const *)b, "updated_at")) ?: "";
	int c = strcmp(y, x);

	if (c != 0)
		return c;
	return (int)(json_integer_value(json_object_get(*(json_t *const *)b, "id")) -
	    json_integer_value(json_object_get(*(json_t *const *)a, "id")));
}

json_t *
journal_leads(const struct journal *j, size_t limit)
{
	size_t n = json_object_size(j->leads), i = 0;
	json_t **v = xcalloc(n + 1, sizeof(*v)), *out = json_array(), *lead;
	const char *k;

	json_object_foreach(j->leads, k, lead) v[i++] = lead;
	qsort(v, n, sizeof(*v), cmp_updated);
	for (i = 0; i < n && i < limit; i++)
		json_array_append(out, v[i]);
	free(v);
	return out;
}

json_t *
journal_stats(const struct journal *j, unsigned days)
{
	json_t *byq = json_object(), *byday = json_object(), *lead;
	const char *k;
	char since[11];
	time_t t = time(NULL) - (time_t)days * 86400;
	struct tm tm;
	json_int_t total = 0;

	gmtime_r(&t, &tm);
	strftime(since, sizeof(since), "%Y-%m-%d", &tm);
	json_object_foreach(j->leads, k, lead)
	{
		const char *q = json_string_value(json_object_get(lead, "x_quality_score")) ?: "unknown";
		const char *c = json_string_value(json_object_get(lead, "created_at")) ?: "";
		char day[11];
		total++;
		json_object_set_new(byq, q, json_integer(json_integer_value(json_object_get(byq, q)) + 1));
		snprintf(day, sizeof(day), "%.10s", c);
		if (strcmp(day, since) >= 0)
			json_object_set_new(
			    byday, day, json_integer(json_integer_value(json_object_get(byday, day)) + 1));
	}
	return json_pack(
	    "{s:s, s:o, s:o, s:I}", "store", "journal", "by_quality", byq, "by_day", byday, "total", total);
}

size_t
journal_count(const struct journal *j)
{
	return json_object_size(j->leads);
}
