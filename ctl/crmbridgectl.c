/*
 * crmbridgectl: the admin's command-line tool. Today: classify one
 * conversation case and evaluate the classifier on a directory of cases
 * (tests/data/conversations/README.md gives the format).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "classifier/classifier.h"
#include "classifier/text.h"
#include "common/curlev.h"
#include "common/log.h"
#include "common/util.h"
#include "classifier/profile.h"
#include "ctl.h"
#include "daemon/daemon.h"
#include "odoo/chatter.h"

static const char *lexicon_path, *profile_path;

/*
 * The model when its key is set and --offline is not given, as the daemon
 * does: Gemini (GOOGLE_API_KEY, GEMINI_MODEL, GEMINI_API_BASE), or with
 * CRMBRIDGE_CLASSIFIER_PROVIDER=openai an OpenAI-compatible endpoint
 * (OPENAI_API_KEY, OPENAI_MODEL, OPENAI_API_BASE); otherwise the rules.
 */
static struct {
	sd_event *ev;
	struct curlev *cv;
	struct gemini *g;
	struct classifier *cl;
	struct analysis got;
	bool done;
	const char *provider;
	struct profile *profile; /* --profile FILE, or NULL */
} run;

static void
online_start(const struct lexicon *lx, bool offline)
{
	const char *prov = getenv("CRMBRIDGE_CLASSIFIER_PROVIDER");
	bool oa = prov != NULL && strcmp(prov, "openai") == 0;
	const char *key = getenv(oa ? "OPENAI_API_KEY" : "GOOGLE_API_KEY"),
	           *model = getenv(oa ? "OPENAI_MODEL" : "GEMINI_MODEL"),
	           *base = getenv(oa ? "OPENAI_API_BASE" : "GEMINI_API_BASE");
	struct gemini_options o = {0};
	struct policy p;
	bool on = key != NULL && *key != '\0';

	/* As the daemon: openai is on with a key, or with a base URL of one's own (a local server). */
	if (oa && base != NULL && *base != '\0')
		on = true;
	policy_defaults(&p);
	if (!offline && on) {
		crypto_init();
		curl_global_init(CURL_GLOBAL_DEFAULT);
		sd_event_new(&run.ev);
		run.cv = curlev_new(run.ev);
		o.provider = oa ? PROVIDER_OPENAI : PROVIDER_GEMINI;
		o.api_base = base != NULL && *base != '\0' ? base
		    : oa                                   ? "https://api.openai.com/v1"
		                                           : "https://generativelanguage.googleapis.com";
		o.model = model != NULL && *model != '\0' ? model : oa ? "gpt-4o-mini" : "gemini-3.5-flash-lite";
		o.api_key = key;
		o.max_tokens_param = getenv("OPENAI_MAX_TOKENS_PARAM");
		o.audio_model = oa ? getenv("OPENAI_AUDIO_MODEL") : NULL;
		o.timeout_ms = 20000;
		run.g = gemini_new(run.ev, run.cv, &o);
		run.provider = model_provider_name(o.provider);
	}
	run.cl = classifier_new(lx, &p, run.g, false);
	classifier_set_profile(run.cl, run.profile);
	/* As the daemon, with the booking link from the environment (links.booking_url). */
	classifier_set_links(run.cl, (const char *const[]){getenv("CRMBRIDGE_BOOKING_URL")}, 1);
}

static void
online_stop(void)
{
	if (run.g != NULL) {
		struct gemini_stats st;
		gemini_get_stats(run.g, &st);
		if (st.last_error[0] != '\0')
			fprintf(stderr, "crmbridgectl: gemini: last error: %s\n", st.last_error);
	}
	gemini_free(run.g); /* first: its pending answers reach the classifier */
	classifier_free(run.cl);
	profile_free(run.profile);
	run.profile = NULL;
	curlev_free(run.cv);
	if (run.ev != NULL) {
		sd_event_unref(run.ev);
		curl_global_cleanup();
	}
}

static void
on_result(const struct analysis *a, void *arg)
{
	run.done = true;
	analysis_copy(&run.got, a);
}

