/*
 * The lead's chatter as the WhatsApp inbox: see chatter.h. What real Odoo 17
 * and 19 do with each call here was recorded in tests/data/odoo-chatter/
 * (FINDINGS.md): a mail.message created directly notifies nobody (17 and 19),
 * message_post escapes a body without body_is_html, a note posted with
 * partner_ids notifies those partners only, and the watermark query works for
 * a user with Sales "All Documents".
 */
#include "config.h"

#include <libxml/HTMLparser.h>
#include <libxml/tree.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "chatter.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "lead-private.h"

/* ---- HTML to WhatsApp text ---- */

struct tbuf {
	char *s;
	size_t len, cap;
	int breaks; /* line breaks wanted before the next text: 1 a line, 2 a paragraph */
	bool space; /* a blank is wanted before the next text */
	int list_n[8]; /* per list depth: 0 for a bullet list, else the next number */
	int depth;
	int pre;
};

static void
tb_raw(struct tbuf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->s = xreallocarray(b->s, b->cap, 1);
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

/* Writes what is pending (breaks, a blank), then s. */
static void
tb_put(struct tbuf *b, const char *s, size_t n)
{
	if (n == 0)
		return;
	if (b->len > 0 && b->breaks > 0) {
		while (b->len > 0 && b->s[b->len - 1] == ' ')
			b->len--;
		tb_raw(b, "\n\n", (size_t)(b->breaks > 1 ? 2 : 1));
	} else if (b->len > 0 && b->space && b->s[b->len - 1] != ' ' && b->s[b->len - 1] != '\n')
		tb_raw(b, " ", 1);
	b->breaks = 0;
	b->space = false;
	tb_raw(b, s, n);
}

static void
tb_break(struct tbuf *b, int n)
{
	if (b->breaks < n)
		b->breaks = n;
}

/* Text: runs of blanks become one (inside <pre> kept as they are). */
static void
tb_text(struct tbuf *b, const char *t)
{
	while (*t != '\0') {
		size_t n;
		if (b->pre > 0) {
			tb_put(b, t, strlen(t));
			return;
		}
		if (strchr(" \t\r\n\f", *t) != NULL) {
			b->space = true;
			t++;
			continue;
		}
		n = strcspn(t, " \t\r\n\f");
		tb_put(b, t, n);
		t += n;
	}
}

static bool
tag_is(const xmlNode *n, const char *name)
{
	return n->name != NULL && strcasecmp((const char *)n->name, name) == 0;
}

static bool
is_block(const xmlNode *n)
{
	static const char *const blocks[] = {"p", "div", "blockquote", "h1", "h2", "h3", "h4", "h5", "h6", "table",
	    "tr", "section", "article", "header", "footer", "hr", NULL};
	for (size_t i = 0; blocks[i] != NULL; i++)
		if (tag_is(n, blocks[i]))
			return true;
	return false;
}

/* The element's text as the parser gives it, for comparing a link's text with its address. */
static char *
node_text(xmlNode *n)
{
	xmlChar *c = xmlNodeGetContent(n);
	char *s = xstrdup(c != NULL ? (const char *)c : "");
	xmlFree(c);
	return s;
}

static void walk(struct tbuf *b, xmlNode *n);

static void
wrap(struct tbuf *b, xmlNode *n, const char *mark)
{
	size_t before;

	tb_put(b, mark, strlen(mark));
	before = b->len;
	walk(b, n->children);
	if (b->len == before) /* nothing inside: no lone marks */
		b->len -= strlen(mark);
	else
		tb_raw(b, mark, strlen(mark));
	b->s[b->len] = '\0';
}

static void
element(struct tbuf *b, xmlNode *n)
{
	if (tag_is(n, "br")) {
		/* Two in a row make an empty line. */
		b->breaks = b->breaks >= 1 ? 2 : 1;
		if (b->len == 0)
			b->breaks = 0;
		return;
	}
	if (tag_is(n, "script") || tag_is(n, "style") || tag_is(n, "head") || tag_is(n, "title"))
		return;
	if (tag_is(n, "b") || tag_is(n, "strong")) {
		wrap(b, n, "*");
	} else if (tag_is(n, "i") || tag_is(n, "em")) {
		wrap(b, n, "_");
	} else if (tag_is(n, "s") || tag_is(n, "strike") || tag_is(n, "del")) {
		wrap(b, n, "~");
	} else if (tag_is(n, "pre")) {
		tb_break(b, 2);
		b->pre++;
		wrap(b, n, "```");
		b->pre--;
		tb_break(b, 2);
	} else if (tag_is(n, "code")) {
		wrap(b, n, "`");
	} else if (tag_is(n, "a")) {
		xmlChar *href = xmlGetProp(n, (const xmlChar *)"href");
		char *text = node_text(n);
		walk(b, n->children);
		if (href != NULL &&
		    (strncmp((const char *)href, "http://", 7) == 0 ||
		        strncmp((const char *)href, "https://", 8) == 0)) {
			/* "text (url)", or the address alone when the text is it (with or without its scheme). */
			const char *h = (const char *)href, *bare = strstr(h, "://") + 3;
			if (*text == '\0')
				tb_put(b, h, strlen(h));
			else if (strcmp(text, h) != 0 && strcmp(text, bare) != 0) {
				b->space = true;
				tb_put(b, "(", 1);
				tb_raw(b, h, strlen(h));
				tb_raw(b, ")", 1);
			}
		} else if (href != NULL && strncmp((const char *)href, "mailto:", 7) == 0 && *text == '\0')
			tb_put(b, (const char *)href + 7, strlen((const char *)href + 7));
		xmlFree(href);
		free(text);
	} else if (tag_is(n, "ul") || tag_is(n, "ol")) {
		tb_break(b, b->depth > 0 ? 1 : 2);
		if (b->depth < 8)
			b->list_n[b->depth] = tag_is(n, "ol") ? 1 : 0;
		b->depth++;
		walk(b, n->children);
		b->depth--;
		tb_break(b, b->depth > 0 ? 1 : 2);
	} else if (tag_is(n, "li")) {
		char mark[24];
		int d = b->depth > 0 ? b->depth - 1 : 0;
		tb_break(b, 1);
		if (d < 8 && b->list_n[d] > 0)
			snprintf(mark, sizeof(mark), "%*s%d. ", 2 * d, "", b->list_n[d]++);
		else
			snprintf(mark, sizeof(mark), "%*s• ", 2 * d, "");
		tb_put(b, mark, strlen(mark));
		b->space = false;
		walk(b, n->children);
		tb_break(b, 1);
	} else if (is_block(n)) {
		tb_break(b, 2);
		walk(b, n->children);
		tb_break(b, 2);
	} else if (tag_is(n, "td") || tag_is(n, "th")) {
		b->space = true;
		walk(b, n->children);
		b->space = true;
	} else {
		walk(b, n->children);
	}
}

static void
walk(struct tbuf *b, xmlNode *n)
{
	for (; n != NULL; n = n->next) {
		if (n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE)
			tb_text(b, (const char *)n->content);
		else if (n->type == XML_ELEMENT_NODE)
			element(b, n);
	}
}

char *
chatter_html_text(const char *html)
{
	struct tbuf b = {0};
	htmlDocPtr doc;

	tb_raw(&b, "", 0);
	if (html == NULL || *html == '\0')
		return b.s;
	/* Odoo's bodies are sanitized HTML; still no network and no errors printed. */
	doc = htmlReadMemory(html, (int)strnlen(html, 1 << 20), NULL, "UTF-8",
	    HTML_PARSE_NONET | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING);
	if (doc == NULL)
		return b.s;
	/* With <html><body> implied: without, libxml2 hangs the second top-level element under the first. */
	walk(&b, doc->children);
	xmlFreeDoc(doc);
	while (b.len > 0 && strchr(" \n", b.s[b.len - 1]) != NULL)
		b.s[--b.len] = '\0';
	return b.s;
}

char *
chatter_text_html(const char *text)
{
	char *esc = html_escape(text != NULL ? text : ""), *out, *o;
	size_t lines = 1;

	for (const char *p = esc; *p != '\0'; p++)
		lines += *p == '\n';
	out = o = xmalloc(strlen(esc) + 4 * lines + 8);
	o = stpcpy(o, "<p>");
	for (const char *p = esc; *p != '\0'; p++) {
		if (*p == '\n')
			o = stpcpy(o, "<br>");
		else if (*p != '\r')
			*o++ = *p;
	}
	stpcpy(o, "</p>");
	free(esc);
	return out;
}

void
chatter_key(const char *phone, const char *dir, uint64_t t_ms, const char *text, char key[64])
{
	char *s, hex[65];
	int n;

	n = xasprintf(&s, "%s|%s|%llu|%s", phone, dir, (unsigned long long)t_ms, text != NULL ? text : "");
	sha256_hex(s, (size_t)n, hex);
	free(s);
	snprintf(key, 64, "<wa.%.24s@crmbridge>", hex);
}

/* ---- subtypes ---- */

struct probe {
	struct lead_ctx *x;
	void (*then)(struct probe *p, const struct odoo_error *e);
	void *arg;
};

static void on_subtype(json_t *res, const struct odoo_error *e, void *arg);
static void on_self(json_t *res, const struct odoo_error *e, void *arg);

static void
probe_next(struct probe *p)
{
	struct odoo_info info;

	if (p->x->self_uid == 0) {
		/*
		 * Who crmbridge is, for "not our own messages". XML-RPC's login answers the uid; JSON-2 is called with a
		 * key and never says it (a query with create_uid != 0 then finds nothing at all on real 19.0).
		 */
		odoo_get_info(p->x->o, &info);
		if (info.uid > 0 && info.protocol == ODOO_XMLRPC) {
			p->x->self_uid = info.uid;
		} else {
			odoo_call(p->x->o, "res.users", "context_get", json_array(), NULL, on_self, p);
			return;
		}
	}
	if (p->x->note_subtype == 0 || p->x->comment_subtype == 0) {
		odoo_call(p->x->o, "ir.model.data", "check_object_reference",
		    json_pack("[s, s]", "mail", p->x->note_subtype == 0 ? "mt_note" : "mt_comment"), NULL, on_subtype,
		    p);
		return;
	}
	p->then(p, NULL);
}

static void
on_self(json_t *res, const struct odoo_error *e, void *arg)
{
	struct probe *p = arg;
	int uid = (int)json_integer_value(json_object_get(res, "uid"));

	if (e->kind != ODOO_OK || uid <= 0) {
		struct odoo_error f = *e;
		if (e->kind == ODOO_OK) {
			f.kind = ODOO_CONFIG;
			snprintf(f.message, sizeof(f.message),
			    "res.users.context_get gave no uid: who crmbridge is is unknown");
		}
		p->then(p, &f);
		return;
	}
	p->x->self_uid = uid;
	probe_next(p);
}

static void
on_subtype(json_t *res, const struct odoo_error *e, void *arg)
{
	struct probe *p = arg;
	int id = (int)json_integer_value(json_array_get(res, 1));

	if (e->kind != ODOO_OK || id <= 0) {
		struct odoo_error f = *e;
		if (e->kind == ODOO_OK) {
			f.kind = ODOO_CONFIG;
			snprintf(f.message, sizeof(f.message), "mail.mt_note or mail.mt_comment not found");
		}
		p->then(p, &f);
		return;
	}
	if (p->x->note_subtype == 0)
		p->x->note_subtype = id;
	else
		p->x->comment_subtype = id;
	probe_next(p);
}

/* ---- posting ---- */

struct cpost {
	struct probe p;
	int lead_id, notify_partner;
	size_t n, next;
	struct chatter_entry *e; /* copies */
	bool *present;
	unsigned posted, batch;
	chatter_done_fn done;
	void *arg;
};

static void post_next(struct cpost *c);

static void
cpost_end(struct cpost *c, const struct odoo_error *e)
{
	struct odoo_error ok = {0};

	c->done(e != NULL ? e : &ok, c->posted, c->arg);
	for (size_t i = 0; i < c->n; i++) {
		free((void *)(uintptr_t)c->e[i].key);
		free((void *)(uintptr_t)c->e[i].text);
		free((void *)(uintptr_t)c->e[i].author);
	}
	free(c->e);
	free(c->present);
	free(c);
}

static void
on_posted(json_t *res, const struct odoo_error *e, void *arg)
{
	struct cpost *c = arg;

	if (e->kind != ODOO_OK) {
		cpost_end(c, e);
		return;
	}
	c->posted += c->batch;
	c->next += c->batch;
	post_next(c);
}

static json_t *
entry_vals(const struct cpost *c, const struct chatter_entry *en)
{
	char *html = chatter_text_html(en->text);
	json_t *v = json_pack("{s:s, s:i, s:s, s:s, s:i, s:s}", "model", "crm.lead", "res_id", c->lead_id, "body", html,
	    "message_type", "comment", "subtype_id", c->p.x->note_subtype, "message_id", en->key);

	free(html);
	if (en->t_ms > 0) {
		/* Shown as said on WhatsApp, not when posted (the chatter orders by id: in the order they were said). */
		char date[24];
		time_t secs = (time_t)(en->t_ms / 1000);
		struct tm tm;
		gmtime_r(&secs, &tm);
		strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &tm);
		json_object_set_new(v, "date", json_string(date));
	}
	if (en->author != NULL) {
		/* Not a partner: nobody can be written to by mistake, and the chatter shows the label. */
		json_object_set_new(v, "author_id", json_false());
		json_object_set_new(v, "email_from", json_string(en->author));
	}
	return v;
}

