/*
 * Prometheus text exposition (version 0.0.4): fixed-bucket histograms and
 * writers for families and samples, with label values escaped as the
 * format requires.
 */
#ifndef CRMB_PROM_H
#define CRMB_PROM_H

#include <stdint.h>
#include <stdio.h>

#define PROM_MAX_BUCKETS 16

struct prom_hist {
	const double *bounds; /* upper bounds, ascending, without +Inf */
	unsigned nbounds;
	uint64_t counts[PROM_MAX_BUCKETS + 1]; /* per bucket, not cumulative; the last is +Inf */
	uint64_t count;
	double sum;
};

/* Latency buckets in seconds: 1 ms to 30 s. */
extern const double prom_latency_bounds[];
extern const unsigned prom_latency_nbounds;

void prom_hist_init(struct prom_hist *h, const double *bounds, unsigned n);
void prom_hist_observe(struct prom_hist *h, double v);

/* "# HELP name help\n# TYPE name type\n" */
void prom_family(FILE *f, const char *name, const char *type, const char *help);
/*
 * One sample: name{labels} value. labels is NULL or alternating names and
 * values, NULL-terminated in lv[2*n]; values are escaped.
 */
void prom_sample(FILE *f, const char *name, const char *const *lv, double value);
/* A histogram's _bucket (cumulative, with le), _sum and _count samples. */
void prom_hist_write(FILE *f, const char *name, const char *const *lv, const struct prom_hist *h);

#endif
