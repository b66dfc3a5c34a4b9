/*
 * The Prometheus exposition helpers, the analytics' median from buckets,
 * and the lead journal (one lead per phone, changes only, read back after
 * a restart and after a torn last line).
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../tap.h"
#include "common/prom.h"
#include "admin/analytics.h"
#include "conversation/journal.h"

static char *
render(void (*fn)(FILE *, void *), void *arg)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	fn(f, arg);
	fclose(f);
	return buf;
}

static void
w_escape(FILE *f, void *arg)
{
	prom_family(f, "x_total", "counter", "Help.");
	prom_sample(f, "x_total", (const char *const[]){"method", "a\"b\\c\nd", NULL}, 3);
	prom_sample(f, "x_total", NULL, 0.25);
}

static void
w_hist(FILE *f, void *arg)
{
	prom_hist_write(f, "lat_seconds", (const char *const[]){"source", "rules", NULL}, arg);
}

static struct lead_result last;
static void
on_done(const struct lead_result *r, void *arg)
{
	last = *r;
}

int
main(void)
{
	char *out;
	struct prom_hist h;
	static const double b[] = {0.01, 0.1, 1};

	out = render(w_escape, NULL);
	ok(strstr(out, "# HELP x_total Help.\n# TYPE x_total counter\n") != NULL, "HELP and TYPE lines");
	ok(strstr(out, "x_total{method=\"a\\\"b\\\\c\\nd\"} 3\n") != NULL, "label values escaped: \\\" \\\\ \\n");
	ok(strstr(out, "x_total 0.25\n") != NULL, "a sample without labels, a fraction as such");
	free(out);

	prom_hist_init(&h, b, 3);
	prom_hist_observe(&h, 0.005);
	prom_hist_observe(&h, 0.05);
	prom_hist_observe(&h, 0.05);
	prom_hist_observe(&h, 5);
	prom_hist_observe(&h, NAN);
	out = render(w_hist, &h);
	ok(strstr(out, "lat_seconds_bucket{source=\"rules\",le=\"0.01\"} 1\n") != NULL &&
	        strstr(out, "lat_seconds_bucket{source=\"rules\",le=\"0.1\"} 3\n") != NULL &&
	        strstr(out, "lat_seconds_bucket{source=\"rules\",le=\"1\"} 3\n") != NULL &&
	        strstr(out, "lat_seconds_bucket{source=\"rules\",le=\"+Inf\"} 4\n") != NULL,
	    "histogram buckets are cumulative, +Inf last");
	ok(strstr(out, "lat_seconds_count{source=\"rules\"} 4\n") != NULL &&
	        strstr(out, "lat_seconds_sum{source=\"rules\"} 5.105\n") != NULL,
	    "count and sum (NaN ignored)");
	free(out);

	{
		/* Buckets of time to lead: bounds 60, 300, 900 s. */
		static const double tb[] = {60, 300, 900};
		uint64_t c1[4] = {1, 0, 0, 0};
		double s1[4] = {42, 0, 0, 0};
		uint64_t c2[4] = {0, 0, 0, 0};
		uint64_t c3[4] = {10, 10, 0, 0};
		double s3[4] = {300, 1800, 0, 0};
		uint64_t c4[4] = {0, 0, 0, 2};
		double s4[4] = {0, 0, 0, 4000};
		ok(fabs(analytics_bucket_quantile(c1, s1, tb, 3, 0.5) - 42) < 1e-9,
		    "one lead: the median is its own time");
		ok(analytics_bucket_quantile(c2, NULL, tb, 3, 0.5) < 0, "no leads: no median");
		ok(fabs(analytics_bucket_quantile(c3, s3, tb, 3, 0.5) - 60) < 1e-9,
		    "half below 60 s, half above: the median is at the boundary, 60 s");
		ok(fabs(analytics_bucket_quantile(c3, s3, tb, 3, 0.25) - 30) < 1e-9,
		    "the first quartile falls in the middle of the first bucket: its mean, 30 s");
		ok(fabs(analytics_bucket_quantile(c3, NULL, tb, 3, 0.5) - 60) < 1e-9,
		    "without sums: interpolated across the bucket (60 s)");
		ok(fabs(analytics_bucket_quantile(c4, s4, tb, 3, 0.5) - 2000) < 1e-9,
		    "beyond the last bound: the bucket's mean");
	}

	{
		char dir[] = "/tmp/crmb-journal-XXXXXX", path[256];
		struct journal_options o = {.path = path, .priority = {"0", "1", "2"}};
		struct lead_input in = {.phone = "whatsapp:+573001112233",
		    .contact_name = "María",
		    .product = "sofá",
		    .quality = "warm",
		    .confidence = 0.7};
		struct journal *j;
		json_t *leads;
		struct stat st;
		FILE *f;

		ok(mkdtemp(dir) != NULL, "a temporary directory");
		snprintf(path, sizeof(path), "%s/leads.jsonl", dir);
		j = journal_open(&o);
		ok(j != NULL && stat(path, &st) == 0 && (st.st_mode & 0777) == 0600,
		    "the journal file is created 0600");
		journal_upsert(j, &in, false, on_done, NULL);
		ok(last.err.kind == ODOO_OK && last.created && last.lead_id == 1, "first write: lead 1 created");
		journal_upsert(j, &in, false, on_done, NULL);
		ok(!last.created && !last.updated && last.lead_id == 1, "the same facts again: nothing written");
		in.budget = "$2000";
		in.quality = "hot";
		in.contact_name = NULL; /* a later turn that does not repeat the name keeps it */
		journal_upsert(j, &in, false, on_done, NULL);
		ok(last.updated && last.lead_id == 1, "new facts: lead 1 updated");
		in.phone = "+57 300 999 8877";
		journal_upsert(j, &in, false, on_done, NULL);
		ok(last.created && last.lead_id == 2, "another phone: lead 2");
		is_int(journal_count(j), 2, "two leads");
		journal_free(j);
		f = fopen(path, "a");
		fputs("{\"op\":\"update\",\"id\":1,\"pho", f); /* torn by a crash */
		fclose(f);
		leads = journal_read_file(path);
		{
			json_t *l1 = json_object_get(leads, "+573001112233");
			ok(json_object_size(leads) == 2 && l1 != NULL &&
			        strcmp(json_string_value(json_object_get(l1, "contact_name")), "María") == 0 &&
			        strcmp(json_string_value(json_object_get(l1, "x_budget_range")), "$2000") == 0 &&
			        strcmp(json_string_value(json_object_get(l1, "x_quality_score")), "hot") == 0 &&
			        strcmp(json_string_value(json_object_get(l1, "priority")), "2") == 0,
			    "read back: folded, the name kept, the budget and quality updated, a torn line skipped");
		}
		json_decref(leads);
		j = journal_open(&o);
		in.phone = "+573001112233";
		in.city = "Bogotá";
		journal_upsert(j, &in, false, on_done, NULL);
		ok(last.updated && last.lead_id == 1,
		    "after a restart: the phone's lead is found again (no duplicate)");
		in.phone = "+573005550000";
		journal_upsert(j, &in, false, on_done, NULL);
		is_int(last.lead_id, 3, "and new leads continue the numbering");
		{
			json_t *s = journal_stats(j, 30);
			is_int(json_integer_value(json_object_get(s, "total")), 3, "stats: three leads");
			is_int(json_integer_value(json_object_get(json_object_get(s, "by_quality"), "hot")), 3,
			    "by quality");
			json_decref(s);
		}
		journal_free(j);
		unlink(path);
		rmdir(dir);
	}
	return done_testing();
}