static void
post_next(struct cpost *c)
{
	json_t *list;

	while (c->next < c->n && c->present[c->next])
		c->next++;
	if (c->next >= c->n) {
		cpost_end(c, NULL);
		return;
	}
	if (c->e[c->next].notify && c->notify_partner > 0) {
		/* message_post notifies its partner_ids as each chose (inbox or e-mail); a note no follower. */
		json_t *kw = entry_vals(c, &c->e[c->next]);
		json_object_del(kw, "model");
		json_object_del(kw, "res_id");
		json_object_del(kw, "subtype_id");
		json_object_del(kw, "date");
		json_object_set_new(kw, "subtype_xmlid", json_string("mail.mt_note"));
		if (strchr(c->e[c->next].text, '\n') != NULL)
			/* Line breaks need HTML, and body_is_html logs a warning in Odoo's log at each call (17, 19). */
			json_object_set_new(kw, "body_is_html", json_true());
		else
			/* A line of text: Odoo escapes it and makes it a paragraph itself (recorded on 17 and 19). */
			json_object_set_new(kw, "body", json_string(c->e[c->next].text));
		json_object_set_new(kw, "partner_ids", json_pack("[i]", c->notify_partner));
		/* 17 makes the poster a follower at every message_post (19 at a Send message): then each of the
		 * salesperson's messages would e-mail crmbridge's user. Seen on real 17.0 and 19.0. */
		json_object_set_new(kw, "context", json_pack("{s:b}", "mail_create_nosubscribe", 1));
		c->batch = 1;
		odoo_call(c->p.x->o, "crm.lead", "message_post", json_pack("[[i]]", c->lead_id), kw, on_posted, c);
		return;
	}
	/* A run of entries nobody is told of: one create (a mail.message created directly notifies nobody). */
	list = json_array();
	for (c->batch = 0; c->next + c->batch < c->n; c->batch++) {
		const struct chatter_entry *en = &c->e[c->next + c->batch];
		if (c->present[c->next + c->batch])
			break;
		if (en->notify && c->notify_partner > 0)
			break;
		json_array_append_new(list, entry_vals(c, en));
	}
	odoo_call(c->p.x->o, "mail.message", "create", json_pack("[o]", list), NULL, on_posted, c);
}

