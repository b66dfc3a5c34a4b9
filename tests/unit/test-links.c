/*
 * The link detector that keeps a model-written reply from carrying links
 * (classifier.allow_links = no): every form an attacker got past the old
 * case-sensitive strstr, sentences in Spanish, English and Portuguese that
 * are not links, and the configured URLs with their look-alikes.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "classifier/links.h"
#include "tests/tap.h"

static const char *const shop[] = {"https://cal.com/muebles/visita", "https://muebles.example.com/pagar", NULL};
#define NSHOP (sizeof(shop) / sizeof(shop[0]))

/* Each of these must be refused with no link allowed and with the shop's links allowed. */
static const char *const attacks[] = {
    /* the report */
    "Reserva aquí: HTTPS://evil.com/pago",
    "Reserva aquí: Https://evil.com/pago",
    "Reserva aquí: hTtP://evil.com",
    "Entra a WWW.evil.com",
    "Entra a www.tienda-falsa",
    "Paga en evil-pagos.com/reserva",
    "Paga en EVIL-PAGOS.COM",
    "Más info: bit.ly/3xYzAb",
    "Escríbenos: wa.me/573001234567",
    "t.co/abc",
    "La tienda: pagos.shop",
    "x.xyz",
    "ejemplo.com.co",
    "https\u200b://intranet/pago",
    /* schemes without a real top-level domain */
    "ftp://intranet/archivo",
    "hxxps://intranet",
    "HTTP://localhost:8080/",
    "https:\u2215\u2215intranet",
    "https\uff1a//intranet",
    "javascript://intranet",
    /* invisible characters inside */
    "evil\u200b.com",
    "evil.\u200bcom",
    "ev\u00adil-pagos.com",
    "evil\u2060.com",
    "evil\ufeff.com",
    "evil\u200d.c\u200com",
    "e\u202evil.com",
    "evil.c\ufe0fom",
    "evil\u180e.com",
    "evil.c\xf3\xa0\x80\x81om", /* a tag character */
    /* dots, slashes and letters that look like ASCII */
    "evil\u3002com",
    "evil\uff0ecom",
    "evil\uff61com",
    "evil\u2024com",
    "evil\ufe52com",
    "\uff45\uff56\uff49\uff4c\uff0e\uff43\uff4f\uff4d",
    "\uff37\uff37\uff37\uff0eevil",
    "evil.\u24d2\u24de\u24dc",
    "evil.\xf0\x9d\x90\x9c\xf0\x9d\x90\xa8\xf0\x9d\x90\xa6", /* mathematical bold "com" */
    /* written-out dots */
    "evil [.] com",
    "evil(dot)com",
    "evil [dot] com",
    "evil(.)com",
    "evil (punto) com",
    /* addresses */
    "192.168.0.1",
    "http://10.0.0.1:8080/x",
    "Ve a 8.8.8.8/pago",
    /* international names */
    "pagós.com",
    "PAGÓS.COM",
    "xn--pags-8na.com",
    "ejemplo.рф",
    "ejemplo.xn--p1ai",
    "xn--80ak6aa92e.xn--p1ai",
    /* wrapped */
    "(evil.com)",
    "<https://evil.com>",
    "\"evil.com\"",
    "¿evil.com?",
    "evil.com.",
    "Perfecto.Si quieres, te espero", /* a phone shows perfecto.si as a link */
    /* look-alikes of the configured URLs */
    "https://cal.com.evil.com/muebles/visita",
    "https://cal.com/muebles/visitaX",
    "https://cal.com/muebles/visita.evil.com",
    "https://cal.com@evil.com/muebles/visita",
    "https://cal.com/muebles/visita@evil.com",
    "http://cal.com/muebles/visita",
    "https://cal.com/muebles/visita/../../evil",
    "https://cal.com/muebles/visita/%2e%2e/evil",
    "https://cal.com/otro/visita",
    "https://cal.com/Muebles/visita",
    "https://cal.com:8443/muebles/visita",
    "https://evilcal.com/muebles/visita",
    "https://cal.co/muebles/visita",
    "https://xcal.com/muebles/visita",
    "cal.com",
    "https://cal.com",
    "https://cal.com/muebles",
    "https://cal.com/muebles/visita?next=https://evil.com",
    "https://cal.com/muebles/visita?next=evil.com",
    "https://cal.com/muebles/visita y evil.com",
    "evil.com y https://cal.com/muebles/visita",
    "https://muebles.example.com.evil.com/pagar",
    "https://muebles.example.com/pagar\\@evil.com",
    "https://muebles.example.com/",
};

