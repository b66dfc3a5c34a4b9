/*
 * XML-RPC codec. Parsing uses libxml2 with XML_PARSE_NONET and without
 * entity substitution or DTD loading; a document with a DTD is refused
 * outright, so no entity can be defined, and input size and nesting depth
 * are capped before and during the walk. Output is built with libxml2's
 * escaping of text, so a value can never break out of its element.
 */
#include "config.h"

#include <errno.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlsave.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/base64.h"
#include "common/util.h"
#include "xmlrpc.h"

/* libxml2 takes const xmlChar * here; BAD_CAST would cast the const away. */
#define XC(s) ((const xmlChar *)(s))

/* ---- encoding ---- */

static int
encode_value(xmlNodePtr parent, const json_t *v, int depth)
{
	xmlNodePtr value = xmlNewChild(parent, NULL, XC("value"), NULL), n;
	char buf[64];
	size_t i;
	const char *key;
	json_t *item;

	if (value == NULL || depth > XMLRPC_MAX_DEPTH)
		return -1;
	switch (json_typeof(v)) {
	case JSON_STRING:
		/* xmlNewTextChild escapes &, < and > in the text. */
		n = xmlNewTextChild(value, NULL, XC("string"), XC(json_string_value(v)));
		return n != NULL ? 0 : -1;
	case JSON_INTEGER: {
		json_int_t x = json_integer_value(v);
		snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, x);
		n = xmlNewChild(value, NULL, XC(x >= -2147483648LL && x <= 2147483647LL ? "int" : "i8"), XC(buf));
		return n != NULL ? 0 : -1;
	}
	case JSON_REAL:
		snprintf(buf, sizeof(buf), "%.17g", json_real_value(v));
		return xmlNewChild(value, NULL, XC("double"), XC(buf)) != NULL ? 0 : -1;
	case JSON_TRUE:
	case JSON_FALSE:
		return xmlNewChild(value, NULL, XC("boolean"), XC(json_is_true(v) ? "1" : "0")) != NULL ? 0 : -1;
	case JSON_NULL: return xmlNewChild(value, NULL, XC("nil"), NULL) != NULL ? 0 : -1;
	case JSON_ARRAY:
		if ((n = xmlNewChild(value, NULL, XC("array"), NULL)) == NULL ||
		    (n = xmlNewChild(n, NULL, XC("data"), NULL)) == NULL)
			return -1;
		json_array_foreach((json_t *)(uintptr_t)v, i, item) if (encode_value(n, item, depth + 1) < 0) return -1;
		return 0;
	case JSON_OBJECT:
		if ((n = xmlNewChild(value, NULL, XC("struct"), NULL)) == NULL)
			return -1;
		json_object_foreach((json_t *)(uintptr_t)v, key, item)
		{
			xmlNodePtr m = xmlNewChild(n, NULL, XC("member"), NULL);
			if (m == NULL || xmlNewTextChild(m, NULL, XC("name"), XC(key)) == NULL ||
			    encode_value(m, item, depth + 1) < 0)
				return -1;
		}
		return 0;
	}
	return -1;
}

char *
xmlrpc_encode_call(const char *method, const json_t *params)
{
	xmlDocPtr doc = xmlNewDoc(XC("1.0"));
	xmlNodePtr root, ps;
	xmlChar *out = NULL;
	char *copy = NULL;
	int len = 0;
	size_t i;
	json_t *p;

	if (doc == NULL || !json_is_array(params))
		goto out;
	root = xmlNewNode(NULL, XC("methodCall"));
	xmlDocSetRootElement(doc, root);
	if (xmlNewTextChild(root, NULL, XC("methodName"), XC(method)) == NULL ||
	    (ps = xmlNewChild(root, NULL, XC("params"), NULL)) == NULL)
		goto out;
	json_array_foreach((json_t *)(uintptr_t)params, i, p)
	{
		xmlNodePtr param = xmlNewChild(ps, NULL, XC("param"), NULL);
		if (param == NULL || encode_value(param, p, 0) < 0)
			goto out;
	}
	xmlDocDumpMemoryEnc(doc, &out, &len, "UTF-8");
	if (out != NULL)
		copy = strndup((const char *)out, (size_t)len);
out:
	xmlFree(out);
	xmlFreeDoc(doc);
	return copy;
}

/* ---- decoding ---- */

static xmlNodePtr
first_element(xmlNodePtr n)
{
	for (; n != NULL; n = n->next)
		if (n->type == XML_ELEMENT_NODE)
			return n;
	return NULL;
}