static void
on_present(json_t *res, const struct odoo_error *e, void *arg)
{
	struct cpost *c = arg;
	size_t i, j;
	json_t *m;

	if (e->kind != ODOO_OK) {
		cpost_end(c, e);
		return;
	}
	json_array_foreach(res, i, m)
	{
		const char *id = json_string_value(json_object_get(m, "message_id"));
		for (j = 0; id != NULL && j < c->n; j++)
			if (strcmp(c->e[j].key, id) == 0)
				c->present[j] = true;
	}
	post_next(c);
}

static void
cpost_probed(struct probe *p, const struct odoo_error *e)
{
	struct cpost *c = (struct cpost *)p;
	json_t *keys = json_array();

	if (e != NULL) {
		json_decref(keys);
		cpost_end(c, e);
		return;
	}
	for (size_t i = 0; i < c->n; i++)
		json_array_append_new(keys, json_string(c->e[i].key));
	odoo_call(c->p.x->o, "mail.message", "search_read",
	    json_pack("[[[s, s, o], [s, s, s], [s, s, i]]]", "message_id", "in", keys, "model", "=", "crm.lead",
	        "res_id", "=", c->lead_id),
	    json_pack("{s:[s]}", "fields", "message_id"), on_present, c);
}

void
chatter_post(struct lead_ctx *x, int lead_id, const struct chatter_entry *entries, size_t n, int notify_partner,
    chatter_done_fn done, void *arg)
{
	struct cpost *c = xcalloc(1, sizeof(*c));

	c->p.x = x;
	c->p.then = cpost_probed;
	c->lead_id = lead_id;
	c->notify_partner = notify_partner;
	c->n = n;
	c->e = xcalloc(n + 1, sizeof(*c->e));
	c->present = xcalloc(n + 1, sizeof(*c->present));
	for (size_t i = 0; i < n; i++) {
		c->e[i].key = xstrdup(entries[i].key);
		c->e[i].text = xstrdup(entries[i].text != NULL ? entries[i].text : "");
		c->e[i].author = entries[i].author != NULL ? xstrdup(entries[i].author) : NULL;
		c->e[i].notify = entries[i].notify;
		c->e[i].t_ms = entries[i].t_ms;
	}
	c->done = done;
	c->arg = arg;
	if (n == 0) {
		cpost_end(c, NULL);
		return;
	}
	probe_next(&c->p);
}