/* None of these is a link. */
static const char *const sentences[] = {
    "",
    "Hola",
    "El precio es $1.500.000 COP",
    "El precio es 1.500.000.000 de pesos",
    "Son 3.5 millones",
    "3.5",
    "p.ej. una mesa de 1.80 m",
    "Enviamos a EE.UU. y México",
    "Muebles Medellín S.A.S. le atiende",
    "Muebles S.A. de C.V.",
    "Sr. Pérez, gracias; Sra.García también",
    "Hola… ¿cómo estás?",
    "Claro...es un placer",
    "hola.como estas",
    "Abrimos a las 10.30 a.m. y cerramos a las 6 p.m.",
    "Versión 2.1.3 del catálogo",
    "Mesas, sillas, etc.",
    "Made in the U.S.A.",
    "i.e. the desk, e.g. a sofa",
    "Hello. How are you? We ship in 3-5 days.",
    "Olá! O preço é R$ 2.500,00.",
    "Obrigado. Até logo!",
    "Te escribimos a ana.maria@correo.co",
    "My e-mail is ceo@bigcorp.com.",
    "mailto:ventas@muebles.example.com",
    "Llámanos al +57 300 123 4567 o tel:+573001234567",
    "No.5, Nº 5",
    "¡Hola! ¿Buscas un sofá? \xf0\x9f\x98\x8a",
    "\xf0\x9f\x91\xa8\u200d\xf0\x9f\x91\xa9\u200d\xf0\x9f\x91\xa7 familia",
    "La mesa mide 1.20x0.80",
    "El archivo catalogo.pdf y foto.jpg",
    "Cama king: ¿qué presupuesto tienes?",
    "Ok:/ bueno",
    "Son las 10:30 // nos vemos",
    "a.b.c",
    "ww.evil",
    "Awww. Gracias",
};

/* Each of these is allowed with the shop's links. */
static const char *const allowed[] = {
    "Reserva aquí: https://cal.com/muebles/visita",
    "Reserva aquí: https://cal.com/muebles/visita.",
    "Reserva aquí: https://cal.com/muebles/visita, gracias",
    "HTTPS://CAL.COM/muebles/visita",
    "https://cal.com/muebles/visita?x=1&utm=wa",
    "https://cal.com/muebles/visita#hoy",
    "https://cal.com/muebles/visita/",
    "(https://cal.com/muebles/visita)",
    "<https://cal.com/muebles/visita>",
    "cal.com/muebles/visita",
    "Reserva en https://cal.com/muebles/visita y paga en https://muebles.example.com/pagar?id=7.",
    "https://cal.com/muebles/visita\nhttps://cal.com/muebles/visita",
    "https://cal.com/muebles/visita\u200b",
};

static bool
check(const char *text, const char *const *list, size_t n)
{
	char why[128];

	return links_only_allowed(text, list, n, why, sizeof(why));
}