static const char *config_path;

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: crmbridgectl [--lexicon FILE] [--profile FILE] classify [--offline] FILE\n"
	    "       crmbridgectl [--lexicon FILE] [--profile FILE] eval [--offline] [--json] DIR...\n"
	    "       crmbridgectl [-c CONFIG] odoo-setup\n"
	    "       crmbridgectl [-c CONFIG] odoo-check\n"
	    "talking to a running crmbridged (address and admin token from its configuration, or --url/--token):\n"
	    "       crmbridgectl [-c CONFIG] [--json] status\n"
	    "       crmbridgectl [-c CONFIG] [--json] dashboard        a one-time login link for the dashboard\n"
	    "       crmbridgectl [-c CONFIG] [--json] analytics [--days N]\n"
	    "       crmbridgectl [-c CONFIG] [--json] conversation show|history|reset PHONE\n"
	    "       crmbridgectl [-c CONFIG] [--json] conversation pause [--for 2h] PHONE | resume PHONE\n"
	    "       crmbridgectl [-c CONFIG] [--json] erase PHONE           forget everything about a customer\n"
	    "       crmbridgectl [-c CONFIG] [--json] dead-letters [retry]\n"
	    "       crmbridgectl [-c CONFIG] [--json] leads\n"
	    "       crmbridgectl [-c CONFIG] [--json] profile          the business profile it runs with\n"
	    "       crmbridgectl [-c CONFIG] chat [--wait S] [PHONE]   play the customer in the terminal\n"
	    "       crmbridgectl [-c CONFIG] [--json] replay [--reset] [--phone PHONE] [--wait S] FILE\n"
	    "common options: --url URL, --token TOKEN, --json (also after the command); --version, --help\n");
}

/* ---- Odoo: the daemon's configuration, one blocking run of the loop ---- */

struct odoo_run {
	sd_event *ev;
	struct curlev *cv;
	struct conf *conf;
	struct odoo *o;
	struct lead_ctx *leads;
	bool done;
	struct odoo_error e;
	json_t *r, *created, *present;
	struct lead_result lr;
};

/* ---- the credential store: what the service is given at start, read here by an admin (root) ---- */

int
ctl_credential(const char *cred, char *out, size_t size)
{
	char path[4096];
	size_t len = 0;
	ssize_t n;
	int fds[2], st = 0;
	pid_t pid;
	size_t plen;

	if (!conf_credstore_find(cred, path, sizeof(path)))
		return -1;
	plen = strlen(path) - strlen(cred) - 1; /* the directory's length */
	if (plen >= 10 && strncmp(path + plen - 10, ".encrypted", 10) == 0) {
		/* Encrypted with the host's key (and TPM): systemd-creds decrypts it, for root only. */
		if (pipe(fds) < 0)
			return -1;
		if ((pid = fork()) < 0) {
			close(fds[0]);
			close(fds[1]);
			return -1;
		}
		if (pid == 0) {
			char name[160];
			snprintf(name, sizeof(name), "--name=%s", cred);
			dup2(fds[1], STDOUT_FILENO);
			close(fds[0]);
			close(fds[1]);
			execlp("systemd-creds", "systemd-creds", "decrypt", name, path, "-", (char *)NULL);
			_exit(127);
		}
		close(fds[1]);
		while (len + 1 < size && (n = read(fds[0], out + len, size - len - 1)) != 0) {
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				break;
			len += (size_t)n;
		}
		close(fds[0]);
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "crmbridgectl: systemd-creds decrypt %s failed (run as root)\n", path);
			explicit_bzero(out, size);
			return -1;
		}
	} else {
		FILE *f = fopen(path, "re");
		if (f == NULL)
			return -1;
		len = fread(out, 1, size - 1, f);
		fclose(f);
	}
	out[len] = '\0';
	while (len > 0 && (out[len - 1] == '\n' || out[len - 1] == '\r'))
		out[--len] = '\0';
	return len > 0 ? 0 : -1;
}