static bool
is(xmlNodePtr n, const char *name)
{
	return n != NULL && n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

/* The text of n, or "" (caller frees with xmlFree). */
static xmlChar *
text_of(xmlNodePtr n)
{
	xmlChar *t = xmlNodeGetContent(n);

	return t != NULL ? t : xmlStrdup(XC(""));
}

static json_t *decode_value(xmlNodePtr value, int depth, const char **why);

static json_t *
decode_typed(xmlNodePtr t, int depth, const char **why)
{
	const char *name = (const char *)t->name;
	json_t *r = NULL;
	xmlChar *s;
	long long ll;

	if (strcmp(name, "string") == 0) {
		s = text_of(t);
		r = json_string((const char *)s);
		if (r == NULL)
			*why = "a string that is not UTF-8";
		xmlFree(s);
	} else if (strcmp(name, "int") == 0 || strcmp(name, "i4") == 0 || strcmp(name, "i8") == 0) {
		s = text_of(t);
		{
			const char *p = (const char *)s;
			while (*p == ' ' || *p == '\n' || *p == '\t')
				p++;
			if (*p == '+')
				p++;
			if (parse_ll(p, strcmp(name, "i8") == 0 ? INT64_MIN : -2147483648LL,
			        strcmp(name, "i8") == 0 ? INT64_MAX : 2147483647LL, &ll) == 0)
				r = json_integer(ll);
			else
				*why = "an integer out of range or malformed";
		}
		xmlFree(s);
	} else if (strcmp(name, "boolean") == 0) {
		s = text_of(t);
		if (strcmp((const char *)s, "1") == 0)
			r = json_true();
		else if (strcmp((const char *)s, "0") == 0)
			r = json_false();
		else
			*why = "a boolean that is not 0 or 1";
		xmlFree(s);
	} else if (strcmp(name, "double") == 0) {
		char *end;
		double d;
		s = text_of(t);
		errno = 0;
		d = strtod((const char *)s, &end);
		if (end != (char *)s && *end == '\0' && errno == 0)
			r = json_real(d);
		else
			*why = "a malformed double";
		xmlFree(s);
	} else if (strcmp(name, "dateTime.iso8601") == 0) {
		/* Kept as the string Odoo sent (YYYYMMDDTHH:MM:SS, UTC). */
		s = text_of(t);
		r = json_string((const char *)s);
		xmlFree(s);
	} else if (strcmp(name, "base64") == 0) {
		size_t n;
		char *buf;
		long got;
		s = text_of(t);
		n = strlen((const char *)s);
		if ((buf = malloc(n * 3 / 4 + 4)) != NULL) {
			got = base64_decode((const char *)s, n, buf);
			if (got >= 0)
				r = json_stringn_nocheck(buf, (size_t)got);
			else
				*why = "malformed base64";
			free(buf);
		}
		xmlFree(s);
	} else if (strcmp(name, "nil") == 0) {
		r = json_null();
	} else if (strcmp(name, "array") == 0) {
		xmlNodePtr data = first_element(t->children), v;
		if (!is(data, "data")) {
			*why = "an array without <data>";
			return NULL;
		}
		r = json_array();
		for (v = first_element(data->children); v != NULL; v = first_element(v->next)) {
			json_t *item;
			if (!is(v, "value") || (item = decode_value(v, depth + 1, why)) == NULL) {
				if (*why == NULL)
					*why = "an array item that is not a <value>";
				json_decref(r);
				return NULL;
			}
			json_array_append_new(r, item);
		}
	} else if (strcmp(name, "struct") == 0) {
		xmlNodePtr m;
		r = json_object();
		for (m = first_element(t->children); m != NULL; m = first_element(m->next)) {
			xmlNodePtr nm = first_element(m->children), v = nm ? first_element(nm->next) : NULL;
			xmlChar *key;
			json_t *item;
			if (!is(m, "member") || !is(nm, "name") || !is(v, "value")) {
				*why = "a struct member without <name> and <value>";
				json_decref(r);
				return NULL;
			}
			if ((item = decode_value(v, depth + 1, why)) == NULL) {
				json_decref(r);
				return NULL;
			}
			key = text_of(nm);
			if (json_object_set_new(r, (const char *)key, item) < 0) {
				*why = "a member name that is not UTF-8";
				xmlFree(key);
				json_decref(r);
				return NULL;
			}
			xmlFree(key);
		}
	} else {
		*why = "an unknown XML-RPC type";
	}
	return r;
}

static json_t *
decode_value(xmlNodePtr value, int depth, const char **why)
{
	xmlNodePtr t;
	xmlChar *s;
	json_t *r;

	if (depth > XMLRPC_MAX_DEPTH) {
		*why = "nested too deeply";
		return NULL;
	}
	if ((t = first_element(value->children)) == NULL) {
		/* An untagged value is a string. */
		s = text_of(value);
		r = json_string((const char *)s);
		if (r == NULL)
			*why = "a string that is not UTF-8";
		xmlFree(s);
		return r;
	}
	return decode_typed(t, depth, why);
}

/* Parses XML safely; NULL with why on refusal. */
static xmlDocPtr
parse(const char *body, size_t len, const char **why)
{
	xmlDocPtr doc;

	if (len > XMLRPC_MAX_BODY) {
		*why = "larger than 8 MiB";
		return NULL;
	}
	if (len > INT32_MAX) {
		*why = "too large";
		return NULL;
	}
	/* No network, no entity substitution, no DTD loading; errors are ours to report. */
	doc = xmlReadMemory(body, (int)len, NULL, "UTF-8", XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (doc == NULL) {
		*why = "not well-formed XML";
		return NULL;
	}
	if (doc->intSubset != NULL || doc->extSubset != NULL) {
		*why = "a DTD is not allowed";
		xmlFreeDoc(doc);
		return NULL;
	}
	return doc;
}

void
xmlrpc_fault_clear(struct xmlrpc_fault *f)
{
	free(f->string);
	memset(f, 0, sizeof(*f));
}

/* The last non-empty line of a fault string: "ValueError: Invalid field ..." after a traceback. */
static void
last_line(const char *s, char *out, size_t size)
{
	const char *end = s + strlen(s), *a, *b = end;

	while (b > s && (b[-1] == '\n' || b[-1] == ' ' || b[-1] == '\r'))
		b--;
	a = b;
	while (a > s && a[-1] != '\n')
		a--;
	while (a < b && *a == ' ')
		a++;
	snprintf(out, size, "%.*s", (int)(b - a), a);
}

int
xmlrpc_decode_response(const char *body, size_t len, json_t **result, struct xmlrpc_fault *fault, const char **why)
{
	xmlDocPtr doc;
	xmlNodePtr root, n, v;
	int r = -1;

	*result = NULL;
	memset(fault, 0, sizeof(*fault));
	*why = NULL;
	if ((doc = parse(body, len, why)) == NULL)
		return -1;
	root = xmlDocGetRootElement(doc);
	if (!is(root, "methodResponse") || (n = first_element(root->children)) == NULL) {
		*why = "not a methodResponse";
		goto out;
	}
	if (is(n, "params")) {
		xmlNodePtr p = first_element(n->children);
		if (!is(p, "param") || !is(v = first_element(p->children), "value")) {
			*why = "a response without <param><value>";
			goto out;
		}
		if ((*result = decode_value(v, 0, why)) != NULL)
			r = 0;
	} else if (is(n, "fault")) {
		json_t *f;
		const char *fs;
		if (!is(v = first_element(n->children), "value") || (f = decode_value(v, 0, why)) == NULL) {
			if (*why == NULL)
				*why = "a fault without a value";
			goto out;
		}
		if (!json_is_integer(json_object_get(f, "faultCode")) ||
		    (fs = json_string_value(json_object_get(f, "faultString"))) == NULL) {
			*why = "a fault without faultCode and faultString";
			json_decref(f);
			goto out;
		}
		fault->code = (int)json_integer_value(json_object_get(f, "faultCode"));
		fault->string = strdup(fs);
		last_line(fs, fault->message, sizeof(fault->message));
		json_decref(f);
		r = fault->string != NULL ? 1 : -1;
	} else {
		*why = "neither params nor fault";
	}
out:
	if (r < 0 && *why == NULL)
		*why = "malformed";
	xmlFreeDoc(doc);
	return r;
}

int
xmlrpc_decode_call(const char *body, size_t len, char **method, json_t **params, const char **why)
{
	xmlDocPtr doc;
	xmlNodePtr root, n, p;
	xmlChar *m;
	int r = -1;

	*method = NULL;
	*params = NULL;
	*why = NULL;
	if ((doc = parse(body, len, why)) == NULL)
		return -1;
	root = xmlDocGetRootElement(doc);
	if (!is(root, "methodCall") || !is(n = first_element(root->children), "methodName")) {
		*why = "not a methodCall";
		goto out;
	}
	m = text_of(n);
	*method = strdup((const char *)m);
	xmlFree(m);
	*params = json_array();
	n = first_element(n->next);
	if (is(n, "params")) {
		for (p = first_element(n->children); p != NULL; p = first_element(p->next)) {
			xmlNodePtr v = first_element(p->children);
			json_t *item;
			if (!is(p, "param") || !is(v, "value") || (item = decode_value(v, 0, why)) == NULL) {
				if (*why == NULL)
					*why = "a param without a value";
				goto out;
			}
			json_array_append_new(*params, item);
		}
	}
	r = 0;
out:
	if (r < 0) {
		free(*method);
		*method = NULL;
		json_decref(*params);
		*params = NULL;
		if (*why == NULL)
			*why = "malformed";
	}
	xmlFreeDoc(doc);
	return r;
}