/* ---- reading ---- */

struct cread {
	struct probe p;
	long long after;
	unsigned limit;
	int lead_id;
	chatter_list_fn list;
	chatter_id_fn id;
	chatter_phone_fn phone;
	chatter_names_fn names;
	bool whatsapp;
	void *arg;
};

static void
on_since(json_t *res, const struct odoo_error *e, void *arg)
{
	struct cread *r = arg;
	json_t *out = json_array(), *m;
	size_t i;

	json_array_foreach(e->kind == ODOO_OK ? res : NULL, i, m)
	{
		json_t *st = json_object_get(m, "subtype_id"), *au = json_object_get(m, "author_id");
		json_t *att = json_object_get(m, "attachment_ids");
		int sub = (int)json_integer_value(json_is_array(st) ? json_array_get(st, 0) : st);
		json_t *o = json_pack("{s:O, s:O, s:s, s:s, s:i, s:s, s:o, s:s}", "id", json_object_get(m, "id"),
		    "res_id", json_object_get(m, "res_id"), "body", json_string_value(json_object_get(m, "body")) ?: "",
		    "subtype", sub == r->p.x->comment_subtype ? "comment" : "note", "author_id",
		    (int)json_integer_value(json_array_get(au, 0)), "author",
		    json_string_value(json_array_get(au, 1)) ?: "", "attachment_ids",
		    json_is_array(att) ? json_incref(att) : json_array(), "date",
		    json_string_value(json_object_get(m, "date")) ?: "");
		if (o != NULL)
			json_array_append_new(out, o);
	}
	r->list(e, e->kind == ODOO_OK ? out : NULL, r->arg);
	json_decref(out);
	free(r);
}