static int
odoo_open(struct odoo_run *orun)
{
	struct conf_errors errs = {0};
	const char *path = config_path != NULL ? config_path : getenv("CRMBRIDGE_CONFIG");
	size_t i;

	memset(orun, 0, sizeof(*orun));
	orun->conf = conf_load(path != NULL ? path : conf_default_path(), path != NULL, &errs);
	if (orun->conf == NULL) {
		for (i = 0; i < errs.n; i++)
			fprintf(stderr, "crmbridgectl: %s\n", errs.msg[i]);
		conf_errors_clear(&errs);
		return -1;
	}
	if (orun->conf->odoo_url == NULL) {
		fprintf(stderr,
		    "crmbridgectl: Odoo is not configured (set ODOO_URL, ODOO_DB, ODOO_USERNAME, ODOO_PASSWORD)\n");
		conf_free(orun->conf);
		return -1;
	}
	if (orun->conf->odoo_password == NULL) {
		/* The password or API key is the service's credential: an admin (root) reads it from the store. */
		char pw[4097];
		if (ctl_credential("odoo_password", pw, sizeof(pw)) < 0) {
			fprintf(stderr,
			    "crmbridgectl: odoo.password is the credential odoo_password, which this user cannot "
			    "read: run as root, or give it in ODOO_PASSWORD\n");
			conf_free(orun->conf);
			return -1;
		}
		char why[256];
		int r = conf_set_credential(orun->conf, "odoo_password", pw, why, sizeof(why));
		explicit_bzero(pw, sizeof(pw));
		if (r < 0) {
			fprintf(stderr, "crmbridgectl: %s\n", why);
			conf_free(orun->conf);
			return -1;
		}
	}
	crypto_init();
	curl_global_init(CURL_GLOBAL_DEFAULT);
	sd_event_new(&orun->ev);
	orun->cv = curlev_new(orun->ev);
	orun->o = daemon_odoo(orun->ev, orun->cv, orun->conf, &orun->leads);
	return 0;
}

static void
odoo_close(struct odoo_run *orun)
{
	odoo_free(orun->o);
	lead_ctx_free(orun->leads);
	curlev_free(orun->cv);
	sd_event_unref(orun->ev);
	json_decref(orun->r);
	conf_free(orun->conf);
	curl_global_cleanup();
}

static void
odoo_wait(struct odoo_run *orun)
{
	while (!orun->done)
		sd_event_run(orun->ev, (uint64_t)-1);
	orun->done = false;
}

static void
on_odoo(json_t *r, const struct odoo_error *e, void *arg)
{
	struct odoo_run *orun = arg;

	orun->done = true;
	orun->e = *e;
	json_decref(orun->r);
	orun->r = json_incref(r);
}

static void
on_fields_setup(const struct odoo_error *e, json_t *created, json_t *present, void *arg)
{
	struct odoo_run *orun = arg;

	orun->done = true;
	orun->e = *e;
	orun->created = json_incref(created);
	orun->present = json_incref(present);
}

static void
on_probe_done(const struct lead_result *r, void *arg)
{
	struct odoo_run *orun = arg;

	orun->done = true;
	orun->lr = *r;
	orun->e = r->err;
}

static int
cmd_odoo_setup(void)
{
	struct odoo_run orun;
	json_t *v;
	size_t i;
	int rc = 0;

	if (odoo_open(&orun) < 0)
		return 1;
	lead_setup_fields(orun.leads, on_fields_setup, &orun);
	odoo_wait(&orun);
	if (orun.e.kind != ODOO_OK) {
		fprintf(
		    stderr, "crmbridgectl: odoo-setup: %s error: %s\n", odoo_kind_name(orun.e.kind), orun.e.message);
		rc = 1;
	} else {
		json_array_foreach(orun.present, i, v) printf("present  crm.lead.%s\n", json_string_value(v));
		json_array_foreach(orun.created, i, v) printf("created  crm.lead.%s\n", json_string_value(v));
		printf("%zu field(s) created, %zu already present\n", json_array_size(orun.created),
		    json_array_size(orun.present));
	}
	json_decref(orun.created);
	json_decref(orun.present);
	odoo_close(&orun);
	return rc;
}

/*
 * Odoo sanitizes a number typed without "+" with the company's country: without one, a lead typed by hand
 * as "300 111 2233" has no phone_sanitized. crmbridge still finds it by its digits; the admin should know.
 */
