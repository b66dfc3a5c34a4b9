/*
 * Prometheus text exposition helpers. See prom.h.
 */
#include "config.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "prom.h"

const double prom_latency_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
const unsigned prom_latency_nbounds = sizeof(prom_latency_bounds) / sizeof(prom_latency_bounds[0]);

void
prom_hist_init(struct prom_hist *h, const double *bounds, unsigned n)
{
	memset(h, 0, sizeof(*h));
	h->bounds = bounds;
	h->nbounds = n > PROM_MAX_BUCKETS ? PROM_MAX_BUCKETS : n;
}

void
prom_hist_observe(struct prom_hist *h, double v)
{
	unsigned i;

	if (isnan(v))
		return;
	for (i = 0; i < h->nbounds && v > h->bounds[i]; i++)
		;
	h->counts[i]++;
	h->count++;
	h->sum += v;
}

void
prom_family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
write_escaped(FILE *f, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\')
			fputs("\\\\", f);
		else if (*s == '"')
			fputs("\\\"", f);
		else if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

static void
write_labels(FILE *f, const char *const *lv, const char *le)
{
	bool any = false;
	size_t i;

	if ((lv == NULL || lv[0] == NULL) && le == NULL)
		return;
	fputc('{', f);
	for (i = 0; lv != NULL && lv[i] != NULL; i += 2) {
		fprintf(f, "%s%s=\"", any ? "," : "", lv[i]);
		write_escaped(f, lv[i + 1] != NULL ? lv[i + 1] : "");
		fputc('"', f);
		any = true;
	}
	if (le != NULL)
		fprintf(f, "%sle=\"%s\"", any ? "," : "", le);
	fputc('}', f);
}

static void
write_value(FILE *f, double v)
{
	if (isinf(v))
		fputs(v > 0 ? "+Inf" : "-Inf", f);
	else if (isnan(v))
		fputs("NaN", f);
	else if (v == floor(v) && fabs(v) < 1e15)
		fprintf(f, "%.0f", v);
	else
		fprintf(f, "%.9g", v);
}

void
prom_sample(FILE *f, const char *name, const char *const *lv, double value)
{
	fputs(name, f);
	write_labels(f, lv, NULL);
	fputc(' ', f);
	write_value(f, value);
	fputc('\n', f);
}

void
prom_hist_write(FILE *f, const char *name, const char *const *lv, const struct prom_hist *h)
{
	uint64_t cum = 0;
	unsigned i;
	char le[32];

	for (i = 0; i <= h->nbounds; i++) {
		cum += h->counts[i];
		if (i < h->nbounds)
			snprintf(le, sizeof(le), "%g", h->bounds[i]);
		else
			snprintf(le, sizeof(le), "+Inf");
		fprintf(f, "%s_bucket", name);
		write_labels(f, lv, le);
		fprintf(f, " %llu\n", (unsigned long long)cum);
	}
	fprintf(f, "%s_sum", name);
	write_labels(f, lv, NULL);
	fputc(' ', f);
	write_value(f, h->sum);
	fprintf(f, "\n%s_count", name);
	write_labels(f, lv, NULL);
	fprintf(f, " %llu\n", (unsigned long long)h->count);
}