static void
since_probed(struct probe *p, const struct odoo_error *e)
{
	struct cread *r = (struct cread *)p;

	if (e != NULL) {
		r->list(e, NULL, r->arg);
		free(r);
		return;
	}
	/*
	 * One query whatever the number of leads. The subtype tells "Send message" from "Log note" (is_internal
	 * does not: it is a separate flag); create_uid, unlike author_id, cannot be set by the poster.
	 */
	/*
	 * Ids are taken at insert, not at commit: a message whose transaction commits after a later one's would fall
	 * behind the mark. So the last two minutes' messages up to 200 ids back are read again (the caller skips
	 * what it dealt with; storing one again is a no-op).
	 */
	time_t back = time(NULL) - 120;
	struct tm tm;
	char since[24];
	gmtime_r(&back, &tm);
	strftime(since, sizeof(since), "%Y-%m-%d %H:%M:%S", &tm);
	odoo_call(r->p.x->o, "mail.message", "search_read",
	    json_pack("[[s, [s, s, I], s, [s, s, I], [s, s, s], [s, s, s], [s, s, s], [s, s, [i, i]], [s, s, i]]]", "|",
	        "id", ">", (json_int_t)r->after, "&", "id", ">", (json_int_t)(r->after > 200 ? r->after - 200 : 0),
	        "date", ">=", since, "model", "=", "crm.lead", "message_type", "=", "comment", "subtype_id", "in",
	        r->p.x->comment_subtype, r->p.x->note_subtype, "create_uid", "!=", r->p.x->self_uid),
	    json_pack("{s:[s, s, s, s, s, s, s], s:s, s:i}", "fields", "id", "res_id", "body", "subtype_id",
	        "author_id", "attachment_ids", "date", "order", "id asc", "limit", (int)r->limit),
	    on_since, r);
}