static void
check_company_country(struct odoo_run *orun)
{
	json_t *rec;
	int uid, company;

	odoo_call(orun->o, "res.users", "context_get", json_array(), NULL, on_odoo, orun);
	odoo_wait(orun);
	uid = (int)json_integer_value(json_object_get(orun->r, "uid"));
	if (orun->e.kind != ODOO_OK || uid <= 0)
		return;
	odoo_call(orun->o, "res.users", "read", json_pack("[[i], [s]]", uid, "company_id"), NULL, on_odoo, orun);
	odoo_wait(orun);
	rec = json_array_get(orun->r, 0);
	company = (int)json_integer_value(json_array_get(json_object_get(rec, "company_id"), 0));
	if (orun->e.kind != ODOO_OK || company <= 0)
		return;
	odoo_call(orun->o, "res.company", "read", json_pack("[[i], [s, s]]", company, "name", "country_id"), NULL,
	    on_odoo, orun);
	odoo_wait(orun);
	rec = json_array_get(orun->r, 0);
	if (orun->e.kind != ODOO_OK || rec == NULL)
		return;
	if (json_is_array(json_object_get(rec, "country_id")))
		printf("company        %s, country %s\n", json_string_value(json_object_get(rec, "name")) ?: "?",
		    json_string_value(json_array_get(json_object_get(rec, "country_id"), 1)) ?: "?");
	else
		printf(
		    "company        WARNING: %s has no country: Odoo cannot sanitize numbers typed without \"+\" "
		    "(phone_sanitized stays empty); crmbridge still matches them by their digits. Set the country in "
		    "Settings > Companies%s\n",
		    json_string_value(json_object_get(rec, "name")) ?: "the company",
		    orun->conf->odoo_default_country_code == NULL ? ", and odoo.default_country_code for crmbridge"
		                                                  : "");
}

static void
on_since_check(const struct odoo_error *e, json_t *messages, void *arg)
{
	struct odoo_run *orun = arg;

	orun->done = true;
	orun->e = *e;
	json_decref(orun->r);
	orun->r = json_incref(messages);
}

/* The inbox (#22): the query that reads the salespeople's messages, as the daemon sends it, and who hears of them. */
static int
check_inbox(struct odoo_run *orun)
{
	json_t *rec;

	if (orun->conf->odoo_inbox_interval_ms == 0) {
		printf("inbox          off (odoo.inbox_interval = 0): salespeople's messages on leads are not sent\n");
		return 0;
	}
	chatter_since(orun->leads, 0, 1, on_since_check, orun);
	odoo_wait(orun);
	if (orun->e.kind != ODOO_OK) {
		printf("inbox          FAILED: the salespeople's messages on leads cannot be read (%s): %s\n",
		    odoo_kind_name(orun->e.kind), orun->e.message);
		return 1;
	}
	printf("inbox          ok: a \"Send message\" on a lead goes to the customer on WhatsApp (read every %llu ms; "
	       "a Log note \"%s\" hands back to the bot)\n",
	    (unsigned long long)orun->conf->odoo_inbox_interval_ms, orun->conf->odoo_inbox_resume_command);
	odoo_call(orun->o, "res.users", "read",
	    json_pack("[[i], [s]]", chatter_self_uid(orun->leads), "notification_type"), NULL, on_odoo, orun);
	odoo_wait(orun);
	rec = json_array_get(orun->r, 0);
	if (orun->e.kind == ODOO_OK &&
	    strcmp(json_string_value(json_object_get(rec, "notification_type")) ?: "", "email") == 0)
		printf("               note: %s is notified by e-mail: on a lead it follows (it does not follow the "
		       "leads it creates) each salesperson's message e-mails it; set its Preferences > Notification "
		       "to \"Handle in Odoo\" to avoid that\n",
		    orun->conf->odoo_username);
	return 0;
}

