/*
 * Tests for odoo/chatter.c's pure parts: a chatter message's HTML as WhatsApp text (on hand-written bodies and on
 * the bodies real Odoo 17 and 19 stored, recorded in tests/data/odoo-chatter/raw), plain text as chatter HTML, and
 * the Message-Id that makes posting the conversation idempotent.
 */
#include "config.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "odoo/chatter.h"
#include "tests/tap.h"

static void
html_is(const char *html, const char *want, const char *name)
{
	char *got = chatter_html_text(html);
	is_str(got, want, "%s", name);
	free(got);
}

static void
test_html_text(void)
{
	html_is("<p>Hola Ana, ¿te va bien a las 10?<br>Saludos</p>", "Hola Ana, ¿te va bien a las 10?\nSaludos",
	    "the web client's Send message: a paragraph with a line break");
	html_is("<p>Uno</p><p>Dos</p>", "Uno\n\nDos", "paragraphs: a blank line between");
	html_is("<p>Hola <b>Ana</b>, <strong>hoy</strong> <i>sí</i> <em>no</em> <s>caro</s></p>",
	    "Hola *Ana*, *hoy* _sí_ _no_ ~caro~", "bold, italic, strike as WhatsApp marks them");
	html_is("<p>Mira <a href=\"https://muebles.example.com/sofa\">el sofá</a></p>",
	    "Mira el sofá (https://muebles.example.com/sofa)", "a link keeps its address");
	html_is("<p><a href=\"https://muebles.example.com\">https://muebles.example.com</a></p>",
	    "https://muebles.example.com", "a link whose text is its address: once");
	html_is("<p><a href=\"https://muebles.example.com\">muebles.example.com</a></p>", "muebles.example.com",
	    "a link whose text is its address without the scheme: once");
	html_is("<p>precio &lt; 500 &amp; &quot;envío&quot;&nbsp;gratis</p>", "precio < 500 & \"envío\"\xc2\xa0gratis",
	    "entities decoded");
	html_is("<ul><li>Sofá</li><li>Mesa</li></ul><ol><li>Pagar</li><li>Recoger</li></ol>",
	    "• Sofá\n• Mesa\n\n1. Pagar\n2. Recoger", "bullet and numbered lists");
	html_is("<p>  muchos\n   espacios\t aquí </p>", "muchos espacios aquí", "runs of blanks collapse");
	html_is("<div>Hola</div><div><br></div><div>Chao</div>", "Hola\n\nChao", "Odoo's editor's divs");
	html_is("<p><b></b>Hola</p>", "Hola", "an empty bold leaves no marks");
	html_is("<pre>a  b\nc</pre>", "```a  b\nc```", "preformatted text kept");
	html_is("", "", "empty body");
	html_is("<p>sin cerrar <b>negrita", "sin cerrar *negrita*", "unclosed tags are closed");
	html_is("<script>alert(1)</script><p>ok</p>", "ok", "no script text");
	html_is("<p>Línea 1<br/>Línea 2<br/><br/>Línea 3</p>", "Línea 1\nLínea 2\n\nLínea 3", "several line breaks");
}

static void
test_text_html(void)
{
	char *h = chatter_text_html("Hola <b>Ana</b> & \"tú\"\nsegunda línea");

	is_str(h, "<p>Hola &lt;b&gt;Ana&lt;/b&gt; &amp; &quot;tú&quot;<br>segunda línea</p>",
	    "a customer's text: escaped, its line breaks kept as <br>");
	free(h);
	h = chatter_text_html("");
	is_str(h, "<p></p>", "empty text");
	free(h);
}

static void
test_key(void)
{
	char a[64], b[64], c[64];

	chatter_key("+573001112233", "in", 1764700000000ULL, "Hola", a);
	chatter_key("+573001112233", "in", 1764700000000ULL, "Hola", b);
	chatter_key("+573001112233", "out", 1764700000000ULL, "Hola", c);
	is_str(a, b, "the same message: the same Message-Id (a post redone finds the first)");
	ok(strcmp(a, c) != 0, "another direction: another Message-Id");
	ok(strncmp(a, "<wa.", 4) == 0 && strstr(a, "@crmbridge>") != NULL && strlen(a) == 4 + 24 + 11,
	    "shaped as a Message-Id: <wa.<24 hex>@crmbridge> (%s)", a);
	ok(strstr(a, "3001112233") == NULL, "the phone number is not in it");
}

/* The bodies real Odoo stored for Laura's messages (the recording's search_read as the bot), as WhatsApp text. */
static void
test_recorded(void)
{
	const char *top = getenv("TOP_SRCDIR");
	char path[512];
	FILE *f;
	char *buf, *body;
	long n;
	json_t *rows;

	if (top == NULL) {
		ok(0, "TOP_SRCDIR is set (make check sets it): the recordings are read from there");
		return;
	}
	snprintf(
	    path, sizeof(path), "%s/tests/data/odoo-chatter/raw/19-q3-bot-watermark-search_read.response.json", top);
	f = fopen(path, "rb");
	if (f == NULL) {
		ok(0, "%s can be read", path);
		return;
	}
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = calloc(1, (size_t)n + 1);
	if (fread(buf, 1, (size_t)n, f) != (size_t)n)
		n = 0;
	fclose(f);
	body = strstr(buf, "\n\n"); /* after the recording's header */
	rows = json_loads(body != NULL ? body + 2 : "", 0, NULL);
	ok(json_array_size(rows) == 5, "five of Laura's messages recorded on Odoo 19");
	for (size_t i = 0; i < json_array_size(rows); i++) {
		json_t *r = json_array_get(rows, i);
		char *t = chatter_html_text(json_string_value(json_object_get(r, "body")));
		if (json_integer_value(json_object_get(r, "id")) == 81)
			is_str(t, "Hola *Ana*,\nte llamo mañana", "the HTML she sent, as WhatsApp text");
		if (json_integer_value(json_object_get(r, "id")) == 80)
			is_str(t, "<p>Hola <b>Ana</b>,<br>te llamo mañana</p>",
			    "a body Odoo stored escaped (sent without body_is_html): what she typed, literally");
		free(t);
	}
	json_decref(rows);
	free(buf);
}

int
main(void)
{
	crypto_init();
	test_html_text();
	test_text_html();
	test_key();
	test_recorded();
	return done_testing();
}