void
chatter_since(struct lead_ctx *x, long long after_id, unsigned limit, chatter_list_fn done, void *arg)
{
	struct cread *r = xcalloc(1, sizeof(*r));

	r->p.x = x;
	r->p.then = since_probed;
	r->after = after_id;
	r->limit = limit;
	r->list = done;
	r->arg = arg;
	probe_next(&r->p);
}

static void
on_last(json_t *res, const struct odoo_error *e, void *arg)
{
	struct cread *r = arg;

	r->id(e, e->kind == ODOO_OK ? json_integer_value(json_object_get(json_array_get(res, 0), "id")) : 0, r->arg);
	free(r);
}

void
chatter_last_id(struct lead_ctx *x, chatter_id_fn done, void *arg)
{
	struct cread *r = xcalloc(1, sizeof(*r));

	r->id = done;
	r->arg = arg;
	/*
	 * On leads only: Odoo applies the limit before dropping what the user may not read, so the newest message of
	 * the whole database (a chat between two users) could make the answer empty, and the mark 0.
	 */
	odoo_call(x->o, "mail.message", "search_read", json_pack("[[[s, s, s]]]", "model", "=", "crm.lead"),
	    json_pack("{s:[s], s:s, s:i}", "fields", "id", "order", "id desc", "limit", 1), on_last, r);
}

static void
on_lead_phone(json_t *res, const struct odoo_error *e, void *arg)
{
	struct cread *r = arg;
	json_t *rec = json_array_get(res, 0);
	static const char *const fields[] = {"phone_sanitized", "phone", "mobile", NULL};
	char e164[17] = "";
	const char *src = json_string_value(json_array_get(json_object_get(rec, "source_id"), 1));

	r->whatsapp = src != NULL && r->p.x->source != NULL && strcasecmp(src, r->p.x->source) == 0;
	for (size_t i = 0; e->kind == ODOO_OK && fields[i] != NULL && e164[0] == '\0'; i++) {
		const char *v = json_string_value(json_object_get(rec, fields[i]));
		struct odoo_error pe;
		if (v != NULL && *v != '\0' && lead_e164(r->p.x, v, e164, &pe) < 0)
			e164[0] = '\0';
	}
	r->phone(e, e164, r->whatsapp, r->arg);
	free(r);
}

void
chatter_lead_phone(struct lead_ctx *x, int lead_id, chatter_phone_fn done, void *arg)
{
	struct cread *r = xcalloc(1, sizeof(*r));
	json_t *fields = json_pack("[s, s, s]", "phone_sanitized", "phone", "source_id");

	if (x->has_mobile)
		json_array_append_new(fields, json_string("mobile"));
	r->p.x = x;
	r->phone = done;
	r->arg = arg;
	odoo_call(x->o, "crm.lead", "read", json_pack("[[i], o]", lead_id, fields),
	    json_pack("{s:{s:b}}", "context", "active_test", 0), on_lead_phone, r);
}

static void
on_names(json_t *res, const struct odoo_error *e, void *arg)
{
	struct cread *r = arg;
	char *names = xstrdup("");
	size_t i;
	json_t *a;

	json_array_foreach(e->kind == ODOO_OK ? res : NULL, i, a)
	{
		char *n;
		xasprintf(&n, "%s%s%s", names, i > 0 ? ", " : "", json_string_value(json_object_get(a, "name")) ?: "?");
		free(names);
		names = n;
	}
	r->names(e, names, r->arg);
	free(names);
	free(r);
}

void
chatter_attachment_names(struct lead_ctx *x, const json_t *ids, chatter_names_fn done, void *arg)
{
	struct cread *r = xcalloc(1, sizeof(*r));

	r->names = done;
	r->arg = arg;
	odoo_call(x->o, "ir.attachment", "read", json_pack("[O, [s]]", ids, "name"), NULL, on_names, r);
}

int
chatter_self_uid(const struct lead_ctx *x)
{
	return x != NULL ? x->self_uid : 0;
}