static int
cmd_odoo_check(void)
{
	struct odoo_run orun;
	struct odoo_info info;
	int problems = 0;

	if (odoo_open(&orun) < 0)
		return 1;
	printf("Odoo           %s, database %s, user %s\n", orun.conf->odoo_url, orun.conf->odoo_db,
	    orun.conf->odoo_username);
	odoo_call(orun.o, "crm.lead", "search_count", json_pack("[[]]"), NULL, on_odoo, &orun);
	odoo_wait(&orun);
	odoo_get_info(orun.o, &info);
	printf("server         %s, protocol %s\n", info.version[0] ? info.version : "unknown",
	    odoo_protocol_name(info.protocol));
	if (orun.e.kind != ODOO_OK) {
		printf("login/read     FAILED (%s): %s\n", odoo_kind_name(orun.e.kind), orun.e.message);
		odoo_close(&orun);
		return 1;
	}
	printf("login          ok\n");
	printf("read crm.lead  ok (%lld leads)\n", (long long)json_integer_value(orun.r));
	if (info.major >= 18) /* check_access_rights is deprecated there */
		odoo_call(orun.o, "crm.lead", "has_access", json_pack("[s]", "create"), NULL, on_odoo, &orun);
	else
		odoo_call(orun.o, "crm.lead", "check_access_rights", json_pack("[s]", "create"),
		    json_pack("{s:b}", "raise_exception", 0), on_odoo, &orun);
	odoo_wait(&orun);
	if (orun.e.kind != ODOO_OK || !json_is_true(orun.r)) {
		printf("create rights  MISSING: the user cannot create leads (%s)\n",
		    orun.e.kind != ODOO_OK ? orun.e.message : "refused");
		problems++;
	} else {
		printf("create rights  ok\n");
	}
	lead_probe(orun.leads, on_probe_done, &orun);
	odoo_wait(&orun);
	if (orun.e.kind != ODOO_OK) {
		printf("fields         FAILED: %s\n", orun.e.message);
		problems++;
	} else if (orun.lr.degraded) {
		printf("fields         the x_ fields are missing: leads would get the AI values in their description "
		       "(run crmbridgectl odoo-setup)\n");
	} else {
		printf(
		    "fields         x_source, x_product_interest, x_budget_range, x_ai_confidence, x_quality_score\n");
	}
	if (orun.e.kind == ODOO_OK) {
		const char *why, *type = lead_ctx_lead_type(orun.leads, &why);
		int team;
		const char *tname = lead_ctx_team(orun.leads, &team);
		printf("where leads go %s: %s\n", type, why);
		if (strstr(why, "NOT") != NULL)
			problems++;
		if (team > 0 && tname != NULL)
			printf(
			    "sales team     %d (%s, the first team; set odoo.team_id to choose), no salesperson until "
			    "someone takes it\n",
			    team, tname);
		else if (team > 0)
			printf("sales team     %d (odoo.team_id)\n", team);
		else
			printf("sales team     none: this Odoo has no sales team, so leads have none\n");
	}
	check_company_country(&orun);
	problems += check_inbox(&orun);
	printf("a new lead     type %s, name \"%s\", priority hot=%s warm=%s cold=%s, source WhatsApp\n",
	    orun.conf->odoo_lead_type, orun.conf->odoo_name_template, orun.conf->odoo_priority_hot,
	    orun.conf->odoo_priority_warm, orun.conf->odoo_priority_cold);
	printf("%s\n", problems == 0 ? "OK: crmbridge can write leads to this Odoo" : "NOT OK: see above");
	odoo_close(&orun);
	return problems == 0 ? 0 : 1;
}

/* The lexicon (--lexicon, else the built-in one), taught the business profile of --profile FILE if given. */
static struct lexicon *
load_lexicon(void)
{
	char err[256];
	struct lexicon *lx = lexicon_load(lexicon_path, err, sizeof(err));
	struct profile_settings ps = {.file = profile_path};

	if (lx == NULL) {
		fprintf(stderr, "crmbridgectl: lexicon: %s\n", err);
		return NULL;
	}
	if (profile_path != NULL) {
		if ((run.profile = profile_load(&ps, err, sizeof(err))) == NULL) {
			fprintf(stderr, "crmbridgectl: %s\n", err);
			lexicon_free(lx);
			return NULL;
		}
		profile_apply(run.profile, lx);
	}
	return lx;
}

static int
classify_file(const char *path, struct analysis *a, json_t **doc_out)
{
	json_error_t je;
	json_t *doc = json_load_file(path, 0, &je);
	struct conversation c;
	const char *why;

	if (doc == NULL) {
		fprintf(stderr, "crmbridgectl: %s:%d: %s\n", path, je.line, je.text);
		return -1;
	}
	if (conversation_from_json(doc, &c, &why) < 0) {
		fprintf(stderr, "crmbridgectl: %s: %s\n", path, why);
		json_decref(doc);
		return -1;
	}
	run.done = false;
	classifier_run(run.cl, &c, on_result, NULL);
	while (!run.done && run.ev != NULL)
		sd_event_run(run.ev, (uint64_t)-1);
	*a = run.got;
	memset(&run.got, 0, sizeof(run.got));
	conversation_clear(&c);
	if (doc_out != NULL)
		*doc_out = doc;
	else
		json_decref(doc);
	return 0;
}

