/*
 * The configuration parser: any file is loaded or refused with messages,
 * and what loads can be printed (redacted).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/conf.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[64];
	static int fd = -1;
	struct conf_errors errs = {0};
	struct conf *c;

	if (fd < 0) {
		snprintf(path, sizeof(path), "/tmp/crmb-fuzz-conf-XXXXXX");
		if ((fd = mkstemp(path)) < 0)
			abort();
		unlink(path); /* read through /proc/self/fd: nothing is left behind */
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();
	c = conf_load(path, true, &errs);
	if (c != NULL) {
		json_t *j = conf_to_json(c);
		const char *shown = json_string_value(json_object_get(json_object_get(j, "twilio"), "auth_token"));
		/* A secret never reaches the printed configuration. */
		if (c->twilio_auth_token != NULL && (shown == NULL || strcmp(shown, "<redacted>") != 0))
			__builtin_trap();
		json_decref(j);
		conf_free(c);
	} else if (errs.n == 0) {
		__builtin_trap(); /* refused without saying why */
	}
	conf_errors_clear(&errs);
	return 0;
}