int
main(void)
{
	char why[128], tiny[8];
	size_t i;

	for (i = 0; i < sizeof(attacks) / sizeof(attacks[0]); i++) {
		ok(!check(attacks[i], NULL, 0), "refused with no link allowed: %s", attacks[i]);
		ok(!check(attacks[i], shop, NSHOP), "refused with the shop's links: %s", attacks[i]);
	}
	for (i = 0; i < sizeof(sentences) / sizeof(sentences[0]); i++)
		ok(check(sentences[i], NULL, 0), "not a link: %s", sentences[i]);
	for (i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
		ok(check(allowed[i], shop, NSHOP), "a configured link: %s", allowed[i]);
		ok(!check(allowed[i], NULL, 0), "refused when nothing is configured: %s", allowed[i]);
	}

	/* A configured site root vouches for the whole site, its bare host included. */
	{
		const char *root[] = {"https://Muebles.Example.com"}, *slash[] = {"https://muebles.example.com/"};
		ok(check("Visítanos en muebles.example.com", root, 1), "a bare host under a configured root");
		ok(check("https://muebles.example.com/catalogo?p=2", root, 1), "a page under a configured root");
		ok(check("https://muebles.example.com/catalogo", slash, 1), "a root given with its slash");
		ok(!check("https://muebles.example.com.evil.com", root, 1), "the root's host as a prefix");
		ok(!check("https://muebles.example.com/x/evil.com", root, 1), "a domain in the path");
		ok(!check("https://muebles.example.com/a/../b", slash, 1), "a dot segment under the root");
	}

	/* The reason names the host, not the rest of the link. */
	ok(!links_only_allowed("Paga en HTTPS://evil.com/pago?token=SECRETO", NULL, 0, why, sizeof(why)) &&
	        strstr(why, "evil.com") != NULL && strstr(why, "SECRETO") == NULL && strstr(why, "pago") == NULL,
	    "why names the host only: %s", why);
	ok(!links_only_allowed("https://user:clave@evil.com:8080/x", NULL, 0, why, sizeof(why)) &&
	        strstr(why, "evil.com") != NULL && strstr(why, "clave") == NULL,
	    "without the credentials: %s", why);
	ok(!links_only_allowed("ve a evil-pagos.com/reserva", NULL, 0, why, sizeof(why)) &&
	        strstr(why, "evil-pagos.com") != NULL && strstr(why, "reserva") == NULL,
	    "a bare domain: %s", why);
	ok(!links_only_allowed("ve a evil [.] com", NULL, 0, why, sizeof(why)) && strstr(why, "evil.com") != NULL,
	    "as normalised: %s", why);
	memset(tiny, 'x', sizeof(tiny));
	ok(!links_only_allowed("https://a-very-long-host-name.evil.com/", NULL, 0, tiny, sizeof(tiny)) &&
	        memchr(tiny, '\0', sizeof(tiny)) != NULL,
	    "a small why is cut and terminated: %s", tiny);
	ok(!links_only_allowed("https://\u0440\u0430\u0443.com", NULL, 0, why, sizeof(why)), "a Cyrillic host");
	ok(!links_only_allowed("evil.com", NULL, 0, NULL, 0), "why may be NULL");
	ok(links_only_allowed("hola", NULL, 0, NULL, 0), "why may be NULL when all is well");
	ok(links_only_allowed(NULL, NULL, 0, why, sizeof(why)), "NULL text has no link");

	/* Broken UTF-8 is read safely (ASan checks the reads) and never hides a link. */
	{
		static const char *const broken[] = {"evil.com\xe3\x80", "hola \xf0", "\xe3", "\xc3", "\xff\xfe",
		    "evil\xe3\x80.com", "https\xc0\xaf//intranet", "\xed\xa0\x80"};
		ok(!check(broken[0], NULL, 0), "a cut-off character after a link");
		ok(check(broken[1], NULL, 0), "a cut-off four-byte character");
		ok(check(broken[2], NULL, 0) && check(broken[3], NULL, 0) && check(broken[4], NULL, 0),
		    "lone lead and invalid bytes");
		ok(check(broken[5], NULL, 0), "an invalid byte separates, like the phone shows it");
		ok(check(broken[6], NULL, 0) && check(broken[7], NULL, 0), "an overlong slash and a surrogate");
	}

	/* Long inputs: one pass over the text (no timing asserted; the fuzzer watches for slowness). */
	{
		size_t n = 1 << 20, k;
		char *big = malloc(n + 1);
		for (k = 0; k < n; k++)
			big[k] = "1."[k % 2];
		big[n] = '\0';
		ok(check(big, shop, NSHOP), "a megabyte of 1.1.1.");
		for (k = 0; k < n; k++)
			big[k] = "a.b "[k % 4];
		ok(check(big, shop, NSHOP), "a megabyte of short labels");
		memcpy(big + n - 8, "evil.com", 8);
		ok(!check(big, shop, NSHOP), "and a link at its very end");
		for (k = 0; k + 30 < n; k += 31)
			memcpy(big + k, "https://cal.com/muebles/visita", 30);
		ok(!check(big, shop, NSHOP), "configured links run together");
		{
			const char *root[] = {"https://a.example.com/"};
			for (k = 0; k + 22 <= n; k += 22)
				memcpy(big + k, "https://a.example.com/", 22);
			big[k] = '\0';
			ok(check(big, root, 1), "a megabyte of links under a configured root, each path read once");
		}
		free(big);
	}
	return done_testing();
}