static int
cmd_classify(int argc, char **argv)
{
	struct lexicon *lx;
	struct analysis a = {0};
	const char *file = NULL;
	bool offline = false;
	int i, r;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--offline") == 0)
			offline = true;
		else
			file = argv[i];
	}
	if (file == NULL) {
		usage(stderr);
		return 2;
	}
	if ((lx = load_lexicon()) == NULL)
		return 1;
	online_start(lx, offline);
	if ((r = classify_file(file, &a, NULL)) == 0) {
		json_t *j = analysis_to_json(&a);
		json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		putchar('\n');
		json_decref(j);
	}
	analysis_clear(&a);
	online_stop();
	lexicon_free(lx);
	return r == 0 ? 0 : 1;
}

/* The README's match: equal after case and accent folding and trimming, or containing it. */
static bool
value_matches(const char *got, const char *want)
{
	char *g = text_fold_str(got), *w = text_fold_str(want);
	bool ok;

	/* Trim. */
	char *gs = g, *ws = w;
	while (*gs == ' ')
		gs++;
	while (*ws == ' ')
		ws++;
	for (size_t n = strlen(gs); n > 0 && gs[n - 1] == ' '; n--)
		gs[n - 1] = '\0';
	for (size_t n = strlen(ws); n > 0 && ws[n - 1] == ' '; n--)
		ws[n - 1] = '\0';
	ok = strcmp(gs, ws) == 0 || strstr(gs, ws) != NULL;
	free(g);
	free(w);
	return ok;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Scores the cases of one directory; prints them unless as_json. The figures (with the cases), or NULL. */
static json_t *
eval_dir(const char *dir, bool as_json)
{
	DIR *d;
	struct dirent *de;
	char **files = NULL;
	size_t nf = 0, i;
	int q_total = 0, q_ok = 0, a_total = 0, a_ok = 0, tp = 0, fp = 0, fn = 0, invented = 0, lang_ok = 0;
	json_t *cases = json_array(), *j;

	if ((d = opendir(dir)) == NULL) {
		perror(dir);
		json_decref(cases);
		return NULL;
	}
	while ((de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name);
		if (n > 5 && strcmp(de->d_name + n - 5, ".json") == 0) {
			files = realloc(files, (nf + 1) * sizeof(char *));
			if (asprintf(&files[nf++], "%s/%s", dir, de->d_name) < 0)
				fatalx("out of memory");
		}
	}
	closedir(d);
	qsort(files, nf, sizeof(char *), cmp_str);

	for (i = 0; i < nf; i++) {
		struct analysis a = {0};
		json_t *doc = NULL, *exp, *fields, *absent, *v;
		const char *id, *key, *want;
		bool q_good = true, a_good = true, has_q = false, has_a = false;
		int c_tp = 0, c_fp = 0, c_fn = 0, c_inv = 0;
		char notes[512] = "";
		size_t k;

		if (classify_file(files[i], &a, &doc) < 0) {
			for (; i < nf; i++)
				free(files[i]);
			free(files);
			json_decref(cases);
			return NULL;
		}
		id = json_string_value(json_object_get(doc, "id"));
		exp = json_object_get(doc, "expect");
		if ((want = json_string_value(json_object_get(exp, "quality"))) != NULL) {
			has_q = true;
			q_good = strcmp(want, quality_name(a.quality)) == 0;
		}
		if ((want = json_string_value(json_object_get(exp, "quality_not"))) != NULL) {
			has_q = true;
			q_good = q_good && strcmp(want, quality_name(a.quality)) != 0;
		}
		if ((want = json_string_value(json_object_get(exp, "action"))) != NULL) {
			has_a = true;
			a_good = strcmp(want, action_name(a.action)) == 0;
		}
		if (json_is_array(v = json_object_get(exp, "action_any"))) {
			json_t *x;
			bool any = false;
			has_a = true;
			json_array_foreach(v, k, x) any |=
			    strcmp(json_string_value(x) ?: "", action_name(a.action)) == 0;
			a_good = a_good && any;
		}
		if ((want = json_string_value(json_object_get(exp, "action_not"))) != NULL) {
			has_a = true;
			a_good = a_good && strcmp(want, action_name(a.action)) != 0;
		}
		fields = json_object_get(exp, "fields");
		json_object_foreach(fields, key, v)
		{
			int f = field_from_name(key);
			if (f < 0)
				continue;
			if (a.fields[f] != NULL && value_matches(a.fields[f], json_string_value(v))) {
				c_tp++;
			} else {
				if (a.fields[f] != NULL)
					c_fp++;
				c_fn++;
				snprintf(notes + strlen(notes), sizeof(notes) - strlen(notes), " %s=%s(want %s)", key,
				    a.fields[f] ? a.fields[f] : "-", json_string_value(v));
			}
		}
		absent = json_object_get(exp, "absent");
		json_array_foreach(absent, k, v)
		{
			int f = field_from_name(json_string_value(v));
			if (f >= 0 && a.fields[f] != NULL) {
				c_inv++;
				c_fp++;
				snprintf(notes + strlen(notes), sizeof(notes) - strlen(notes), " INVENTED %s=%s",
				    json_string_value(v), a.fields[f]);
			}
		}
		if (has_q) {
			q_total++;
			q_ok += q_good;
		}
		if (has_a) {
			a_total++;
			a_ok += a_good;
		}
		tp += c_tp;
		fp += c_fp;
		fn += c_fn;
		invented += c_inv;
		want = json_string_value(json_object_get(doc, "language"));
		lang_ok += want != NULL && strcmp(want, a.lang) == 0;
		json_array_append_new(cases,
		    json_pack("{s:s, s:b, s:b, s:s, s:s, s:i, s:i, s:s, s:s}", "id", id ? id : files[i], "quality_ok",
		        q_good, "action_ok", a_good, "quality", quality_name(a.quality), "action",
		        action_name(a.action), "fields_ok", c_tp, "invented", c_inv, "source",
		        a.source ? a.source : "rules", "notes", notes));
		if (!as_json)
			printf("%-34s %-4s %-4s quality=%-4s action=%-24s lang=%s%s\n", id ? id : files[i],
			    q_good ? "ok" : "BAD", a_good ? "ok" : "BAD", quality_name(a.quality),
			    action_name(a.action), a.lang, notes);
		analysis_clear(&a);
		json_decref(doc);
		free(files[i]);
	}
	free(files);
	{
		double qa = q_total ? 100.0 * q_ok / q_total : 0, aa = a_total ? 100.0 * a_ok / a_total : 0;
		double prec = tp + fp ? 100.0 * tp / (tp + fp) : 100, rec = tp + fn ? 100.0 * tp / (tp + fn) : 100;
		j = json_pack("{s:s, s:i, s:s, s:f, s:f, s:f, s:f, s:i, s:f, s:o}", "set", dir, "cases", (int)nf,
		    "classifier", run.g != NULL ? run.provider : "rules", "quality_accuracy", qa, "action_accuracy", aa,
		    "field_precision", prec, "field_recall", rec, "invented_fields", invented, "language_accuracy",
		    nf ? 100.0 * lang_ok / (double)nf : 0, "results", cases);
		if (!as_json) {
			printf("\n%s: %zu cases (%s)\n", dir, nf,
			    run.g != NULL ? "Gemini, the rules as fallback" : "offline rules");
			printf("quality accuracy   %5.1f%%  (%d/%d)\n", qa, q_ok, q_total);
			printf("action accuracy    %5.1f%%  (%d/%d)\n", aa, a_ok, a_total);
			printf("field precision    %5.1f%%  (%d/%d)\n", prec, tp, tp + fp);
			printf("field recall       %5.1f%%  (%d/%d)\n", rec, tp, tp + fn);
			printf("invented fields    %d\n", invented);
			printf("language accuracy  %5.1f%%  (%d/%zu)\n", nf ? 100.0 * lang_ok / (double)nf : 0, lang_ok,
			    nf);
		}
	}
	return j;
}

/*
 * crmbridgectl eval DIR...: each directory's cases and figures, then (with several) one summary line per set,
 * so the project's own set and a held-out one are read side by side.
 */
static int
cmd_eval(int argc, char **argv)
{
	const char *dirs[16];
	size_t nd = 0, i;
	bool as_json = false, offline = false;
	struct lexicon *lx;
	json_t *sets = json_array(), *j;
	int rc = 0;

	for (i = 1; i < (size_t)argc; i++) {
		if (strcmp(argv[i], "--offline") == 0)
			offline = true;
		else if (strcmp(argv[i], "--json") == 0)
			as_json = true;
		else if (nd < sizeof(dirs) / sizeof(dirs[0]))
			dirs[nd++] = argv[i];
		else {
			fprintf(
			    stderr, "crmbridgectl: eval: at most %zu directories\n", sizeof(dirs) / sizeof(dirs[0]));
			return 2;
		}
	}
	if (nd == 0) {
		usage(stderr);
		json_decref(sets);
		return 2;
	}
	if ((lx = load_lexicon()) == NULL) {
		json_decref(sets);
		return 1;
	}
	online_start(lx, offline);
	for (i = 0; i < nd && rc == 0; i++) {
		if ((j = eval_dir(dirs[i], as_json)) == NULL)
			rc = 1;
		else
			json_array_append_new(sets, j);
	}
	if (rc == 0 && as_json) {
		/* One set: its object, as before; several: {"sets": [...]}. */
		j = nd == 1 ? json_incref(json_array_get(sets, 0)) : json_pack("{s:O}", "sets", sets);
		json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		putchar('\n');
		json_decref(j);
	} else if (rc == 0 && nd > 1) {
		printf("\n%-40s %6s %8s %7s %10s %7s %9s\n", "set", "cases", "quality", "action", "precision", "recall",
		    "invented");
		json_array_foreach(sets, i, j) printf("%-40s %6lld %7.1f%% %6.1f%% %9.1f%% %6.1f%% %9lld\n",
		    json_string_value(json_object_get(j, "set")),
		    (long long)json_integer_value(json_object_get(j, "cases")),
		    json_real_value(json_object_get(j, "quality_accuracy")),
		    json_real_value(json_object_get(j, "action_accuracy")),
		    json_real_value(json_object_get(j, "field_precision")),
		    json_real_value(json_object_get(j, "field_recall")),
		    (long long)json_integer_value(json_object_get(j, "invented_fields")));
	}
	json_decref(sets);
	online_stop();
	lexicon_free(lx);
	return rc;
}

int
main(int argc, char **argv)
{
	int i = 1;

	struct ctl_options co = {0};
	static const char *const admin_cmds[] = {"status", "dashboard", "analytics", "conversation", "erase",
	    "dead-letters", "leads", "profile", "chat", "replay"};
	size_t k;

	while (i < argc) {
		if (strcmp(argv[i], "--json") == 0) {
			co.json = true;
			i++;
			continue;
		}
		if (i + 1 >= argc)
			break;
		if (strcmp(argv[i], "-c") == 0)
			config_path = argv[i + 1];
		else if (strcmp(argv[i], "--lexicon") == 0)
			lexicon_path = argv[i + 1];
		else if (strcmp(argv[i], "--profile") == 0)
			profile_path = argv[i + 1];
		else if (strcmp(argv[i], "--url") == 0)
			co.url = argv[i + 1];
		else if (strcmp(argv[i], "--token") == 0)
			co.token = argv[i + 1];
		else
			break;
		i += 2;
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	co.config = config_path;
	for (k = 0; k < sizeof(admin_cmds) / sizeof(admin_cmds[0]); k++)
		if (strcmp(argv[i], admin_cmds[k]) == 0) {
			crypto_init();
			return ctl_admin(argv[i], argc - i, argv + i, &co);
		}
	if (strcmp(argv[i], "classify") == 0)
		return cmd_classify(argc - i, argv + i);
	if (strcmp(argv[i], "eval") == 0)
		return cmd_eval(argc - i, argv + i);
	if (strcmp(argv[i], "odoo-setup") == 0)
		return cmd_odoo_setup();
	if (strcmp(argv[i], "odoo-check") == 0)
		return cmd_odoo_check();
	if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[i], "-V") == 0 || strcmp(argv[i], "--version") == 0) {
		printf("crmbridgectl %s\n", PACKAGE_VERSION);
		return 0;
	}
	usage(stderr);
	return 2;
}
